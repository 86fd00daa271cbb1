import Foundation

/// An ordered list of header fields that keeps duplicates and the sender's case.
///
/// Lookups ignore case, as HTTP field names do.
package struct HTTPHeaders: Sendable, Equatable, Sequence {
    /// The fields in the order they arrived.
    package private(set) var fields: [(name: String, value: String)]

    /// An empty list, or the given fields in order.
    package init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    package static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    package func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        self.fields.makeIterator()
    }

    /// The number of fields.
    package var count: Int { self.fields.count }

    /// Room for `count` fields without regrowing.
    package mutating func reserveCapacity(_ count: Int) {
        self.fields.reserveCapacity(count)
    }

    /// Appends a field, keeping any others of the same name.
    package mutating func add(name: String, value: String) {
        self.fields.append((name, value))
    }

    /// Replaces every field of this name with one.
    package mutating func replaceOrAdd(name: String, value: String) {
        self.remove(name: name)
        self.fields.append((name, value))
    }

    /// Removes every field of this name.
    package mutating func remove(name: String) {
        self.fields.removeAll { $0.name.caseInsensitiveEquals(name) }
    }

    /// Removes every field whose name the predicate accepts.
    package mutating func removeAll(where shouldRemove: (String) -> Bool) {
        self.fields.removeAll { shouldRemove($0.name) }
    }

    /// The first value of this name.
    package subscript(first name: String) -> String? {
        self.fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Every value of this name, in order.
    package subscript(all name: String) -> [String] {
        self.fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    /// Whether a field of this name exists.
    package func contains(name: String) -> Bool {
        self.fields.contains { $0.name.caseInsensitiveEquals(name) }
    }

    /// The comma-separated tokens of every field of this name, lowercased (`Connection: keep-alive, Upgrade`).
    package func tokens(_ name: String) -> [String] {
        var tokens: [String] = []
        for field in self.fields where field.name.caseInsensitiveEquals(name) {
            for piece in field.value.utf8.split(separator: UInt8(ascii: ",")) {
                let token = piece.trimmingOptionalWhitespace()
                if !token.isEmpty { tokens.append(String(decoding: token.map(asciiLowercase), as: UTF8.self)) }
            }
        }
        return tokens
    }
}

@inline(__always) private func asciiLowercase(_ byte: UInt8) -> UInt8 {
    byte >= 65 && byte <= 90 ? byte + 32 : byte
}

extension BidirectionalCollection where Element == UInt8 {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace, RFC 9110 §5.6.3).
    package func trimmingOptionalWhitespace() -> SubSequence {
        let isContent = { (byte: UInt8) in byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") }
        guard let first = self.firstIndex(where: isContent), let last = self.lastIndex(where: isContent) else {
            return self[self.endIndex...]
        }
        return self[first...last]
    }
}

extension StringProtocol where UTF8View: BidirectionalCollection {
    /// Without leading and trailing spaces and tabs; ASCII only, with none of Foundation's Unicode work.
    package func trimmingOptionalWhitespace() -> String {
        String(decoding: self.utf8.trimmingOptionalWhitespace(), as: UTF8.self)
    }
}

extension String {
    /// With ASCII A–Z lowercased and everything else unchanged, as header names compare; no copy when there is
    /// nothing to change (the usual case on HTTP/2, whose field names are lowercase already).
    package func asciiLowercased() -> String {
        var copy = self
        return copy.withUTF8 { bytes in
            guard bytes.contains(where: { $0 >= 65 && $0 <= 90 }) else { return self }
            return String(unsafeUninitializedCapacity: bytes.count) { out in
                for index in 0..<bytes.count { out[index] = asciiLowercase(bytes[index]) }
                return bytes.count
            }
        }
    }

    /// Whether the UTF-8 bytes start with `prefix`'s: no Unicode normalisation, for protocol tokens.
    package func hasASCIIPrefix(_ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        var copy = self
        return copy.withUTF8 { bytes in
            bytes.count >= count && memcmp(bytes.baseAddress!, prefix.utf8Start, count) == 0
        }
    }

    /// ASCII case-insensitive equality, as header names compare.
    package func caseInsensitiveEquals(_ other: String) -> Bool {
        guard self.utf8.count == other.utf8.count else { return false }
        var a = self
        var b = other
        return a.withUTF8 { x in
            b.withUTF8 { y in
                for index in 0..<x.count where x[index] != y[index] {
                    if asciiLowercase(x[index]) != asciiLowercase(y[index]) { return false }
                }
                return true
            }
        }
    }
}

/// The start line and headers of an HTTP request, independent of HTTP version.
package struct HTTPRequestHead: Sendable, Equatable {
    /// `GET`, `POST`, ...
    package var method: String
    /// The request target as sent: path and query (`/api/v1/pods?watch=1`).
    package var target: String
    /// `HTTP/1.1`, `HTTP/1.0`, or `HTTP/2`.
    package var version: String
    package var headers: HTTPHeaders

    package init(method: String, target: String, version: String = "HTTP/1.1", headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }
}

/// The status line and headers of an HTTP response.
package struct HTTPResponseHead: Sendable, Equatable {
    package var status: Int
    package var reason: String
    package var version: String
    package var headers: HTTPHeaders

    package init(status: Int, reason: String = "", version: String = "HTTP/1.1", headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
    }
}
