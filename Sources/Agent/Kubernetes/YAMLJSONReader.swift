import Tunnel

/// Reads a JSON document (the flow subset of YAML that `kubectl … -o json` writes) into nodes.
struct YAMLJSONReader {
    let bytes: [UInt8]
    var index = 0
    /// Line number of `bytes[0]`, 0-based.
    let firstLine: Int

    init(lines: [Substring], startLine: Int) {
        self.bytes = Array(lines[startLine...].joined(separator: "\n").utf8)
        self.firstLine = startLine
    }

    mutating func readDocument() throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        let node = try self.readValue(depth: 0)
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.error("unexpected text after the JSON document") }
        return node
    }

    func error(_ reason: String) -> YAMLSubset.ParseError {
        let newlines = self.bytes[..<min(self.index, self.bytes.count)].filter { $0 == UInt8(ascii: "\n") }.count
        return YAMLSubset.ParseError(line: self.firstLine + newlines + 1, reason: reason)
    }

    mutating func skipWhitespace() {
        while self.index < self.bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(self.bytes[self.index]) {
            self.index += 1
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(YAMLSubset.ParseError) {
        self.skipWhitespace()
        guard self.index < self.bytes.count, self.bytes[self.index] == byte else {
            throw self.error("expected \(what)")
        }
        self.index += 1
    }

    mutating func readValue(depth: Int) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        guard depth < YAMLSubset.maxDepth else {
            throw self.error("JSON nested deeper than \(YAMLSubset.maxDepth) levels")
        }
        self.skipWhitespace()
        guard self.index < self.bytes.count else { throw self.error("unexpected end of the JSON document") }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"):
            self.index += 1
            var entries: [String: YAMLSubset.Node] = [:]
            self.skipWhitespace()
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "}") {
                self.index += 1
                return .mapping(entries)
            }
            while true {
                self.skipWhitespace()
                guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else {
                    throw self.error("expected a quoted key in a JSON object")
                }
                let key = try self.readString()
                guard entries[key] == nil else { throw self.error("duplicate key \"\(key)\"") }
                try self.expect(UInt8(ascii: ":"), "`:` after a JSON object key")
                entries[key] = try self.readValue(depth: depth + 1)
                self.skipWhitespace()
                if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ",") {
                    self.index += 1
                    continue
                }
                try self.expect(UInt8(ascii: "}"), "`,` or `}` in a JSON object")
                return .mapping(entries)
            }
        case UInt8(ascii: "["):
            self.index += 1
            var items: [YAMLSubset.Node] = []
            self.skipWhitespace()
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "]") {
                self.index += 1
                return .sequence(items)
            }
            while true {
                items.append(try self.readValue(depth: depth + 1))
                self.skipWhitespace()
                if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ",") {
                    self.index += 1
                    continue
                }
                try self.expect(UInt8(ascii: "]"), "`,` or `]` in a JSON array")
                return .sequence(items)
            }
        case UInt8(ascii: "\""):
            return .scalar(try self.readString())
        default:
            let start = self.index
            while self.index < self.bytes.count,
                Self.isLiteralByte(self.bytes[self.index])
            {
                self.index += 1
            }
            let literal = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
            if literal == "null" { return .null }
            if literal == "true" || literal == "false" || Self.isNumber(literal) { return .scalar(literal) }
            self.index = start
            throw self.error("expected a JSON value")
        }
    }

    static func isLiteralByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "E")
    }

    static func isNumber(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "-" { rest = rest.dropFirst() }
        let integer = rest.prefix { $0.isASCII && $0.isNumber }
        guard !integer.isEmpty, integer == "0" || integer.first != "0" else { return false }
        rest = rest.dropFirst(integer.count)
        if rest.first == "." {
            let fraction = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
            guard !fraction.isEmpty else { return false }
            rest = rest.dropFirst(1 + fraction.count)
        }
        if rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
            let exponent = rest.prefix { $0.isASCII && $0.isNumber }
            guard !exponent.isEmpty else { return false }
            rest = rest.dropFirst(exponent.count)
        }
        return rest.isEmpty
    }

    /// A JSON string at `index` (its opening quote).
    mutating func readString() throws(YAMLSubset.ParseError) -> String {
        let start = self.index
        self.index += 1
        var utf8: [UInt8] = []
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                self.index += 1
                guard self.index < self.bytes.count else { break }
                let escape = self.bytes[self.index]
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try self.readHex4()
                    if (0xD800...0xDBFF).contains(code), self.bytes[self.index...].starts(with: Array("\\u".utf8)) {
                        self.index += 2
                        let low = try self.readHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw self.error("invalid UTF-16 surrogate pair") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw self.error("invalid \\u escape") }
                    utf8.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    self.index -= 1
                    throw self.error("unknown escape in a JSON string")
                }
            case 0x0A:
                self.index = start
                throw self.error("unterminated JSON string")
            default:
                guard byte >= 0x20 else { throw self.error("control character in a JSON string") }
                utf8.append(byte)
                self.index += 1
            }
        }
        self.index = start
        throw self.error("unterminated JSON string")
    }

    mutating func readHex4() throws(YAMLSubset.ParseError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count,
            let code = UInt32(String(decoding: self.bytes[self.index..<self.index + 4], as: UTF8.self), radix: 16)
        else { throw self.error("`\\u` needs 4 hex digits") }
        self.index += 4
        return code
    }
}
