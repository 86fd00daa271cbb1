/// Certificates and keys read from PEM files, with errors that name the file, what it is for, and what it held
/// instead: `ca.crt (the CA certificate): expected a PEM CERTIFICATE, found a PRIVATE KEY`.
package enum PEMFile {
    /// The certificates in `path`, in order (leaf first for a chain); `role` says what the file is for.
    package static func certificates(_ path: String, role: String) throws -> [Certificate] {
        let text = try Self.read(path, role: role, expecting: "CERTIFICATE")
        do {
            return try Certificate.chain(pem: text)
        } catch let error as OpenSSLError {
            throw PEMFileError(path: path, role: role, problem: .unparsable(expected: "CERTIFICATE", error))
        }
    }

    /// The private key in `path`; `role` says what the file is for.
    package static func privateKey(_ path: String, role: String) throws -> PrivateKey {
        let text = try Self.read(path, role: role, expecting: "PRIVATE KEY")
        do {
            return try PrivateKey(pem: text)
        } catch let error as OpenSSLError {
            throw PEMFileError(path: path, role: role, problem: .unparsable(expected: "PRIVATE KEY", error))
        }
    }

    /// The text of `path`, checked to hold a PEM block of `kind` (`PRIVATE KEY` also matches `EC PRIVATE KEY`).
    package static func read(_ path: String, role: String, expecting kind: String) throws -> String {
        let text = try TextFile.read(path, role: role)
        let labels = Self.labels(in: text)
        guard labels.contains(where: { $0 == kind || $0.hasSuffix(" \(kind)") }) else {
            throw PEMFileError(path: path, role: role, problem: .wrongContent(expected: kind, found: labels.first))
        }
        return text
    }

    /// The labels of the `-----BEGIN LABEL-----` lines in `text`, in order.
    static func labels(in text: String) -> [String] {
        var labels: [String] = []
        var rest = Substring(text)
        while let begin = rest.range(of: "-----BEGIN ") {
            rest = rest[begin.upperBound...]
            guard let end = rest.range(of: "-----") else { break }
            labels.append(String(rest[..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return labels
    }
}

/// A PEM file that does not hold what it should.
package struct PEMFileError: UserFileError, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    package enum Problem: Equatable, Sendable {
        /// No block of the expected kind; `found` is the first block's label, nil when there is no PEM at all.
        case wrongContent(expected: String, found: String?)
        /// A block of the right kind that OpenSSL cannot parse.
        case unparsable(expected: String, OpenSSLError)
    }

    package let path: String
    package let role: String
    package let problem: Problem

    package var description: String {
        let file = "\(self.path) (the \(self.role))"
        switch self.problem {
        case .wrongContent(let expected, let found?):
            let article = found.first.map { "AEIOU".contains($0) } == true ? "an" : "a"
            return "\(file): expected a PEM \(expected), found \(article) \(found)"
        case .wrongContent(let expected, nil):
            return "\(file): expected a PEM \(expected), found no PEM block"
        case .unparsable(let expected, let error):
            return "\(file): the PEM \(expected) cannot be read: \(error)"
        }
    }
}
