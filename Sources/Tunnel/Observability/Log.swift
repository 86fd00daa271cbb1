import Foundation
import Synchronization

/// Severity of a log line; lines below the configured level are not written.
package enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case debug = 0, info, warning, error

    package init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    package var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    package static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Writes one JSON object per line to stderr: `time`, `level`, `msg`, then the given fields.
///
/// Callers pass only non-secret fields; nothing here inspects values.
package enum Log {
    private static let level = Mutex(LogLevel.info)
    private static let component = Mutex("")

    /// Sets the lowest level written and the `component` field every line carries.
    package static func configure(level: LogLevel, component: String) {
        Self.level.withLock { $0 = level }
        Self.component.withLock { $0 = component }
    }

    package static func isEnabled(_ level: LogLevel) -> Bool {
        level >= Self.level.withLock { $0 }
    }

    package static func debug(_ message: String, _ fields: [String: String] = [:]) { write(.debug, message, fields) }
    package static func info(_ message: String, _ fields: [String: String] = [:]) { write(.info, message, fields) }
    package static func warning(_ message: String, _ fields: [String: String] = [:]) { write(.warning, message, fields) }
    package static func error(_ message: String, _ fields: [String: String] = [:]) { write(.error, message, fields) }

    private static func write(_ level: LogLevel, _ message: String, _ fields: [String: String]) {
        guard self.isEnabled(level) else { return }
        var line = "{\"time\":\"\(timestamp())\",\"level\":\"\(level.name)\""
        let component = Self.component.withLock { $0 }
        if !component.isEmpty { line += ",\"component\":\(jsonString(component))" }
        line += ",\"msg\":\(jsonString(message))"
        for key in fields.keys.sorted() {
            line += ",\(jsonString(key)):\(jsonString(fields[key]!))"
        }
        line += "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1_000_000))
    }

    /// `value` as a JSON string literal.
    package static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
