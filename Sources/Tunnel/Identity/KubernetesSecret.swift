import Foundation

/// Kubernetes Secret manifests holding Porthole credentials, as written by make-ca and the control API.
package enum KubernetesSecret {
    /// Name of the Secret holding the CA certificate and key.
    package static let certificateAuthorityName = "porthole-ca"
    /// Name of the Secret holding the first control credential.
    package static let controlName = "porthole-control"

    /// Name of the Secret holding `agent`'s credential: `porthole-agent-NAME`, lower-cased with `_` and `.`
    /// turned into `-` so it is a valid Kubernetes object name.
    package static func agentName(_ agent: String) -> String {
        let sanitized = agent.lowercased().map { $0 == "_" || $0 == "." ? "-" : $0 }
        return "porthole-agent-" + String(sanitized)
    }

    /// A `kubernetes.io/tls` Secret with `tls.crt` and `tls.key`, plus `ca.crt` when `ca` is given.
    ///
    /// The manifest has no trailing newline so documents can be joined with `\n---\n`.
    package static func tls(
        name: String, namespace: String?, certificate: Certificate, key: PrivateKey, ca: Certificate?
    ) -> String {
        var data: [(String, String)] = [("tls.crt", certificate.pem), ("tls.key", key.pem)]
        if let ca { data.append(("ca.crt", ca.pem)) }
        var lines = [
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            "  name: \(name)",
        ]
        if let namespace { lines.append("  namespace: \(namespace)") }
        lines += [
            "  labels:",
            "    app.kubernetes.io/part-of: porthole",
            "type: kubernetes.io/tls",
            "data:",
        ]
        lines += data.map { "  \($0.0): \(Data($0.1.utf8).base64EncodedString())" }
        return lines.joined(separator: "\n")
    }

    /// Several manifests as one multi-document YAML file.
    package static func join(_ manifests: [String]) -> String {
        manifests.joined(separator: "\n---\n") + "\n"
    }
}
