import Tunnel

/// A recursive-descent parser over lines; each structural line is (indentation, content).
struct YAMLBlockParser {
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
        var scanner = YAMLQuotedScalarScanner(lines: self.lines, line: line.number - 1, text: text)
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
            var scanner = YAMLQuotedScalarScanner(lines: [content], line: 0, text: content)
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
