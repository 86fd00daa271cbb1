import Foundation

/// Reading the small text files Porthole is configured with, with errors that name the file and its role.
package enum TextFile {
    /// Why a file could not be read: `cannot read the CA certificate /etc/ca.crt: No such file or directory`.
    package struct ReadError: UserFileError, Equatable, Sendable, CustomStringConvertible {
        package let path: String
        package let role: String
        package let reason: String

        package var description: String { "cannot read the \(self.role) \(self.path): \(self.reason)" }
    }

    /// The contents of `path` as UTF-8; `role` says what the file is for ("agent certificate").
    package static func read(_ path: String, role: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ReadError(path: path, role: role, reason: String(cString: strerror(errno)))
        }
        defer { try? handle.close() }
        do {
            let data = try handle.readToEnd() ?? Data()
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw ReadError(path: path, role: role, reason: "\(error.localizedDescription)")
        }
    }
}
