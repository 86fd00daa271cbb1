import Tunnel

/// Reads one single- or double-quoted scalar that may span lines, folding line breaks as YAML does.
struct YAMLQuotedScalarScanner {
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
