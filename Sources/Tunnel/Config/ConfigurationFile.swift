import Foundation

/// Reading JSON configuration files: readable errors that name the field, unknown fields rejected, and relative
/// paths resolved against the file's own directory.
package enum ConfigurationFile {
    /// Decodes `type` from the JSON file at `path`.
    ///
    /// - Throws: `ConfigurationError.unreadableFile`, `.syntax` with the line and column, or `.malformedFile`
    ///   naming the field at fault.
    package static func read<Value: Decodable>(_ type: Value.Type, path: String) throws -> Value {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ConfigurationError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw ConfigurationError.unreadableFile(path: path, reason: Self.reason(reading: error))
        }
        return try Self.decode(type, from: data, path: path)
    }

    /// Decodes `type` from JSON `data`; `path` only names the source in errors.
    package static func decode<Value: Decodable>(_ type: Value.Type, from data: Data, path: String) throws -> Value {
        do {
            try JSONSyntax.check(Array(data))
        } catch {
            throw ConfigurationError.syntax(path: path, line: error.line, column: error.column, reason: error.reason)
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw ConfigurationError.malformedFile(path: path, reason: Self.describe(error))
        } catch {
            throw ConfigurationError.malformedFile(path: path, reason: "\(error)")
        }
    }

    /// Throws if the JSON object being decoded has a key outside `keys`, so a misspelt field is an error
    /// instead of a silently ignored setting.
    package static func rejectUnknownKeys<Key: CodingKey & CaseIterable>(in decoder: any Decoder, known keys: Key.Type)
        throws
    {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        let known = Set(Key.allCases.map(\.stringValue))
        for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue })
        where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath + [key],
                    debugDescription: "unknown field (known fields: \(known.sorted().joined(separator: ", ")))"))
        }
    }

    /// `path` unchanged if absolute or empty, otherwise relative to `directory`.
    package static func resolve(_ path: String, relativeTo directory: String) -> String {
        if path.isEmpty || path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
    }

    /// The directory holding the file at `path`, absolute.
    package static func directory(of path: String) -> String {
        URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
    }

    /// A JSON field path such as `services[2].credentials.basicAuth`.
    static func fieldPath(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == "\(index)" {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text
    }

    /// One readable line for a decoding failure, starting with the field at fault.
    static func describe(_ error: DecodingError) -> String {
        func located(_ context: DecodingError.Context, _ message: String) -> String {
            let field = Self.fieldPath(context.codingPath)
            return field.isEmpty ? message : "\(field): \(message)"
        }
        switch error {
        case .typeMismatch(let type, let context):
            return located(context, "expected \(Self.jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            return located(context, "expected \(Self.jsonTypeName(type)), found null")
        case .keyNotFound(let key, let context):
            return located(
                .init(codingPath: context.codingPath + [key], debugDescription: ""), "required field is missing")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let detail = context.underlyingError.map { " (\(Self.reason(reading: $0)))" } ?? ""
                return "not valid JSON\(detail)"
            }
            return located(context, context.debugDescription)
        @unknown default:
            return "\(error)"
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Double.Type, is UInt16.Type: "a number"
        case is [String].Type: "an array of strings"
        case is [String: String].Type: "an object of strings"
        default: "\(type)".hasPrefix("Array") ? "an array" : "an object"
        }
    }

    private static func reason(reading error: any Error) -> String {
        let error = error as NSError
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
            let message = strerror(Int32(underlying.code))
        {
            return String(cString: message)
        }
        if let debug = error.userInfo[NSDebugDescriptionErrorKey] as? String { return debug }
        return error.localizedDescription
    }
}

/// A coding key for any string, used to list the keys actually present in a JSON object.
package struct AnyCodingKey: CodingKey {
    package var stringValue: String
    package var intValue: Int?

    package init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }

    package init?(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }
}
