/// The request targets Porthole accepts from users, and how the agent joins one to a service's base path.
///
/// Only origin-form (`/path?query`, RFC 9112 §3.2.1) is carried, plus `*` for `OPTIONS`; absolute-form and
/// authority-form would let a user name another host or a path outside the service. A path with a `.` or `..`
/// segment, plain or percent-encoded (`%2e`), or hidden behind an encoded or back slash (`..%2f`, `..\`), is
/// refused rather than normalised: backends disagree on how to resolve them, and no client needs to send them.
package enum RequestTarget {
    /// Why a target was refused; `description` is fit for the body of a 400.
    package enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case notOriginForm
        case dotSegment

        package var description: String {
            switch self {
            case .notOriginForm: "the request target must be a path starting with / (origin-form)"
            case .dotSegment: "the request path must not contain . or .. segments"
            }
        }
    }

    /// Checks a target as the user sent it (HTTP/1.1 request-target or HTTP/2 `:path`).
    package static func check(_ target: String, method: String) -> Refusal? {
        var bytes = Substring(target).utf8
        if bytes.elementsEqual("*".utf8) { return method == "OPTIONS" ? nil : .notOriginForm }
        guard bytes.first == UInt8(ascii: "/") else { return .notOriginForm }
        if let end = bytes.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            bytes = bytes[..<end]
        }
        return self.hasDotSegment(Array(bytes)) ? .dotSegment : nil
    }

    /// Whether a path has a `.` or `..` segment once `%2e`, `%2f` and `%5c` are decoded and `\` counts as `/`.
    static func hasDotSegment(_ path: [UInt8]) -> Bool {
        var dots = 0
        var segmentLength = 0
        var index = 0
        func endSegment() -> Bool { segmentLength > 0 && dots == segmentLength && dots <= 2 }
        while index < path.count {
            var byte = path[index]
            var width = 1
            if byte == UInt8(ascii: "%"), index + 2 < path.count,
               let high = Hex.value(path[index + 1]), let low = Hex.value(path[index + 2])
            {
                let decoded = UInt8(high << 4 | low)
                if decoded == UInt8(ascii: ".") || decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") {
                    byte = decoded
                    width = 3
                }
            }
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "\\") {
                if endSegment() { return true }
                dots = 0
                segmentLength = 0
            } else {
                segmentLength += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
            index += width
        }
        return endSegment()
    }

    /// The path the backend sees: the service's base path (`""` or `/base`, no trailing `/`) and a checked
    /// target, joined on a `/` boundary. Nil when the target fails `check` or is `*` under a base path.
    package static func join(basePath: String, target: String, method: String) -> String? {
        guard self.check(target, method: method) == nil else { return nil }
        if basePath.isEmpty { return target }
        if target == "*" { return nil }
        var base = Substring(basePath)
        while base.hasSuffix("/") { base = base.dropLast() }
        return base + target
    }
}
