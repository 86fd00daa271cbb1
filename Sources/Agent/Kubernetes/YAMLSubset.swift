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
                var reader = YAMLJSONReader(lines: lines, startLine: first)
                return try reader.readDocument()
            }
        }
        var parser = YAMLBlockParser(lines: lines)
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
