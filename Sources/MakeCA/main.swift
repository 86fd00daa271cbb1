import Foundation
import Tunnel

/// make-ca: creates the Porthole CA, a control credential and agent credentials as PEM files and Secret YAML.

let usage = """
    usage: make-ca --out DIR [--trust-domain DOMAIN] [--control NAME] [--agent NAME]... [--namespace NS]
                   [--validity-days N] [--force]

    Creates a certificate authority and credentials signed by it:
      DIR/ca.crt, ca.key                 the CA (valid 10 years)
      DIR/control.crt, control.key       spiffe://DOMAIN/control/NAME, for the control API
      DIR/agent-NAME.crt, agent-NAME.key spiffe://DOMAIN/agent/NAME, one pair per --agent
      DIR/secrets.yaml                   the same as kubernetes.io/tls Secrets (porthole-ca, porthole-control,
                                         porthole-agent-NAME)
    Keys and secrets.yaml are written with mode 0600.

    options:
      --out DIR            directory to write into (created if missing)
      --trust-domain D     SPIFFE trust domain (default porthole.local)
      --control NAME       name of the control credential (default admin)
      --agent NAME         issue a credential for agent NAME; repeatable
      --namespace NS       namespace for the Secrets in secrets.yaml (default: none)
      --validity-days N    lifetime of the control and agent certificates in days (default 365)
      --force              overwrite existing files
      -h, --help           show this help

    """

/// A problem with the command line: exit 64.
struct UsageError: Error {
    let message: String
}

/// A problem while doing the work: exit 1.
struct RuntimeError: Error {
    let message: String
}

/// The parsed command line.
struct Options {
    var outputDirectory: String?
    var trustDomain = "porthole.local"
    var controlName = "admin"
    var agentNames: [String] = []
    var namespace: String?
    var validityDays = 365
    var force = false
    var showHelp = false

    init(arguments: [String]) throws(UsageError) {
        var remaining = arguments[...]
        func value(for flag: String) throws(UsageError) -> String {
            guard let value = remaining.popFirst(), !value.hasPrefix("--") else {
                throw UsageError(message: "\(flag) needs a value")
            }
            return value
        }
        while let argument = remaining.popFirst() {
            var flag = argument
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                flag = String(argument[..<equals])
                remaining.insert(String(argument[argument.index(after: equals)...]), at: remaining.startIndex)
            }
            switch flag {
            case "-h", "--help": self.showHelp = true
            case "--out": self.outputDirectory = try value(for: flag)
            case "--trust-domain": self.trustDomain = try value(for: flag)
            case "--control": self.controlName = try value(for: flag)
            case "--agent": self.agentNames.append(try value(for: flag))
            case "--namespace": self.namespace = try value(for: flag)
            case "--force": self.force = true
            case "--validity-days":
                let text = try value(for: flag)
                guard let days = Int(text), days > 0, days <= 100 * 365 else {
                    throw UsageError(
                        message: "--validity-days must be a whole number of days from 1 to 36500, not \(text)")
                }
                self.validityDays = days
            default:
                throw UsageError(message: "unknown argument \(argument)")
            }
        }
        guard !self.showHelp else { return }
        guard let outputDirectory, !outputDirectory.isEmpty else { throw UsageError(message: "--out is required") }
        guard !self.trustDomain.isEmpty, !self.trustDomain.contains("/"),
            EndpointIdentity.isValidComponent(self.trustDomain)
        else { throw UsageError(message: "invalid trust domain \(self.trustDomain)") }
        for name in [self.controlName] + self.agentNames where !EndpointIdentity.isValidComponent(name) {
            throw UsageError(message: "invalid name \(name): use letters, digits, '.', '_' and '-'")
        }
        guard Set(self.agentNames).count == self.agentNames.count else {
            throw UsageError(message: "an agent name is given twice")
        }
    }
}

/// One file to write.
struct OutputFile {
    let name: String
    let contents: String
    let isSecret: Bool
}

func makeFiles(_ options: Options) throws -> [OutputFile] {
    let authority = try CertificateAuthority.create(
        commonName: "Porthole CA (\(options.trustDomain))", validity: CertificateAuthority.defaultValidity)
    let validity = TimeInterval(options.validityDays) * 24 * 60 * 60
    let control = try authority.issueCredential(
        for: .control(name: options.controlName), trustDomain: options.trustDomain, commonName: options.controlName,
        validity: validity)
    var files = [
        OutputFile(name: "ca.crt", contents: authority.certificate.pem, isSecret: false),
        OutputFile(name: "ca.key", contents: authority.key.pem, isSecret: true),
        OutputFile(name: "control.crt", contents: control.certificate.pem, isSecret: false),
        OutputFile(name: "control.key", contents: control.key.pem, isSecret: true),
    ]
    var secrets = [
        KubernetesSecret.tls(
            name: KubernetesSecret.certificateAuthorityName, namespace: options.namespace,
            certificate: authority.certificate, key: authority.key, ca: nil),
        KubernetesSecret.tls(
            name: KubernetesSecret.controlName, namespace: options.namespace, certificate: control.certificate,
            key: control.key, ca: authority.certificate),
    ]
    for agent in options.agentNames {
        let credential = try authority.issueCredential(
            for: .agent(name: agent), trustDomain: options.trustDomain, commonName: agent, validity: validity)
        files.append(OutputFile(name: "agent-\(agent).crt", contents: credential.certificate.pem, isSecret: false))
        files.append(OutputFile(name: "agent-\(agent).key", contents: credential.key.pem, isSecret: true))
        secrets.append(
            KubernetesSecret.tls(
                name: KubernetesSecret.agentName(agent), namespace: options.namespace,
                certificate: credential.certificate, key: credential.key, ca: authority.certificate))
    }
    files.append(OutputFile(name: "secrets.yaml", contents: KubernetesSecret.join(secrets), isSecret: true))
    return files
}

/// Writes `file` into `directory`, creating it with its final mode so a key is never readable by others.
func write(_ file: OutputFile, into directory: String, force: Bool) throws {
    let path = directory + "/" + file.name
    if force, unlink(path) != 0, errno != ENOENT {
        throw RuntimeError(message: "cannot replace \(path): \(String(cString: strerror(errno)))")
    }
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, file.isSecret ? 0o600 : 0o644)
    guard descriptor >= 0 else {
        throw RuntimeError(message: "cannot create \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    let bytes = Array(file.contents.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if written < 0, errno == EINTR { continue }
        guard written > 0 else {
            throw RuntimeError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        offset += written
    }
}

func run(_ options: Options) throws {
    guard let directory = options.outputDirectory else { return }
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw RuntimeError(message: "cannot create directory \(directory): \(error.localizedDescription)")
    }
    let files = try makeFiles(options)
    if !options.force {
        let existing = files.map { directory + "/" + $0.name }.filter { FileManager.default.fileExists(atPath: $0) }
        guard existing.isEmpty else {
            throw RuntimeError(
                message: "refusing to overwrite \(existing.joined(separator: ", ")) (use --force to replace them)")
        }
    }
    for file in files {
        try write(file, into: directory, force: options.force)
        print(directory + "/" + file.name)
    }
}

func fail(_ message: String, showUsage: Bool, status: Int32) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    if showUsage { FileHandle.standardError.write(Data(usage.utf8)) }
    exit(status)
}

do {
    let options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
    if options.showHelp {
        print(usage, terminator: "")
        exit(0)
    }
    try run(options)
} catch let error as UsageError {
    fail(error.message, showUsage: true, status: 64)
} catch let error as RuntimeError {
    fail(error.message, showUsage: false, status: 1)
} catch {
    fail("\(error)", showUsage: false, status: 1)
}
