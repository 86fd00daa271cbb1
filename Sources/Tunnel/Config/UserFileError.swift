/// An error saying a file the user named (configuration, services, certificate, key, kubeconfig) is wrong or
/// unreadable: start-up exits 64 for it, as for a bad flag.
package protocol UserFileError: Error {}
