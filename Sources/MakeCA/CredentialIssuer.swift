import Foundation
import Tunnel

/// Does what `make-ca` was asked: a new CA with its first credentials, or agent credentials from the CA already in
/// the folder. Returns the paths written; explanations go to `note` (stderr).
struct CredentialIssuer {
    let options: MakeCAOptions
    let folder: CredentialFolder
    let note: (String) -> Void

    init(options: MakeCAOptions, note: @escaping (String) -> Void) {
        self.options = options
        self.folder = CredentialFolder(path: options.outputDirectory)
        self.note = note
    }

    private var leafValidity: TimeInterval { TimeInterval(self.options.validityDays) * 24 * 60 * 60 }

    func run() throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: self.folder.path, withIntermediateDirectories: true)
        } catch {
            throw MakeCAError(description: "cannot create directory \(self.folder.path): \(error.localizedDescription)")
        }
        let hasCertificate = self.folder.exists("ca.crt")
        let hasKey = self.folder.exists("ca.key")
        if self.options.replaceCA || (!hasCertificate && !hasKey) {
            return try self.createCA()
        }
        guard hasCertificate, hasKey else {
            let (present, missing) = hasCertificate ? ("ca.crt", "ca.key") : ("ca.key", "ca.crt")
            throw MakeCAError(
                description: "\(self.folder.location(present)) exists but \(missing) does not, so nothing can be "
                    + "issued from it; restore \(missing), or start over with --replace-ca")
        }
        return try self.addToExistingCA()
    }

    // MARK: A new CA

    private func createCA() throws -> [String] {
        let existing = self.folder.credentialFiles
        if !self.options.replaceCA, !existing.isEmpty {
            throw MakeCAError(
                description: "\(self.folder.path) has no CA but holds \(existing.joined(separator: ", ")), issued "
                    + "by a CA that is gone; use another --out, or --replace-ca to start over there")
        }
        if self.options.replaceCA, !existing.isEmpty {
            try self.announceReplacement(of: existing)
        }
        let trustDomain = self.options.trustDomain ?? MakeCAOptions.defaultTrustDomain
        let controlName = self.options.controlName ?? MakeCAOptions.defaultControlName
        let authority = try CertificateAuthority.create(
            commonName: "Porthole CA (\(trustDomain))", validity: CertificateAuthority.defaultValidity)
        let control = try authority.issueCredential(
            for: .control(name: controlName), trustDomain: trustDomain, commonName: controlName,
            validity: self.leafValidity)
        var files = [
            OutputFile(name: "ca.crt", contents: authority.certificate.pem, isSecret: false),
            OutputFile(name: "ca.key", contents: authority.key.pem, isSecret: true),
            OutputFile(name: "control.crt", contents: control.certificate.pem, isSecret: false),
            OutputFile(name: "control.key", contents: control.key.pem, isSecret: true),
        ]
        var secrets = [
            KubernetesSecret.tls(
                name: KubernetesSecret.certificateAuthorityName, namespace: self.options.namespace,
                certificate: authority.certificate, key: authority.key, ca: nil),
            KubernetesSecret.tls(
                name: KubernetesSecret.controlName, namespace: self.options.namespace,
                certificate: control.certificate, key: control.key, ca: authority.certificate),
        ]
        for agent in self.options.agentNames {
            let (agentFiles, secret) = try self.agentCredential(agent, authority: authority, trustDomain: trustDomain)
            files += agentFiles
            secrets.append(secret)
        }
        files += try self.gatewayCredentials(authority: authority, trustDomain: trustDomain)
        files.append(OutputFile(name: "secrets.yaml", contents: KubernetesSecret.join(secrets), isSecret: true))
        // Credentials of the old CA that are not issued again are worthless now: remove them rather than leave
        // files that look valid.
        let written = Set(files.map(\.name))
        for name in existing where !written.contains(name) {
            try self.folder.remove(name)
        }
        return try self.write(files)
    }

    private func announceReplacement(of existing: [String]) throws {
        var subject = "the CA"
        if let certificate = try? Certificate(pem: self.folder.read("ca.crt", role: "CA certificate")) {
            subject = "the CA \"\(certificate.commonName ?? "?")\" (serial \(certificate.serialNumberHex))"
        }
        let issued = existing.filter { $0.hasSuffix(".crt") && $0 != "ca.crt" }
        self.note(
            """
            replacing \(subject) in \(self.folder.path). Everything it issued stops working once a controller \
            loads the new CA: here \(issued.isEmpty ? "no credentials" : issued.joined(separator: ", ")) (removed \
            unless issued again now), and elsewhere every agent credential, kubeconfig and service token that \
            controllers issued from it. Controllers must get the new ca.crt and ca.key; every agent a new \
            credential.
            """)
    }

    // MARK: Agents from the existing CA

    private func addToExistingCA() throws -> [String] {
        let authority: CertificateAuthority
        do {
            authority = try CertificateAuthority(
                certificatePEM: self.folder.read("ca.crt", role: "CA certificate"),
                keyPEM: self.folder.read("ca.key", role: "CA key"))
        } catch let error as TextFile.ReadError {
            throw MakeCAError(description: "\(error)")
        } catch {
            throw MakeCAError(
                description: "cannot load the CA from \(self.folder.location("ca.crt")) and ca.key: \(error)")
        }
        let trustDomain = try self.trustDomain(of: authority)
        if self.options.agentNames.isEmpty, self.options.controlName == nil, self.options.gatewayNames.isEmpty {
            throw MakeCAError(
                description: "\(self.folder.location("ca.crt")) already holds a CA and no --agent was given, so "
                    + "there is nothing to do; add agents with --agent NAME (the CA stays as it is), or make a new "
                    + "CA with --replace-ca, which invalidates everything the old one issued")
        }
        if self.options.controlName != nil, self.folder.exists("control.crt") {
            throw MakeCAError(
                description: "\(self.folder.location("control.crt")) exists; make-ca adds only agent credentials to "
                    + "an existing CA (leave out --control)")
        }
        let taken = self.options.agentNames.filter {
            self.folder.exists("agent-\($0).crt") || self.folder.exists("agent-\($0).key")
        }
        if !taken.isEmpty, !self.options.reissueAgents {
            let paths = taken.map { self.folder.location("agent-\($0).crt") }
            throw MakeCAError(
                description: "\(paths.joined(separator: ", ")) already exist\(paths.count == 1 ? "s" : ""); nothing "
                    + "was written. --reissue-agents replaces \(paths.count == 1 ? "it" : "them") (old credentials "
                    + "stay valid until they expire)")
        }
        var files: [OutputFile] = []
        var secrets: [String] = []
        if let controlName = self.options.controlName {
            let control = try authority.issueCredential(
                for: .control(name: controlName), trustDomain: trustDomain, commonName: controlName,
                validity: self.leafValidity)
            files.append(OutputFile(name: "control.crt", contents: control.certificate.pem, isSecret: false))
            files.append(OutputFile(name: "control.key", contents: control.key.pem, isSecret: true))
            secrets.append(
                KubernetesSecret.tls(
                    name: KubernetesSecret.controlName, namespace: self.options.namespace,
                    certificate: control.certificate, key: control.key, ca: authority.certificate))
        }
        for agent in self.options.agentNames {
            let (agentFiles, secret) = try self.agentCredential(agent, authority: authority, trustDomain: trustDomain)
            files += agentFiles
            secrets.append(secret)
        }
        files += try self.gatewayCredentials(authority: authority, trustDomain: trustDomain)
        files.append(try self.secretsFile(adding: secrets))
        for agent in taken {
            self.note("replaced the credential of agent \(agent); the old one stays valid until it expires")
        }
        return try self.write(files)
    }

    /// The trust domain of the existing CA, from its subject (`Porthole CA (DOMAIN)`), checked against
    /// `--trust-domain`.
    private func trustDomain(of authority: CertificateAuthority) throws -> String {
        let subject = authority.certificate.commonName ?? ""
        var fromSubject: String?
        if subject.hasPrefix("Porthole CA ("), subject.hasSuffix(")") {
            fromSubject = String(subject.dropFirst("Porthole CA (".count).dropLast())
        }
        switch (self.options.trustDomain, fromSubject) {
        case (let given?, let found?) where given != found:
            throw MakeCAError(
                description: "--trust-domain \(given) does not match the CA in \(self.folder.location("ca.crt")), "
                    + "whose trust domain is \(found) (its subject: \(subject))")
        case (let given?, _): return given
        case (nil, let found?): return found
        case (nil, nil): return MakeCAOptions.defaultTrustDomain
        }
    }

    /// secrets.yaml with `added` in place of the documents of the same name (the others unchanged).
    private func secretsFile(adding added: [String]) throws -> OutputFile {
        var documents: [String] = []
        if self.folder.exists("secrets.yaml") {
            let text = try self.folder.read("secrets.yaml", role: "Secrets file")
            let addedNames = Set(added.compactMap(Self.objectName))
            documents = text.components(separatedBy: "\n---\n")
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty && !addedNames.contains(Self.objectName($0) ?? "") }
        }
        return OutputFile(name: "secrets.yaml", contents: KubernetesSecret.join(documents + added), isSecret: true)
    }

    private static func objectName(_ document: String) -> String? {
        document.split(separator: "\n").first { $0.hasPrefix("  name: ") }.map { String($0.dropFirst(8)) }
    }

    private func agentCredential(
        _ agent: String, authority: CertificateAuthority, trustDomain: String
    ) throws -> ([OutputFile], String) {
        let credential = try authority.issueCredential(
            for: .agent(name: agent), trustDomain: trustDomain, commonName: agent, validity: self.leafValidity)
        let secret = KubernetesSecret.tls(
            name: KubernetesSecret.agentName(agent), namespace: self.options.namespace,
            certificate: credential.certificate, key: credential.key, ca: authority.certificate)
        let files = [
            OutputFile(name: "agent-\(agent).crt", contents: credential.certificate.pem, isSecret: false),
            OutputFile(name: "agent-\(agent).key", contents: credential.key.pem, isSecret: true),
            OutputFile(name: "agent-\(agent).yaml", contents: KubernetesSecret.join([secret]), isSecret: true),
        ]
        return (files, secret)
    }

    /// `gateway-NAME.crt` and `.key` for each `--gateway`; an existing one is replaced (it stays valid until it
    /// expires).
    private func gatewayCredentials(authority: CertificateAuthority, trustDomain: String) throws -> [OutputFile] {
        try self.options.gatewayNames.flatMap { name in
            let credential = try authority.issueCredential(
                for: .gateway(name: name), trustDomain: trustDomain, commonName: "gateway \(name)",
                validity: self.leafValidity)
            return [
                OutputFile(name: "gateway-\(name).crt", contents: credential.certificate.pem, isSecret: false),
                OutputFile(name: "gateway-\(name).key", contents: credential.key.pem, isSecret: true),
            ]
        }
    }

    private func write(_ files: [OutputFile]) throws -> [String] {
        for file in files { try self.folder.write(file) }
        return files.map { self.folder.location($0.name) }
    }
}
