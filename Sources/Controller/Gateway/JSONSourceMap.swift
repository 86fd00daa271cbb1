/// Where each field of a JSON document is written, so an error about `bindings[2].namespaces[0]` can say
/// `line 14, column 9`; also finds where a document stops being JSON, which Foundation's decoder does not say.
struct JSONSourceMap: Sendable, Equatable {
    /// A 1-based line and column (in Unicode scalars, as editors count them).
    struct Location: Sendable, Equatable, CustomStringConvertible {
        var line: Int
        var column: Int

        var description: String { "\(self.line):\(self.column)" }
    }

    /// Why the text is not JSON, and where.
    struct SyntaxError: Error, Equatable, Sendable {
        var location: Location
        var reason: String
    }

    /// The location of every object member (its key) and array element, by field path (`a.b[2].c`); the root is
    /// the empty path.
    private(set) var locations: [String: Location] = [:]

    /// Maps `text`; throws at the first place it is not JSON.
    init(text: String) throws(SyntaxError) {
        var scanner = Scanner(scalars: Array(text.unicodeScalars))
        try scanner.skipWhitespace()
        self.locations[""] = scanner.location
        try scanner.value(path: "", into: &self.locations)
        try scanner.skipWhitespace()
        if !scanner.isAtEnd { throw scanner.error("unexpected text after the JSON value") }
    }

    /// The location of `field` (as `ConfigurationFile`-style paths are written), or of its nearest enclosing field
    /// that exists, so a missing field points at the object that lacks it.
    func location(of field: String) -> Location? {
        var path = field
        while true {
            if let location = self.locations[path] { return location }
            guard !path.isEmpty else { return nil }
            if path.hasSuffix("]"), let open = path.lastIndex(of: "[") {
                path = String(path[..<open])
            } else if let dot = path.lastIndex(of: ".") {
                path = String(path[..<dot])
            } else {
                path = ""
            }
        }
    }

    /// A cursor over the document that records locations as it validates.
    private struct Scanner {
        let scalars: [Unicode.Scalar]
        var index = 0
        var line = 1
        var column = 1
        var depth = 0

        /// Deeper documents are refused rather than risking the stack; no policy nests this far.
        static let maximumDepth = 256

        var isAtEnd: Bool { self.index >= self.scalars.count }
        var location: Location { Location(line: self.line, column: self.column) }
        var current: Unicode.Scalar? { self.isAtEnd ? nil : self.scalars[self.index] }

        func error(_ reason: String) -> SyntaxError { SyntaxError(location: self.location, reason: reason) }

        mutating func advance() {
            if self.scalars[self.index] == "\n" {
                self.line += 1
                self.column = 1
            } else {
                self.column += 1
            }
            self.index += 1
        }

        mutating func skipWhitespace() throws(SyntaxError) {
            while let scalar = self.current, scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" {
                self.advance()
            }
        }

        mutating func expect(_ scalar: Unicode.Scalar, _ what: String) throws(SyntaxError) {
            guard self.current == scalar else {
                throw self.error(self.isAtEnd ? "unexpected end of file, expected \(what)" : "expected \(what)")
            }
            self.advance()
        }

        mutating func value(path: String, into locations: inout [String: Location]) throws(SyntaxError) {
            self.depth += 1
            defer { self.depth -= 1 }
            guard self.depth <= Self.maximumDepth else {
                throw self.error("nested more than \(Self.maximumDepth) levels deep")
            }
            switch self.current {
            case "{": try self.object(path: path, into: &locations)
            case "[": try self.array(path: path, into: &locations)
            case "\"": _ = try self.string()
            case "t": try self.literal("true")
            case "f": try self.literal("false")
            case "n": try self.literal("null")
            case let scalar? where scalar == "-" || ("0"..."9").contains(scalar): try self.number()
            case nil: throw self.error("unexpected end of file, expected a value")
            case let scalar?: throw self.error("unexpected character '\(scalar)', expected a value")
            }
        }

        mutating func object(path: String, into locations: inout [String: Location]) throws(SyntaxError) {
            self.advance()
            try self.skipWhitespace()
            if self.current == "}" {
                self.advance()
                return
            }
            while true {
                try self.skipWhitespace()
                let keyLocation = self.location
                guard self.current == "\"" else {
                    throw self.error(self.isAtEnd ? "unexpected end of file, expected a field name" : "expected a "
                        + "field name in double quotes")
                }
                let key = try self.string()
                let member = path.isEmpty ? key : "\(path).\(key)"
                locations[member] = keyLocation
                try self.skipWhitespace()
                try self.expect(":", "':' after the field name")
                try self.skipWhitespace()
                try self.value(path: member, into: &locations)
                try self.skipWhitespace()
                if self.current == "," {
                    self.advance()
                    continue
                }
                try self.expect("}", "',' or '}'")
                return
            }
        }

        mutating func array(path: String, into locations: inout [String: Location]) throws(SyntaxError) {
            self.advance()
            try self.skipWhitespace()
            if self.current == "]" {
                self.advance()
                return
            }
            var element = 0
            while true {
                try self.skipWhitespace()
                let member = "\(path)[\(element)]"
                locations[member] = self.location
                try self.value(path: member, into: &locations)
                try self.skipWhitespace()
                if self.current == "," {
                    self.advance()
                    element += 1
                    continue
                }
                try self.expect("]", "',' or ']'")
                return
            }
        }

        /// A string's contents; escapes are checked, and decoded only as far as a field name needs.
        mutating func string() throws(SyntaxError) -> String {
            self.advance()
            var text = String.UnicodeScalarView()
            while true {
                guard let scalar = self.current else { throw self.error("unexpected end of file inside a string") }
                if scalar == "\"" {
                    self.advance()
                    return String(text)
                }
                if scalar.value < 0x20 { throw self.error("control character inside a string") }
                if scalar == "\\" {
                    self.advance()
                    guard let escaped = self.current else { throw self.error("unexpected end of file inside a string") }
                    switch escaped {
                    case "\"", "\\", "/": text.append(escaped)
                    case "b", "f", "n", "r", "t": text.append(" ")
                    case "u":
                        var value: UInt32 = 0
                        for _ in 0..<4 {
                            self.advance()
                            guard let digit = self.current, let nibble = UInt32(String(digit), radix: 16) else {
                                throw self.error("expected four hexadecimal digits after \\u")
                            }
                            value = value * 16 + nibble
                        }
                        text.append(Unicode.Scalar(value) ?? "?")
                    default: throw self.error("unknown escape '\\\(escaped)'")
                    }
                    self.advance()
                    continue
                }
                text.append(scalar)
                self.advance()
            }
        }

        mutating func literal(_ word: String) throws(SyntaxError) {
            for expected in word.unicodeScalars {
                guard self.current == expected else { throw self.error("unexpected character, expected \(word)") }
                self.advance()
            }
        }

        mutating func number() throws(SyntaxError) {
            func digits(_ scanner: inout Scanner) throws(SyntaxError) {
                guard let first = scanner.current, ("0"..."9").contains(first) else {
                    throw scanner.error("expected a digit")
                }
                while let scalar = scanner.current, ("0"..."9").contains(scalar) { scanner.advance() }
            }
            if self.current == "-" { self.advance() }
            if self.current == "0" {
                self.advance()
            } else {
                try digits(&self)
            }
            if self.current == "." {
                self.advance()
                try digits(&self)
            }
            if self.current == "e" || self.current == "E" {
                self.advance()
                if self.current == "+" || self.current == "-" { self.advance() }
                try digits(&self)
            }
        }
    }
}
