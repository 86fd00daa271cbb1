/// Pieces of the Prometheus text exposition format 0.0.4: names, escaping and number formatting.
enum PrometheusText {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, Self.isNameStart(first) || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { Self.isNameStart($0) || ("0"..."9").contains($0) || $0 == ":" }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, Self.isNameStart(first), !name.hasPrefix("__") else {
            return false
        }
        return name.unicodeScalars.allSatisfy { Self.isNameStart($0) || ("0"..."9").contains($0) }
    }

    private static func isNameStart(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_"
    }

    /// Appends the `# HELP` and `# TYPE` lines.
    static func appendHeader(_ text: inout String, name: String, help: String, type: String) {
        text += "# HELP \(name) "
        for character in help.unicodeScalars {
            switch character {
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            default: text.unicodeScalars.append(character)
            }
        }
        text += "\n# TYPE \(name) \(type)\n"
    }

    /// Appends `name{label="value",…} value`.
    static func appendSample(
        _ text: inout String, name: String, labelNames: [String], labelValues: [String], value: Double
    ) {
        text += name
        if !labelNames.isEmpty {
            text += "{"
            for (index, labelName) in labelNames.enumerated() {
                if index > 0 { text += "," }
                text += "\(labelName)=\""
                Self.appendEscapedLabelValue(&text, labelValues[index])
                text += "\""
            }
            text += "}"
        }
        text += " \(Self.format(value))\n"
    }

    /// Label values escape backslash, double quote and newline.
    static func appendEscapedLabelValue(_ text: inout String, _ value: String) {
        for character in value.unicodeScalars {
            switch character {
            case "\\": text += "\\\\"
            case "\"": text += "\\\""
            case "\n": text += "\\n"
            default: text.unicodeScalars.append(character)
            }
        }
    }

    /// Whole numbers without a fraction (`3`, `1`), others shortest round-trip (`0.005`), and `+Inf`, `-Inf`,
    /// `NaN` as the format spells them; matches Go's `FormatFloat(v, 'g', -1, 64)` for common values.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
