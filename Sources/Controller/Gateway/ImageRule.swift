/// Which images a debug container may run: exact references and globs, optionally only pinned by digest.
///
/// References are compared as written, without Docker's normalisation (`busybox` is not
/// `docker.io/library/busybox:latest`). An entry without a digest also admits that reference pinned by any digest
/// (`tools/netshoot:v1` admits `tools/netshoot:v1@sha256:…`). In a glob, `*` matches within one '/'-separated
/// part: `registry.example.com/tools/*` admits `registry.example.com/tools/netshoot:v1`, not
/// `registry.example.com/tools/x/y:1`.
struct ImageRule: Sendable, Equatable, Codable {
    /// Exact references and globs; empty allows no image.
    var allowed: [String]
    /// Whether the image must be pinned `@sha256:<64 hex digits>`.
    var requireDigest: Bool

    /// Allows `allowed`, pinned by digest if `requireDigest`.
    init(allowed: [String] = [], requireDigest: Bool = false) {
        self.allowed = allowed
        self.requireDigest = requireDigest
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case allowed, requireDigest }

    /// Decodes `images`; every field is optional, unknown fields are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.allowed = try container.decodeIfPresent([String].self, forKey: .allowed) ?? []
        self.requireDigest = try container.decodeIfPresent(Bool.self, forKey: .requireDigest) ?? false
    }

    /// Whether `image` may run, and if not why (`"evil:1" is not in the allowed images (…)`).
    func check(_ image: String) -> ImageVerdict {
        if let problem = Self.problem(with: image, isPattern: false) { return .denied(reason: "image \(problem)") }
        let (withoutDigest, digest) = Self.splitDigest(image)
        if self.requireDigest, digest == nil {
            return .denied(reason: "image \"\(image)\" must be pinned by digest (@sha256:…)")
        }
        for entry in self.allowed {
            if entry.contains("*") {
                if Self.globMatches(entry, image) || Self.globMatches(entry, withoutDigest) {
                    return .allowed(matchedEntry: entry)
                }
            } else if entry == image || (!entry.contains("@") && entry == withoutDigest) {
                return .allowed(matchedEntry: entry)
            }
        }
        let list = self.allowed.isEmpty ? "no image is allowed" : "allowed: \(self.allowed.joined(separator: ", "))"
        return .denied(reason: "image \"\(image)\" is not allowed (\(list))")
    }

    func validate(field: String) throws(PolicyFile.Invalid) {
        for (index, entry) in self.allowed.enumerated() {
            if let problem = Self.problem(with: entry, isPattern: true) {
                throw PolicyFile.Invalid(field: "\(field).allowed[\(index)]", reason: problem)
            }
        }
    }

    /// `(reference without digest, digest)`: `a/b:1@sha256:…` → `("a/b:1", "sha256:…")`.
    static func splitDigest(_ image: String) -> (String, String?) {
        guard let at = image.firstIndex(of: "@") else { return (image, nil) }
        return (String(image[..<at]), String(image[image.index(after: at)...]))
    }

    private static func globMatches(_ pattern: String, _ image: String) -> Bool {
        let patternParts = pattern.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        let imageParts = image.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        return patternParts.count == imageParts.count
            && zip(patternParts, imageParts).allSatisfy { NameGlob.matches(pattern: $0, name: $1) }
    }

    /// Why `text` is not an image reference (or, with `isPattern`, a reference glob), or nil.
    private static func problem(with text: String, isPattern: Bool) -> String? {
        if text.isEmpty { return "must not be empty" }
        let allowedCharacters = isPattern ? "._-/:@*" : "._-/:@"
        let isAllowed = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || allowedCharacters.contains(c)) }
        if let bad = text.first(where: { !isAllowed($0) }) {
            return "\"\(text)\" has '\(bad)', which no image reference holds"
        }
        if isPattern, text.contains("**") { return "\"\(text)\" has \"**\"; * already matches any run within a part" }
        if text.hasPrefix("/") || text.hasSuffix("/") || text.contains("//") {
            return "\"\(text)\" has an empty path part"
        }
        let (_, digest) = Self.splitDigest(text)
        if let digest, !(isPattern && digest.contains("*")) {
            let hex = digest.dropFirst("sha256:".count)
            guard digest.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else { return "\"\(text)\" has a digest that is not sha256: and 64 lowercase hexadecimal digits" }
        }
        return nil
    }
}

/// Whether an image may run in a debug container.
enum ImageVerdict: Sendable, Equatable {
    /// It may; `matchedEntry` is the allow-list entry that admitted it.
    case allowed(matchedEntry: String)
    /// It may not, and why.
    case denied(reason: String)

    /// Whether the image may run.
    var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }
}
