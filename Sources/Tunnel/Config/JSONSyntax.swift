/// A strict RFC 8259 syntax check that says where a document goes wrong: Foundation's decoder accepts trailing
/// commas and reports a syntax error without a position, so configuration files pass through this first.
enum JSONSyntax {
    /// Where and why a document is not JSON; `line` and `column` count from 1, the column in characters.
    struct Failure: Error, Equatable, Sendable {
        var line: Int
        var column: Int
        var reason: String
    }

    /// Throws at the first syntax error in `bytes`.
    static func check(_ bytes: [UInt8]) throws(Failure) {
        var scanner = Scanner(bytes: bytes)
        scanner.skipWhitespace()
        guard scanner.index < bytes.count else { throw scanner.failure("the file is empty; expected a JSON object") }
        try scanner.value(depth: 0)
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw scanner.failure("unexpected text after the JSON document") }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        func failure(_ reason: String, at position: Int? = nil) -> Failure {
            let position = min(position ?? self.index, self.bytes.count)
            let lineStart = self.bytes[..<position].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let line = self.bytes[..<lineStart].count { $0 == UInt8(ascii: "\n") } + 1
            // Characters, not bytes: UTF-8 continuation bytes do not start one.
            let column = self.bytes[lineStart..<position].count { $0 & 0xC0 != 0x80 } + 1
            return Failure(line: line, column: column, reason: reason)
        }

        var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

        mutating func skipWhitespace() {
            while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                self.index += 1
            }
        }

        mutating func value(depth: Int) throws(Failure) {
            guard depth < 256 else { throw self.failure("JSON nested deeper than 256 levels") }
            self.skipWhitespace()
            guard let byte = self.current else { throw self.failure("unexpected end of the file; expected a value") }
            switch byte {
            case UInt8(ascii: "{"): try self.container(depth: depth, close: UInt8(ascii: "}"), isObject: true)
            case UInt8(ascii: "["): try self.container(depth: depth, close: UInt8(ascii: "]"), isObject: false)
            case UInt8(ascii: "\""): try self.string()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try self.number()
            case UInt8(ascii: "t"): try self.literal("true")
            case UInt8(ascii: "f"): try self.literal("false")
            case UInt8(ascii: "n"): try self.literal("null")
            default: throw self.failure("expected a value, found \(Self.describe(byte))")
            }
        }

        /// An object or array, from its opening bracket; a comma before the closing one is an error of its own.
        mutating func container(depth: Int, close: UInt8, isObject: Bool) throws(Failure) {
            let what = isObject ? "object" : "array"
            let closing = isObject ? "`}`" : "`]`"
            self.index += 1
            self.skipWhitespace()
            if self.current == close {
                self.index += 1
                return
            }
            while true {
                if isObject {
                    self.skipWhitespace()
                    guard self.current == UInt8(ascii: "\"") else {
                        throw self.failure(self.current == nil ? "unexpected end of the file inside an object"
                                               : "expected a quoted field name, found \(Self.describe(self.current!))")
                    }
                    try self.string()
                    self.skipWhitespace()
                    guard self.current == UInt8(ascii: ":") else {
                        throw self.failure("expected `:` after the field name")
                    }
                    self.index += 1
                }
                try self.value(depth: depth + 1)
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    let comma = self.index
                    self.index += 1
                    self.skipWhitespace()
                    if self.current == close {
                        throw self.failure("trailing comma before \(closing); JSON allows none", at: comma)
                    }
                case close:
                    self.index += 1
                    return
                case nil:
                    throw self.failure("unexpected end of the file inside an \(what); expected `,` or \(closing)")
                case let byte?:
                    throw self.failure("expected `,` or \(closing) in an \(what), found \(Self.describe(byte))")
                }
            }
        }

        mutating func string() throws(Failure) {
            let start = self.index
            self.index += 1
            while let byte = self.current {
                switch byte {
                case UInt8(ascii: "\""):
                    self.index += 1
                    return
                case UInt8(ascii: "\\"):
                    self.index += 1
                    switch self.current {
                    case UInt8(ascii: "u"):
                        let digits = self.bytes[(self.index + 1)...].prefix(4)
                        guard digits.count == 4, digits.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }) else {
                            throw self.failure("`\\u` needs 4 hex digits")
                        }
                        self.index += 5
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        self.index += 1
                    default:
                        throw self.failure("unknown escape in a string")
                    }
                case 0..<0x20:
                    throw self.failure("control character in a string (write \\n, \\t … instead)")
                default:
                    self.index += 1
                }
            }
            throw self.failure("unterminated string", at: start)
        }

        mutating func number() throws(Failure) {
            let start = self.index
            if self.current == UInt8(ascii: "-") { self.index += 1 }
            if self.current == UInt8(ascii: "0") {
                self.index += 1
                guard self.digits() == 0 else { throw self.failure("a number cannot start with 0", at: start) }
            } else {
                guard self.digits() > 0 else { throw self.failure("invalid number", at: start) }
            }
            if self.current == UInt8(ascii: ".") {
                self.index += 1
                guard self.digits() > 0 else { throw self.failure("invalid number: digits must follow `.`") }
            }
            if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
                self.index += 1
                if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
                guard self.digits() > 0 else { throw self.failure("invalid number: digits must follow the exponent") }
            }
        }

        mutating func digits() -> Int {
            let start = self.index
            while let byte = self.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { self.index += 1 }
            return self.index - start
        }

        mutating func literal(_ word: String) throws(Failure) {
            let expected = Array(word.utf8)
            guard self.bytes[self.index...].starts(with: expected) else {
                throw self.failure("expected a value (strings need double quotes)")
            }
            self.index += expected.count
        }

        static func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "`\(Character(Unicode.Scalar(byte)))`" : "byte 0x\(String(byte, radix: 16))"
        }
    }
}
