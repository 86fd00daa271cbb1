import Foundation
import Tunnel

/// Something `make-ca` would not or could not do: `error: …` and exit 1.
struct MakeCAError: Error, CustomStringConvertible {
    let description: String
}

/// One file to write into the folder.
struct OutputFile {
    let name: String
    let contents: String
    let isSecret: Bool
}

/// The folder make-ca writes into: what is already there, and replacing files in it atomically.
struct CredentialFolder {
    let path: String

    func location(_ name: String) -> String { self.path + "/" + name }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: self.location(name)) }

    func read(_ name: String, role: String) throws -> String {
        try TextFile.read(self.location(name), role: role)
    }

    /// Names of the agents that have a certificate or key here (`agent-NAME.crt`, `agent-NAME.key`).
    var agentNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: self.path)) ?? []
        let agents = names.compactMap { name -> String? in
            guard name.hasPrefix("agent-") else { return nil }
            for suffix in [".crt", ".key"] where name.hasSuffix(suffix) {
                return String(name.dropFirst("agent-".count).dropLast(suffix.count))
            }
            return nil
        }
        return Array(Set(agents)).sorted()
    }

    /// The files here that a CA issued or that hold its credentials, in a stable order.
    var credentialFiles: [String] {
        var names = ["ca.crt", "ca.key", "control.crt", "control.key", "secrets.yaml"]
        for agent in self.agentNames { names += ["agent-\(agent).crt", "agent-\(agent).key", "agent-\(agent).yaml"] }
        return names.filter(self.exists)
    }

    /// Writes `file` under a temporary name created with its final mode (a key is never readable by others),
    /// then renames it into place, so a reader sees the old file or the new one, never half of one.
    func write(_ file: OutputFile) throws {
        let target = self.location(file.name)
        let temporary = self.location(".\(file.name).\(getpid()).tmp")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, file.isSecret ? 0o600 : 0o644)
        guard descriptor >= 0 else {
            throw MakeCAError(description: "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var failure: String?
        let bytes = Array(file.contents.utf8)
        var offset = 0
        while offset < bytes.count, failure == nil {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { failure = "cannot write \(temporary): \(String(cString: strerror(errno)))" }
            offset += max(written, 0)
        }
        if failure == nil, fsync(descriptor) != 0 {
            failure = "cannot write \(temporary): \(String(cString: strerror(errno)))"
        }
        close(descriptor)
        if failure == nil, rename(temporary, target) != 0 {
            failure = "cannot write \(target): \(String(cString: strerror(errno)))"
        }
        if let failure {
            unlink(temporary)
            throw MakeCAError(description: failure)
        }
    }

    func remove(_ name: String) throws {
        guard unlink(self.location(name)) == 0 || errno == ENOENT else {
            throw MakeCAError(description: "cannot remove \(self.location(name)): \(String(cString: strerror(errno)))")
        }
    }
}
