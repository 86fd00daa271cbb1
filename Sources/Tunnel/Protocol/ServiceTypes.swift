/// The service types both sides know: an agent's services file declares them, the controller issues tokens for them.
package enum ServiceTypes {
    /// Built-in service types; anything else must start with `x-`.
    package static let builtIn = ["kubernetes", "jenkins", "argocd"]

    /// Whether `type` is built in or a custom `x-…` type (case and characters are checked by the caller).
    package static func isKnown(_ type: String) -> Bool {
        Self.builtIn.contains(type) || (type.hasPrefix("x-") && type.count > 2)
    }
}
