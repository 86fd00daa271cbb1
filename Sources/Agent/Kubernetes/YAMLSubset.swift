import Tunnel

/// Reads the part of YAML that kubeconfigs are written in, and JSON, into a tree of strings.
///
/// Accepted: block mappings, block sequences (including `- key: value` items and sequences at their parent key's
/// indentation, as kubectl writes them), plain, single- and double-quoted scalars (quoted ones may span lines),
/// plain scalars folded over more-indented lines, `#` comments, a leading `---`, the empty flow collections `{}`
/// and `[]`, and a whole document in JSON. Refused, with the line: tabs in indentation, inconsistent indentation,
/// unterminated quotes, non-empty flow collections, block scalars (`|`, `>`), anchors, aliases, tags, directives
/// and further documents.
///
/// Scalars stay text: `true`, `8443` and `"8443"` all read as strings, and the consumer decides what they mean.
enum YAMLSubset {
    /// One node of the document.
    enum Node: Equatable, Sendable {
        /// An empty value, `~`, `null` (unquoted), or JSON `null`.
        case null
        /// Any scalar, as text with quotes and escapes resolved.
        case scalar(String)
        /// A mapping; keys are unique.
        case mapping([String: Node])
        /// A sequence, in order.
        case sequence([Node])
    }

    /// Why a document was refused, and the 1-based line where that became clear.
    struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// 1-based line number.
        var line: Int
        /// What is wrong, without the line number.
        var reason: String

        /// `line N: reason`.
        var description: String { "line \(self.line): \(self.reason)" }
    }

    /// How deep values may nest, in either style, so a hostile file cannot exhaust the stack.
    static let maxDepth = 64

    /// Parses `text` as one YAML (or JSON) document; an empty document is `.null`.
    static func parse(_ text: String) throws(ParseError) -> Node {
        let lines = Self.splitLines(text)
        var first = 0
        while first < lines.count, Self.isBlankOrComment(lines[first]) { first += 1 }
        if first < lines.count {
            let leading = lines[first].drop { $0 == " " || $0 == "\t" }
            if leading.first == "{" || leading.first == "[" {
                var reader = JSONReader(lines: lines, startLine: first)
                return try reader.readDocument()
            }
        }
        var parser = BlockParser(lines: lines)
        return try parser.parseDocument()
    }

    static func splitLines(_ text: String) -> [Substring] {
        // `\r\n` is one Character, so it needs naming as a separator of its own.
        var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
        if lines.first?.first == "\u{FEFF}" { lines[0] = lines[0].dropFirst() }
        return lines
    }

    static func isBlankOrComment(_ line: Substring) -> Bool {
        let content = line.drop { $0 == " " || $0 == "\t" }
        return content.isEmpty || content.first == "#"
    }
}

// MARK: - Block style

/// A recursive-descent parser over lines; each structural line is (indentation, content).
private struct BlockParser {
    /// A structural line: its content starts after `indent` columns of spaces.
    struct Line {
        var number: Int
        var indent: Int
        var content: Substring
    }

    let lines: [Substring]
    /// Index into `lines` of the next line to read.
    var position = 0
    /// Index into `lines` of the `---` or `...` that ends the document, or `lines.count`.
    var end: Int
    /// Replaces the next line's view after `- `, so an item's content reads as a line of its own.
    var pending: Line?
    /// Mappings and sequences open around the value being read.
    var depth = 0

    init(lines: [Substring]) {
        self.lines = lines
        self.end = lines.count
    }

    mutating func parseDocument() throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        if let line = try self.peek(), line.indent == 0, Self.isDocumentMarker(line.content, "---") {
            self.advance()
        }
        self.end =
            self.lines[self.position...].firstIndex {
                Self.isDocumentMarker($0, "---") || Self.isDocumentMarker($0, "...")
            } ?? self.lines.count
        guard let line = try self.peek() else { return .null }
        let node = try self.parseNode(indent: line.indent, parentIndent: -1)
        if let extra = try self.peek() {
            throw self.error(extra, "inconsistent indentation: expected column \(line.indent), found \(extra.indent)")
        }
        if self.end < self.lines.count {
            let marker = self.lines[self.end]
            let rest = self.lines[(self.end + 1)...]
            if let after = rest.firstIndex(where: { !YAMLSubset.isBlankOrComment($0) }) {
                let reason =
                    Self.isDocumentMarker(marker, "---")
                    ? "a second document (`---`) is not supported; a kubeconfig is one document"
                    : "content after the end of the document (`...`)"
                throw YAMLSubset.ParseError(
                    line: Self.isDocumentMarker(marker, "---") ? self.end + 1 : after + 1, reason: reason)
            }
        }
        return node
    }

    // MARK: Lines

    /// The next structural line, skipping blank and comment lines; nil at the end.
    mutating func peek() throws(YAMLSubset.ParseError) -> Line? {
        if let pending = self.pending { return pending }
        while self.position < self.end, YAMLSubset.isBlankOrComment(self.lines[self.position]) {
            self.position += 1
        }
        guard self.position < self.end else { return nil }
        let text = self.lines[self.position]
        let content = text.drop { $0 == " " }
        if content.first == "\t" {
            throw YAMLSubset.ParseError(
                line: self.position + 1, reason: "tab used for indentation; YAML allows spaces only")
        }
        return Line(number: self.position + 1, indent: text.count - content.count, content: content)
    }

    mutating func advance() {
        if self.pending != nil {
            self.pending = nil
        }
        self.position += 1
    }

    func error(_ line: Line, _ reason: String) -> YAMLSubset.ParseError {
        YAMLSubset.ParseError(line: line.number, reason: reason)
    }

    static func isDocumentMarker(_ content: Substring, _ marker: String) -> Bool {
        guard content.hasPrefix(marker) else { return false }
        let rest = content.dropFirst(marker.count)
        return rest.isEmpty || rest.first == " " || rest.first == "\t"
    }

    static func isSequenceItem(_ content: Substring) -> Bool {
        content == "-" || content.hasPrefix("- ") || content.hasPrefix("-\t")
    }

    // MARK: Nodes

    /// Parses the node whose first line is next and starts at `indent` (> `parentIndent`).
    mutating func parseNode(indent: Int, parentIndent: Int) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        guard let line = try self.peek() else { return .null }
        if Self.isSequenceItem(line.content) {
            return try self.parseSequence(indent: indent, isValueOfKeyAtSameIndent: false)
        }
        if try Self.splitKey(line) != nil {
            return try self.parseMapping(indent: indent)
        }
        self.advance()
        return try self.parseInlineValue(line.content, line: line, ownerIndent: parentIndent)
    }

    /// Items at `indent`; a sequence that is the value of a key at the same indentation ends at the next key.
    mutating func parseSequence(
        indent: Int, isValueOfKeyAtSameIndent: Bool
    ) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        try self.enterCollection()
        defer { self.depth -= 1 }
        var items: [YAMLSubset.Node] = []
        while let line = try self.peek(), line.indent == indent, Self.isSequenceItem(line.content) {
            let afterDash = line.content.dropFirst()
            let rest = afterDash.drop { $0 == " " || $0 == "\t" }
            if rest.isEmpty || rest.first == "#" {
                self.advance()
                items.append(try self.parseNestedValue(ownerIndent: indent, allowSameIndentSequence: false))
            } else {
                // `- x`: x's column becomes the indentation of a mapping or sequence the item holds.
                let column = indent + (line.content.count - rest.count)
                self.pending = Line(number: line.number, indent: column, content: rest)
                items.append(try self.parseNode(indent: column, parentIndent: indent))
            }
        }
        if isValueOfKeyAtSameIndent, let line = try self.peek(), line.indent == indent { return .sequence(items) }
        try self.expectEnd(of: indent)
        return .sequence(items)
    }

    mutating func parseMapping(indent: Int) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        try self.enterCollection()
        defer { self.depth -= 1 }
        var entries: [String: YAMLSubset.Node] = [:]
        while let line = try self.peek(), line.indent == indent, !Self.isSequenceItem(line.content) {
            guard let (key, rest) = try Self.splitKey(line) else {
                throw self.error(line, "expected `key: value` in a mapping (or inconsistent indentation)")
            }
            guard entries[key] == nil else { throw self.error(line, "duplicate key \"\(key)\"") }
            self.advance()
            let value = rest.drop { $0 == " " || $0 == "\t" }
            if value.isEmpty || value.first == "#" {
                entries[key] = try self.parseNestedValue(ownerIndent: indent, allowSameIndentSequence: true)
            } else {
                entries[key] = try self.parseInlineValue(value, line: line, ownerIndent: indent)
            }
        }
        try self.expectEnd(of: indent)
        return .mapping(entries)
    }

    /// Counts a mapping or sequence opening; its values sit one level deeper, within `YAMLSubset.maxDepth`.
    mutating func enterCollection() throws(YAMLSubset.ParseError) {
        guard self.depth + 1 < YAMLSubset.maxDepth else {
            let line = try self.peek()?.number ?? self.position + 1
            throw YAMLSubset.ParseError(line: line, reason: "nested deeper than \(YAMLSubset.maxDepth) levels")
        }
        self.depth += 1
    }

    /// After a collection at `indent` ends, the next line must be less indented.
    mutating func expectEnd(of indent: Int) throws(YAMLSubset.ParseError) {
        guard let line = try self.peek(), line.indent >= indent else { return }
        if line.indent > indent {
            throw self.error(line, "inconsistent indentation: expected column \(indent), found \(line.indent)")
        }
        let expected = Self.isSequenceItem(line.content) ? "a mapping key" : "a `- ` sequence item"
        throw self.error(line, "expected \(expected) at column \(indent); a collection cannot mix keys and items")
    }

    /// The value of a key or item whose own line ends after `:` or `-`: the more-indented lines that follow, a
    /// sequence at the key's own indentation, or null.
    mutating func parseNestedValue(
        ownerIndent: Int, allowSameIndentSequence: Bool
    ) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        guard let next = try self.peek() else { return .null }
        if next.indent > ownerIndent {
            return try self.parseNode(indent: next.indent, parentIndent: ownerIndent)
        }
        if allowSameIndentSequence, next.indent == ownerIndent, Self.isSequenceItem(next.content) {
            return try self.parseSequence(indent: ownerIndent, isValueOfKeyAtSameIndent: true)
        }
        return .null
    }

    // MARK: Scalars

    /// A scalar (or `{}`/`[]`) that starts on `line` at `text`; plain and quoted scalars may continue on lines
    /// indented more than `ownerIndent`.
    mutating func parseInlineValue(
        _ text: Substring, line: Line, ownerIndent: Int
    ) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        // Indicators are single scalars: a combining mark after one must not hide it.
        switch text.unicodeScalars.first {
        case "\"", "'":
            return .scalar(try self.readQuoted(text, line: line))
        case "{", "[":
            let isMapping = text.unicodeScalars.first == "{"
            let inner = text.unicodeScalars.dropFirst().drop { $0 == " " || $0 == "\t" }
            guard inner.first == (isMapping ? "}" : "]"), Self.isEndOfLine(Substring(inner.dropFirst())) else {
                throw self.error(
                    line, "flow collections (`{…}`, `[…]`) are supported only when empty; use block style")
            }
            return isMapping ? .mapping([:]) : .sequence([])
        case "|", ">":
            throw self.error(line, "block scalars (`|`, `>`) are not supported; write the value on one line or quoted")
        case "&", "*":
            throw self.error(line, "anchors and aliases (`&`, `*`) are not supported")
        case "!":
            throw self.error(line, "tags (`!`) are not supported")
        case "%", "@", "`":
            throw self.error(line, "a plain value cannot start with `\(text.unicodeScalars.first!)`; quote it")
        default:
            return try self.readPlain(text, line: line, ownerIndent: ownerIndent)
        }
    }

    static func isEndOfLine(_ text: Substring) -> Bool {
        let rest = text.drop { $0 == " " || $0 == "\t" }
        return rest.isEmpty || rest.first == "#"
    }

    /// A plain scalar: up to ` #`, folded with following lines that are more indented than its owner.
    mutating func readPlain(
        _ text: Substring, line: Line, ownerIndent: Int
    ) throws(YAMLSubset.ParseError) -> YAMLSubset.Node {
        var value = try self.plainPart(text, line: line)
        var isMultiline = false
        var blankLines = 0
        while self.position < self.end {
            let raw = self.lines[self.position]
            let content = raw.drop { $0 == " " || $0 == "\t" }
            if content.isEmpty {
                blankLines += 1
                self.position += 1
                continue
            }
            let leading = raw.prefix { $0 == " " }
            guard leading.count > ownerIndent, content.first != "#" else { break }
            let continuation = Line(number: self.position + 1, indent: leading.count, content: content)
            if try Self.splitKey(continuation) != nil {
                throw self.error(continuation, "inconsistent indentation: a key more indented than the value above it")
            }
            value += blankLines == 0 ? " " : String(repeating: "\n", count: blankLines)
            value += try self.plainPart(content, line: continuation)
            blankLines = 0
            isMultiline = true
            self.position += 1
        }
        // Give back trailing blank lines; `peek` skips them anyway.
        self.position -= blankLines
        if !isMultiline, value == "~" || value == "null" || value == "Null" || value == "NULL" { return .null }
        return .scalar(value)
    }

    /// One line's part of a plain scalar, with a trailing comment and spaces removed.
    func plainPart(_ text: Substring, line: Line) throws(YAMLSubset.ParseError) -> String {
        var end = text.endIndex
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "#", index > text.startIndex, [" ", "\t"].contains(text[text.index(before: index)]) {
                end = index
                break
            }
            if character == ":", next == text.endIndex || text[next] == " " || text[next] == "\t" {
                throw self.error(line, "`: ` inside a plain value; quote the value (or a mapping is mis-indented)")
            }
            index = next
        }
        var value = text[..<end]
        while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
        return String(value)
    }

    /// A quoted scalar starting at `text` (its opening quote) on `line`; may continue over following lines. The
    /// rest of the closing line must be empty or a comment.
    mutating func readQuoted(_ text: Substring, line: Line) throws(YAMLSubset.ParseError) -> String {
        var scanner = QuotedScalarScanner(lines: self.lines, line: line.number - 1, text: text)
        let (value, endLine, rest) = try scanner.scan()
        if !Self.isEndOfLine(rest) {
            let hint =
                rest.drop { $0 == " " || $0 == "\t" }.first == ":"
                ? "; a quoted key must be followed by `: `"
                : ""
            throw YAMLSubset.ParseError(line: endLine + 1, reason: "unexpected text after a quoted value\(hint)")
        }
        self.position = endLine + 1
        return value
    }

    /// Splits `key: rest` (plain or quoted key); nil when the line is not a mapping entry.
    static func splitKey(_ line: Line) throws(YAMLSubset.ParseError) -> (String, Substring)? {
        let content = line.content
        switch content.unicodeScalars.first {
        case "\"", "'":
            var scanner = QuotedScalarScanner(lines: [content], line: 0, text: content)
            guard let (key, _, rest) = try? scanner.scan() else { return nil }
            guard rest.first == ":", rest.count == 1 || [" ", "\t"].contains(rest.dropFirst().first) else {
                return nil
            }
            return (key, rest.dropFirst())
        case "#", "{", "[", "|", ">", "&", "*", "!", "%", "@", "`", "?":
            return nil
        default:
            var index = content.startIndex
            while index < content.endIndex {
                let next = content.index(after: index)
                if content[index] == "#", index > content.startIndex,
                    [" ", "\t"].contains(content[content.index(before: index)])
                {
                    return nil
                }
                if content[index] == ":", next == content.endIndex || content[next] == " " || content[next] == "\t" {
                    var key = content[..<index]
                    while let last = key.last, last == " " || last == "\t" { key = key.dropLast() }
                    return (String(key), content[next...])
                }
                index = next
            }
            return nil
        }
    }
}

// MARK: - Quoted scalars

/// Reads one single- or double-quoted scalar that may span lines, folding line breaks as YAML does.
private struct QuotedScalarScanner {
    let lines: [Substring]
    /// 0-based index into `lines` of the line being read.
    var line: Int
    /// The unread rest of that line, starting at the opening quote.
    var text: Substring

    /// The value, the 0-based line where it closed, and the text after the closing quote.
    ///
    /// Reads Unicode scalars, not Characters: a combining mark after a quote or a backslash must not hide it.
    mutating func scan() throws(YAMLSubset.ParseError) -> (String, Int, Substring) {
        let startLine = self.line
        let quote = self.text.unicodeScalars.first!
        let kind = quote == "\"" ? "double-quoted" : "single-quoted"
        var value = ""
        var scalars = self.text.unicodeScalars
        var index = scalars.index(after: scalars.startIndex)
        var isEscapedBreak = false
        while true {
            guard index < scalars.endIndex else {
                // The line ended inside the quotes: trailing white space goes and the break folds to a space,
                // or to one newline per blank line; after `\` the lines join with nothing between.
                if !isEscapedBreak {
                    while let last = value.unicodeScalars.last, last == " " || last == "\t" {
                        value.unicodeScalars.removeLast()
                    }
                }
                var blankLines = 0
                repeat {
                    guard self.line + 1 < self.lines.count else {
                        throw YAMLSubset.ParseError(line: startLine + 1, reason: "unterminated \(kind) string")
                    }
                    self.line += 1
                    self.text = Substring(self.lines[self.line].unicodeScalars.drop { $0 == " " || $0 == "\t" })
                    blankLines += self.text.isEmpty ? 1 : 0
                } while self.text.isEmpty
                if blankLines > 0 {
                    value += String(repeating: "\n", count: blankLines)
                } else if !isEscapedBreak {
                    value += " "
                }
                isEscapedBreak = false
                scalars = self.text.unicodeScalars
                index = scalars.startIndex
                continue
            }
            let scalar = scalars[index]
            let next = scalars.index(after: index)
            if scalar == quote {
                if quote == "'", next < scalars.endIndex, scalars[next] == "'" {
                    value.unicodeScalars.append("'")
                    index = scalars.index(after: next)
                    continue
                }
                return (value, self.line, Substring(scalars[next...]))
            }
            if quote == "\"", scalar == "\\" {
                if next == scalars.endIndex {
                    isEscapedBreak = true
                    index = next
                    continue
                }
                let (decoded, after) = try self.escape(in: scalars, at: next)
                value.unicodeScalars.append(decoded)
                index = after
                continue
            }
            value.unicodeScalars.append(scalar)
            index = next
        }
    }

    /// Decodes the escape whose letter is at `index`; returns the scalar and the index after it.
    func escape(
        in text: Substring.UnicodeScalarView, at index: Substring.UnicodeScalarView.Index
    ) throws(YAMLSubset.ParseError) -> (Unicode.Scalar, Substring.UnicodeScalarView.Index) {
        let after = text.index(after: index)
        let simple: [Unicode.Scalar: Unicode.Scalar] = [
            "0": "\0", "a": "\u{07}", "b": "\u{08}", "t": "\t", "\t": "\t", "n": "\n", "v": "\u{0B}",
            "f": "\u{0C}", "r": "\r", "e": "\u{1B}", " ": " ", "\"": "\"", "/": "/", "\\": "\\",
            "N": "\u{85}", "_": "\u{A0}", "L": "\u{2028}", "P": "\u{2029}",
        ]
        if let decoded = simple[text[index]] { return (decoded, after) }
        let digits: Int
        switch text[index] {
        case "x": digits = 2
        case "u": digits = 4
        case "U": digits = 8
        default:
            throw YAMLSubset.ParseError(
                line: self.line + 1, reason: "unknown escape `\\\(text[index])` in a double-quoted string")
        }
        guard let number = Self.hexDigits(digits, in: text, at: after) else {
            throw YAMLSubset.ParseError(
                line: self.line + 1, reason: "escape `\\\(text[index])` needs \(digits) hex digits")
        }
        let (code, end) = (number.value, number.end)
        if digits == 4, (0xD800...0xDBFF).contains(code) {
            // A UTF-16 surrogate pair, as JSON writers produce: `\uD83D\uDE00`.
            if end < text.endIndex, text[end] == "\\", text.index(after: end) < text.endIndex,
                text[text.index(after: end)] == "u",
                let low = Self.hexDigits(4, in: text, at: text.index(end, offsetBy: 2)),
                (0xDC00...0xDFFF).contains(low.value),
                let scalar = Unicode.Scalar(0x10000 + ((code - 0xD800) << 10) + (low.value - 0xDC00))
            {
                return (scalar, low.end)
            }
        }
        guard let scalar = Unicode.Scalar(code) else {
            let hex = String(Substring(text[after..<end]))
            throw YAMLSubset.ParseError(
                line: self.line + 1, reason: "escape `\\\(text[index])\(hex)` is not a Unicode scalar")
        }
        return (scalar, end)
    }

    /// The value of exactly `count` hex digits at `start` (no sign), and the index after them.
    static func hexDigits(
        _ count: Int, in text: Substring.UnicodeScalarView, at start: Substring.UnicodeScalarView.Index
    ) -> (value: UInt32, end: Substring.UnicodeScalarView.Index)? {
        var value: UInt32 = 0
        var index = start
        for _ in 0..<count {
            guard index < text.endIndex, text[index].isASCII,
                let digit = Hex.value(UInt8(text[index].value))
            else { return nil }
            value = value << 4 | UInt32(digit)
            index = text.index(after: index)
        }
        return (value, index)
    }
}

// MARK: - JSON

/// Reads a JSON document (the flow subset of YAML that `kubectl … -o json` writes) into nodes.
private struct JSONReader {
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
