import Foundation
import Tunnel

/// Reading policy files: decoding with unknown fields rejected, validation, and errors that name the file, the
/// field path and its line and column (the conventions of `ConfigurationFile`).
enum PolicyFile {
    /// A value that fails validation; `field` is its JSON path. Becomes a `PolicyError` once the file is known.
    struct Invalid: Error, Equatable, Sendable {
        var field: String
        var reason: String
    }

    /// Reads, decodes and validates the policy at `path`.
    static func load(path: String) throws(PolicyError) -> Policy {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PolicyError(path: path, field: nil, location: nil, reason: "cannot read: \(Self.errnoText())")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw PolicyError(
                path: path, field: nil, location: nil, reason: "cannot read: \(error.localizedDescription)")
        }
        return try Self.decode(data, path: path)
    }

    /// Decodes and validates JSON `data`; `path` only names the source in errors.
    static func decode(_ data: Data, path: String) throws(PolicyError) -> Policy {
        let text = String(decoding: data, as: UTF8.self)
        let map: JSONSourceMap
        do {
            map = try JSONSourceMap(text: text)
        } catch {
            throw PolicyError(path: path, field: nil, location: error.location, reason: "not JSON: \(error.reason)")
        }
        func located(_ field: String, _ reason: String) -> PolicyError {
            PolicyError(path: path, field: field, location: map.location(of: field), reason: reason)
        }
        let policy: Policy
        do {
            policy = try JSONDecoder().decode(Policy.self, from: data)
        } catch let error as DecodingError {
            let (field, reason) = Self.describe(error)
            throw located(field, reason)
        } catch {
            throw PolicyError(path: path, field: nil, location: nil, reason: "\(error)")
        }
        do {
            try policy.validate()
        } catch {
            throw located(error.field, error.reason)
        }
        return policy
    }

    /// Throws if the object being decoded has a key outside `keys`, so a misspelt field is an error.
    static func rejectUnknownKeys<Key: CodingKey & CaseIterable>(in decoder: any Decoder, known keys: Key.Type) throws {
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

    /// Group names come from identity providers and may hold spaces, but not be empty or padded.
    static func checkGroupNames(_ groups: [String], field: String) throws(Invalid) {
        for (index, group) in groups.enumerated()
        where group.isEmpty || group.first!.isWhitespace || group.last!.isWhitespace {
            throw Invalid(field: "\(field)[\(index)]", reason: "\"\(group)\" must be non-empty without outer spaces")
        }
    }

    /// A JSON field path such as `bindings[2].namespaces[0]`.
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

    /// The field at fault and one phrase for a decoding failure.
    static func describe(_ error: DecodingError) -> (field: String, reason: String) {
        switch error {
        case .typeMismatch(let type, let context):
            return (Self.fieldPath(context.codingPath), "expected \(Self.jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            return (Self.fieldPath(context.codingPath), "expected \(Self.jsonTypeName(type)), found null")
        case .keyNotFound(let key, let context):
            return (Self.fieldPath(context.codingPath + [key]), "required field is missing")
        case .dataCorrupted(let context):
            return (Self.fieldPath(context.codingPath), context.debugDescription)
        @unknown default:
            return ("", "\(error)")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type: "an integer"
        case is Double.Type: "a number"
        case is [String].Type, is [NameGlob].Type: "an array of strings"
        case is [String: String].Type: "an object of strings"
        default: "\(type)".hasPrefix("Array") ? "an array" : "an object"
        }
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
