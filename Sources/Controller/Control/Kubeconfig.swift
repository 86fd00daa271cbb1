import Foundation
import Tunnel

/// A kubeconfig with one cluster, one user (an embedded client certificate) and one context joining them.
package struct Kubeconfig: Equatable, Sendable {
    /// The name of the cluster, user and context entries alike, e.g. `porthole-edge-1-default`.
    package var name: String
    /// `https://…` URL of the controller's service listener.
    package var server: String
    /// PEM of the CA that signed the controller's server certificate.
    package var certificateAuthorityPEM: String
    /// PEM of the user's client certificate.
    package var clientCertificatePEM: String
    /// PEM of the client certificate's private key.
    package var clientKeyPEM: String

    /// A kubeconfig with every field given.
    package init(
        name: String, server: String, certificateAuthorityPEM: String, clientCertificatePEM: String,
        clientKeyPEM: String
    ) {
        self.name = name
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }

    /// The entry name for one agent's Kubernetes service: `porthole-AGENT-SERVICE`.
    package static func entryName(agent: String, service: String) -> String {
        "porthole-\(agent)-\(service)"
    }

    /// The kubeconfig as YAML; strings are double-quoted (JSON escapes are valid YAML), PEMs base64-encoded.
    package var yaml: String {
        let name = Log.jsonString(self.name)
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: \(name)
              cluster:
                server: \(Log.jsonString(self.server))
                certificate-authority-data: \(Self.base64(self.certificateAuthorityPEM))
            users:
            - name: \(name)
              user:
                client-certificate-data: \(Self.base64(self.clientCertificatePEM))
                client-key-data: \(Self.base64(self.clientKeyPEM))
            contexts:
            - name: \(name)
              context:
                cluster: \(name)
                user: \(name)
            current-context: \(name)
            preferences: {}

            """
    }

    private static func base64(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
    }
}
