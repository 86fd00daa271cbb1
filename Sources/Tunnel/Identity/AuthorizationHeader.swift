/// An `Authorization` header value as the service listener reads it: `Bearer <token>` or something it refuses.
package enum AuthorizationHeader: Equatable, Sendable {
    /// `Bearer` and a non-empty token.
    case bearer(String)
    /// `Bearer` with nothing after it (`Bearer`, `Bearer `), a mistake worth naming apart from a bad token.
    case emptyBearer
    /// Any other scheme (`Basic …`); `scheme` is the word before the first space.
    case unsupported(scheme: String)

    /// Splits `value` at its first space; the scheme is case-insensitive, surrounding white space is ignored.
    package init(_ value: String) {
        // Byte-wise: a token is hundreds of bytes, and splitting by Character would break graphemes for nothing.
        let trimmed = value.utf8.trimmingOptionalWhitespace()
        let space = trimmed.firstIndex(of: UInt8(ascii: " ")) ?? trimmed.endIndex
        let scheme = String(decoding: trimmed[..<space], as: UTF8.self)
        guard scheme.caseInsensitiveEquals("bearer") else {
            self = .unsupported(scheme: scheme)
            return
        }
        let token = space == trimmed.endIndex ? trimmed[space...] : trimmed[trimmed.index(after: space)...]
        let text = String(decoding: token.trimmingOptionalWhitespace(), as: UTF8.self)
        self = text.isEmpty ? .emptyBearer : .bearer(text)
    }
}
