/// A name pattern where `*` stands for any run of characters (possibly none): `*`, `prod-*`, `team-*-dev`.
///
/// Cluster (agent) and namespace names are letters, digits, '.', '_' and '-', so those and `*` are all a pattern
/// may hold; matching is case-sensitive, as Kubernetes and agent names are.
struct NameGlob: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The pattern as written.
    let pattern: String

    /// A pattern known to be valid.
    init(_ pattern: String) {
        precondition(Self.problem(with: pattern) == nil, "invalid glob \(pattern)")
        self.pattern = pattern
    }

    /// Decodes a string; validation happens with the rest of the policy, so the error can name the field.
    init(from decoder: any Decoder) throws {
        self.pattern = try decoder.singleValueContainer().decode(String.self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.pattern)
    }

    var description: String { self.pattern }

    /// Whether the pattern is `*`, matching every name.
    var matchesEverything: Bool { self.pattern == "*" }

    /// Whether `name` matches the whole pattern.
    func matches(_ name: String) -> Bool {
        Self.matches(pattern: self.pattern.utf8, name: name.utf8)
    }

    /// Why `pattern` is not a valid name glob, or nil.
    static func problem(with pattern: String) -> String? {
        if pattern.isEmpty { return "must not be empty" }
        if pattern.contains("**") { return "\"\(pattern)\" has \"**\"; one * already matches any run of characters" }
        if let bad = pattern.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "._-*".contains($0))) }) {
            let hint = "?[]{}".contains(bad) ? " (only * is a wildcard)" : ""
            return "\"\(pattern)\" has '\(bad)'; use letters, digits, '.', '_', '-' and *\(hint)"
        }
        return nil
    }

    /// Glob matching with `*` only, by the classic backtracking walk (linear in practice, no recursion).
    static func matches(pattern: some Collection<UInt8>, name: some Collection<UInt8>) -> Bool {
        let pattern = Array(pattern)
        let name = Array(name)
        let star = UInt8(ascii: "*")
        var p = 0
        var n = 0
        var starAt: Int? = nil
        var resumeAt = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == star {
                starAt = p
                resumeAt = n
                p += 1
            } else if p < pattern.count, pattern[p] == name[n] {
                p += 1
                n += 1
            } else if let starIndex = starAt {
                p = starIndex + 1
                resumeAt += 1
                n = resumeAt
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == star { p += 1 }
        return p == pattern.count
    }
}
