import Foundation

/// The JSON spelling of sessions, audit lines and the Kubernetes objects Porthole writes: sorted keys, no escaped
/// slashes, times as RFC 3339 in UTC with milliseconds (`2025-01-02T03:04:05.678Z`).
enum DebugSessionCoding {
    /// Encodes `value`; the types encoded here cannot fail to encode.
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.text(of: date))
        }
        do {
            return Array(try encoder.encode(value))
        } catch {
            preconditionFailure("cannot encode \(type(of: value)): \(error)")
        }
    }

    /// Decodes `T` from `bytes`, reading times written by `encode` (with or without fractional seconds).
    static func decode<T: Decodable>(_ type: T.Type, from bytes: some Sequence<UInt8>) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Self.date(from: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not a time")
            }
            return date
        }
        return try decoder.decode(type, from: Data(bytes))
    }

    /// `2025-01-02T03:04:05.678Z`.
    ///
    /// Rounded to the millisecond by hand (whole seconds are exact in a `Date`), so a time read back from its text
    /// prints the same text again: a session's deadline is the same before and after a restart.
    static func text(of date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        let seconds = (milliseconds / 1000).rounded(.down)
        let fraction = Int(milliseconds - seconds * 1000)
        let whole = Date(timeIntervalSince1970: seconds).formatted(Date.ISO8601FormatStyle())
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Reads RFC 3339 times in UTC as Kubernetes and `text(of:)` write them.
    static func date(from text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}
