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
/// Callers pass only non-secret fields; nothing here inspects values. A line is built as bytes and written with
/// one `write(2)`, so lines from different threads never interleave and a request's access line costs little.
package enum Log {
    private static let level = Atomic<Int>(LogLevel.info.rawValue)
    private static let component = Mutex<[UInt8]>([])

    /// Sets the lowest level written and the `component` field every line carries.
    package static func configure(level: LogLevel, component: String) {
        Self.level.store(level.rawValue, ordering: .relaxed)
        Self.component.withLock { $0 = Array(component.utf8) }
    }

    package static func isEnabled(_ level: LogLevel) -> Bool {
        level.rawValue >= Self.level.load(ordering: .relaxed)
    }

    /// Debug lines are off in production: their message and fields are only built when the level is enabled.
    package static func debug(_ message: @autoclosure () -> String,
                              _ fields: @autoclosure () -> [String: String] = [:]) {
        guard self.isEnabled(.debug) else { return }
        write(.debug, message(), fields())
    }
    // Fields are built only when the level is on (the access line of every request is an `info`).
    package static func info(_ message: String, _ fields: @autoclosure () -> [String: String] = [:]) {
        guard self.isEnabled(.info) else { return }
        write(.info, message, fields())
    }
    package static func warning(_ message: String, _ fields: @autoclosure () -> [String: String] = [:]) {
        guard self.isEnabled(.warning) else { return }
        write(.warning, message, fields())
    }
    package static func error(_ message: String, _ fields: @autoclosure () -> [String: String] = [:]) {
        write(.error, message, fields())
    }

    /// Writes one line at `level` if that level is enabled.
    package static func write(_ level: LogLevel, _ message: String, _ fields: [String: String]) {
        guard self.isEnabled(level) else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let bytes = self.line(level: level, message: message, fields: fields, component: Self.component.withLock { $0 },
                              time: now)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }  // stderr is gone; nothing better to do with a log line
                offset += written
            }
        }
    }

    /// One log line, newline included; fields in key order.
    package static func line(level: LogLevel, message: String, fields: [String: String], component: [UInt8],
                             time: timespec) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + message.utf8.count + fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        out.append(contentsOf: #"{"time":""#.utf8)
        self.appendTimestamp(time, to: &out)
        out.append(contentsOf: #"","level":""#.utf8)
        out.append(contentsOf: level.name.utf8)
        out.append(UInt8(ascii: "\""))
        if !component.isEmpty {
            out.append(contentsOf: #","component":""#.utf8)
            out.append(contentsOf: component)
            out.append(UInt8(ascii: "\""))
        }
        out.append(contentsOf: #","msg":"#.utf8)
        self.appendJSONString(message, to: &out)
        for key in fields.keys.sorted() {
            out.append(UInt8(ascii: ","))
            self.appendJSONString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            self.appendJSONString(fields[key]!, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    /// `2026-11-23T13:04:09.672Z`, UTC, milliseconds.
    private static func appendTimestamp(_ time: timespec, to out: inout [UInt8]) {
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        out.append(UInt8(ascii: "."))
        digits(Int(time.tv_nsec / 1_000_000), 3)
        out.append(UInt8(ascii: "Z"))
    }

    /// `value` as a JSON string literal, appended as UTF-8.
    private static func appendJSONString(_ value: String, to out: inout [UInt8]) {
        var value = value
        value.withUTF8 { bytes in
            out.append(UInt8(ascii: "\""))
            var clean = 0  // bytes[..<clean] need no escaping and are not yet copied
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= 0x20 && byte != 0x7f && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                    index += 1
                    continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean..<index]))
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                            Hex.digits[Int(byte >> 4)], Hex.digits[Int(byte & 0xf)]])
                }
                index += 1
                clean = index
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean..<bytes.count]))
            out.append(UInt8(ascii: "\""))
        }
    }

    /// `value` as a JSON string literal.
    package static func jsonString(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count + 2)
        self.appendJSONString(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Milliseconds with one decimal (`9.1`), for the `ms` field of access lines.
    package static func milliseconds(since start: DispatchTime) -> String {
        let tenths = (DispatchTime.now().uptimeNanoseconds &- start.uptimeNanoseconds) / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension DispatchTime {
    /// Seconds from this instant until now, on the monotonic clock.
    package var secondsElapsed: Double {
        Double(DispatchTime.now().uptimeNanoseconds &- self.uptimeNanoseconds) / 1e9
    }
}
