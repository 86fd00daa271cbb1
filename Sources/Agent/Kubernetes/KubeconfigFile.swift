import Foundation
import Tunnel

/// A kubeconfig file as read from disk (YAML, or JSON from `kubectl config view -o json`): its named clusters,
/// users and contexts and its current context. Paths inside it are resolved against the file's directory, as
/// kubectl does; fields Porthole does not use are ignored. `KubernetesAccess.fromKubeconfig` turns one context
/// of it into credentials.
///
/// Not to be confused with `Kubeconfig`, which writes the kubeconfigs the controller issues.
struct KubeconfigFile: Equatable, Sendable {
    /// A `clusters[].cluster` entry.
    struct Cluster: Equatable, Sendable {
        /// `server`: the API server URL.
        var server: String?
        /// `certificate-authority`: a PEM file, resolved to an absolute or working-directory-relative path.
        var certificateAuthority: String?
        /// `certificate-authority-data`: base64 of PEM, still encoded.
        var certificateAuthorityData: String?
        /// `insecure-skip-tls-verify`.
        var insecureSkipTLSVerify = false
    }

    /// A `users[].user` entry (an "AuthInfo").
    struct User: Equatable, Sendable {
        /// `token`: a literal bearer token.
        var token: String?
        /// `tokenFile`: a file holding the bearer token, resolved like every path.
        var tokenFile: String?
        /// `client-certificate`: a PEM certificate file.
        var clientCertificate: String?
        /// `client-certificate-data`: base64 of PEM.
        var clientCertificateData: String?
        /// `client-key`: a PEM key file.
        var clientKey: String?
        /// `client-key-data`: base64 of PEM.
        var clientKeyData: String?
        /// `username` (basic authentication).
        var username: String?
        /// `password` (basic authentication).
        var password: String?
        /// `exec.command`, or `""` when `exec` is present without one; nil without an exec plugin.
        var execCommand: String?
        /// `auth-provider.name`, or `""` when `auth-provider` is present without one.
        var authProviderName: String?
    }

    /// A `contexts[].context` entry.
    struct Context: Equatable, Sendable {
        /// The name of a cluster entry.
        var cluster: String
        /// The name of a user entry; empty for none.
        var user: String
        /// The default namespace, if any.
        var namespace: String?
    }

    /// Where the file was read from, as given; names it in errors.
    var path: String
    /// Clusters by name.
    var clusters: [String: Cluster]
    /// Users by name.
    var users: [String: User]
    /// Contexts by name.
    var contexts: [String: Context]
    /// `current-context`; nil when absent or empty.
    var currentContext: String?

    /// Reads and parses the file at `path`.
    ///
    /// - Throws: `KubernetesAccessError.unreadableFile` or `.malformedKubeconfig`.
    init(contentsOfFile path: String) throws(KubernetesAccessError) {
        let data = try KubernetesAccess.readFile(path, what: "kubeconfig")
        guard let text = String(data: data, encoding: .utf8) else {
            throw .malformedKubeconfig(path: path, reason: "not UTF-8 text")
        }
        try self.init(parsing: text, path: path)
    }

    /// Parses `text`; relative paths in it are taken relative to the directory of `path`.
    ///
    /// - Throws: `KubernetesAccessError.malformedKubeconfig` naming the line or the field at fault.
    init(parsing text: String, path: String) throws(KubernetesAccessError) {
        let root: YAMLSubset.Node
        do {
            root = try YAMLSubset.parse(text)
        } catch {
            throw .malformedKubeconfig(path: path, reason: error.description)
        }
        let reader = FieldReader(path: path)
        let document = try reader.mapping(root, field: "the document", allowNull: true)
        self.path = path
        self.currentContext = try reader.string(document["current-context"], field: "current-context")
        if self.currentContext?.isEmpty == true { self.currentContext = nil }

        self.clusters = try reader.namedEntries(document["clusters"], list: "clusters", entry: "cluster") {
            (node, field, reader) throws(KubernetesAccessError) in
            let fields = try reader.mapping(node, field: field, allowNull: true)
            return Cluster(
                server: try reader.string(fields["server"], field: "\(field).server"),
                certificateAuthority: try reader.path(
                    fields["certificate-authority"], field: "\(field).certificate-authority"),
                certificateAuthorityData: try reader.string(
                    fields["certificate-authority-data"], field: "\(field).certificate-authority-data"),
                insecureSkipTLSVerify: try reader.boolean(
                    fields["insecure-skip-tls-verify"], field: "\(field).insecure-skip-tls-verify"))
        }
        self.users = try reader.namedEntries(document["users"], list: "users", entry: "user") {
            (node, field, reader) throws(KubernetesAccessError) in
            let fields = try reader.mapping(node, field: field, allowNull: true)
            var user = User()
            user.token = try reader.string(fields["token"], field: "\(field).token")
            user.tokenFile = try reader.path(fields["tokenFile"], field: "\(field).tokenFile")
            user.clientCertificate = try reader.path(fields["client-certificate"], field: "\(field).client-certificate")
            user.clientCertificateData = try reader.string(
                fields["client-certificate-data"], field: "\(field).client-certificate-data")
            user.clientKey = try reader.path(fields["client-key"], field: "\(field).client-key")
            user.clientKeyData = try reader.string(fields["client-key-data"], field: "\(field).client-key-data")
            user.username = try reader.string(fields["username"], field: "\(field).username")
            user.password = try reader.string(fields["password"], field: "\(field).password")
            if let exec = fields["exec"], exec != .null {
                let plugin = try reader.mapping(exec, field: "\(field).exec", allowNull: false)
                user.execCommand = try reader.string(plugin["command"], field: "\(field).exec.command") ?? ""
            }
            if let provider = fields["auth-provider"], provider != .null {
                let settings = try reader.mapping(provider, field: "\(field).auth-provider", allowNull: false)
                user.authProviderName = try reader.string(settings["name"], field: "\(field).auth-provider.name") ?? ""
            }
            return user
        }
        self.contexts = try reader.namedEntries(document["contexts"], list: "contexts", entry: "context") {
            (node, field, reader) throws(KubernetesAccessError) in
            let fields = try reader.mapping(node, field: field, allowNull: true)
            return Context(
                cluster: try reader.string(fields["cluster"], field: "\(field).cluster") ?? "",
                user: try reader.string(fields["user"], field: "\(field).user") ?? "",
                namespace: try reader.string(fields["namespace"], field: "\(field).namespace"))
        }
    }
}

/// Reads typed fields out of YAML nodes, naming the field (`users["alice"].user.token`) in errors.
private struct FieldReader {
    let path: String
    let directory: String

    init(path: String) {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        self.directory = directory.isEmpty ? "." : directory
    }

    func malformed(_ field: String, _ reason: String) -> KubernetesAccessError {
        .malformedKubeconfig(path: self.path, reason: "\(field) \(reason)")
    }

    func mapping(
        _ node: YAMLSubset.Node?, field: String, allowNull: Bool
    ) throws(KubernetesAccessError) -> [String: YAMLSubset.Node] {
        switch node {
        case .mapping(let fields)?: return fields
        case .null?, nil:
            guard allowNull else { throw self.malformed(field, "must be a mapping") }
            return [:]
        default: throw self.malformed(field, "must be a mapping")
        }
    }

    func string(_ node: YAMLSubset.Node?, field: String) throws(KubernetesAccessError) -> String? {
        switch node {
        case .scalar(let text)?: return text
        case .null?, nil: return nil
        default: throw self.malformed(field, "must be a string")
        }
    }

    /// A file path, resolved against the kubeconfig's directory when relative; nil when absent or empty.
    func path(_ node: YAMLSubset.Node?, field: String) throws(KubernetesAccessError) -> String? {
        guard let path = try self.string(node, field: field), !path.isEmpty else { return nil }
        return path.hasPrefix("/") ? path : "\(self.directory)/\(path)"
    }

    /// YAML 1.1 booleans, as kubectl's YAML reader accepts them; absent is false.
    func boolean(_ node: YAMLSubset.Node?, field: String) throws(KubernetesAccessError) -> Bool {
        guard let text = try self.string(node, field: field) else { return false }
        switch text {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: throw self.malformed(field, "must be true or false, not \"\(text)\"")
        }
    }

    /// A `- name: N` + `KEY: {…}` list as a dictionary by name; names must be present and unique.
    func namedEntries<Entry>(
        _ node: YAMLSubset.Node?, list: String, entry key: String,
        _ read: (YAMLSubset.Node?, String, FieldReader) throws(KubernetesAccessError) -> Entry
    ) throws(KubernetesAccessError) -> [String: Entry] {
        let items: [YAMLSubset.Node]
        switch node {
        case .sequence(let sequence)?: items = sequence
        case .null?, nil: items = []
        default: throw self.malformed(list, "must be a list of `- name: …` entries")
        }
        var entries: [String: Entry] = [:]
        for (index, item) in items.enumerated() {
            let fields = try self.mapping(item, field: "\(list)[\(index)]", allowNull: false)
            guard let name = try self.string(fields["name"], field: "\(list)[\(index)].name"), !name.isEmpty else {
                throw self.malformed("\(list)[\(index)]", "has no name")
            }
            guard entries[name] == nil else { throw self.malformed(list, "has two entries named \"\(name)\"") }
            entries[name] = try read(fields[key], "\(list)[\(Log.jsonString(name))].\(key)", self)
        }
        return entries
    }
}
