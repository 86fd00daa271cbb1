/// Why a policy file was refused: it could not be read, is not JSON, has a field of the wrong type or unknown, or
/// a value fails validation. Names the file, the field (`bindings[2].namespaces[0]`) and where it is written.
struct PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The policy file's path.
    var path: String
    /// The JSON field path at fault; nil when the file as a whole is (unreadable, not JSON).
    var field: String?
    /// Where in the file, when known.
    var location: JSONSourceMap.Location?
    /// What is wrong, in one phrase.
    var reason: String

    /// `policy.json:14:9: bindings[2].namespaces[0]: "Prod_*" has '_' …`, like a compiler's message.
    var description: String {
        var text = self.path
        if let location = self.location { text += ":\(location)" }
        if let field = self.field, !field.isEmpty { text += ": \(field)" }
        return text + ": \(self.reason)"
    }
}
