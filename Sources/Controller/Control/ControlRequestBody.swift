import Foundation
import Tunnel

/// The JSON object of a control API request body, with typed, validated access to its fields.
///
/// Unknown fields are refused so a misspelt `tll` does not silently fall back to a default.
package struct ControlRequestBody: Sendable {
    private let fields: [String: JSONValue]

    /// Parses `json` as an object whose keys are all in `allowed`; an empty body is an empty object.
    package init(json: [UInt8], allowed: Set<String>) throws(ControlRequestError) {
        if json.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            self.fields = [:]
            return
        }
        guard let fields = try? JSONDecoder().decode([String: JSONValue].self, from: Data(json)) else {
            throw ControlRequestError("the request body must be a JSON object")
        }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            let expected = allowed.sorted().joined(separator: ", ")
            throw ControlRequestError("unknown field \"\(unknown)\"; expected \(expected)")
        }
        self.fields = fields
    }

    /// The string in `field`, `nil` when absent or null.
    package func string(_ field: String) throws(ControlRequestError) -> String? {
        switch self.fields[field] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw ControlRequestError("\(field): must be a string")
        }
    }

    /// The name in `field` (`[A-Za-z0-9._-]+`, as identity URIs require), or `defaultValue` when absent.
    package func name(_ field: String, default defaultValue: String? = nil) throws(ControlRequestError) -> String {
        guard let value = try self.string(field) ?? defaultValue else {
            throw ControlRequestError("\(field): required")
        }
        guard EndpointIdentity.isValidComponent(value) else {
            throw ControlRequestError("\(field): \"\(value)\" must be non-empty letters, digits, '.', '_' or '-'")
        }
        return value
    }

    /// The user name in `field`, or `defaultValue` when absent: 1 to 128 letters, digits, '.', '_', '-', '@'
    /// or '+', so an e-mail address fits; it only ever lands in a certificate CN or a token subject.
    package func userName(_ field: String, default defaultValue: String) throws(ControlRequestError) -> String {
        let value = try self.string(field) ?? defaultValue
        let isValid = (1...128).contains(value.utf8.count)
            && value.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"),
                    UInt8(ascii: "@"), UInt8(ascii: "+"):
                    true
                default:
                    false
                }
            }
        guard isValid else {
            throw ControlRequestError(
                "\(field): \"\(value)\" must be 1 to 128 letters, digits, '.', '_', '-', '@' or '+'")
        }
        return value
    }

    /// A lifetime in whole seconds from `field`, `defaultSeconds` when absent; above `maxSeconds` is refused.
    package func seconds(
        _ field: String, default defaultSeconds: Int, max maxSeconds: Int
    ) throws(ControlRequestError) -> Int {
        let value: Double
        switch self.fields[field] {
        case nil, .null?: return defaultSeconds
        case .number(let number)?: value = number
        default: throw ControlRequestError("\(field): must be a number of seconds")
        }
        guard value.isFinite, value == value.rounded(), value >= 1 else {
            throw ControlRequestError("\(field): must be a whole number of seconds, at least 1")
        }
        guard value <= Double(maxSeconds) else {
            throw ControlRequestError("\(field): \(Int(exactly: value).map(String.init) ?? "\(value)") seconds "
                + "exceeds the maximum of \(maxSeconds)")
        }
        return Int(value)
    }
}
