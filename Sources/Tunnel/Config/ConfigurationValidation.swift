import Foundation

/// Checks shared by the controller, agent and services configurations; each failure names its field.
package enum ConfigurationValidation {
    /// A DNS name (labels of letters, digits and '-', optionally starting `*.`), an IPv4 or an IPv6 address.
    package static func isHostName(_ text: String) -> Bool {
        if text.contains(":") {
            return text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && text.count >= 2
        }
        var labels = text.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*", labels.count > 1 { labels.removeFirst() }
        return !text.isEmpty && text.count <= 253
            && labels.allSatisfy { label in
                !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }

    /// A lowercase DNS-style name, as SPIFFE requires of a trust domain.
    package static func isTrustDomain(_ text: String) -> Bool {
        Self.isHostName(text) && !text.contains(":") && !text.hasPrefix("*")
            && text.allSatisfy { !$0.isLetter || $0.isLowercase }
    }

    /// Non-empty letters, digits, '.', '_' and '-': names of services, instances and annotation-safe ids.
    package static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// An annotation key: a name, optionally prefixed `domain/` as in Kubernetes (`example.com/team`).
    package static func isAnnotationKey(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return Self.isName(text)
        case 2: return Self.isHostName(String(parts[0])) && Self.isName(String(parts[1]))
        default: return false
        }
    }

    package static func checkLogLevel(_ level: String) throws {
        guard LogLevel(name: level) != nil else {
            throw ConfigurationError.invalid(
                field: "logLevel", reason: "\"\(level)\" is not one of debug, info, warning, error")
        }
    }

    package static func checkPositive(_ value: Double, field: String) throws {
        guard value.isFinite, value > 0 else {
            throw ConfigurationError.invalid(field: field, reason: "must be more than 0, got \(value)")
        }
    }

    /// A timeout: more than 0 and at most a day (a larger one is a typo, not a policy).
    package static func checkTimeout(_ seconds: Double, field: String) throws {
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            let got = Self.format(seconds)
            throw ConfigurationError.invalid(field: field, reason: "must be more than 0 and at most 86400, got \(got)")
        }
    }

    package static func checkPing(interval: Double, timeout: Double) throws {
        try Self.checkPositive(interval, field: "pingIntervalSeconds")
        try Self.checkPositive(timeout, field: "pingTimeoutSeconds")
        guard timeout > interval else {
            throw ConfigurationError.invalid(
                field: "pingTimeoutSeconds",
                reason: "must be more than pingIntervalSeconds (\(Self.format(interval))), got "
                    + Self.format(timeout))
        }
    }

    /// HTTP/2 allows windows up to 2^31-1; below the protocol's initial 65535 a stream could not make progress
    /// as fast as the default.
    package static func checkStreamWindow(_ bytes: Int) throws {
        guard (65_535...Int(Int32.max)).contains(bytes) else {
            throw ConfigurationError.invalid(
                field: "streamWindowBytes", reason: "must be between 65535 and 2147483647, got \(bytes)")
        }
    }

    package static func checkTTL(default defaultTTL: Int, max maxTTL: Int, prefix: String) throws {
        guard defaultTTL > 0 else {
            throw ConfigurationError.invalid(
                field: "\(prefix)DefaultTTLSeconds", reason: "must be more than 0, got \(defaultTTL)")
        }
        guard maxTTL >= defaultTTL else {
            throw ConfigurationError.invalid(
                field: "\(prefix)MaxTTLSeconds",
                reason: "must be at least \(prefix)DefaultTTLSeconds (\(defaultTTL)), got \(maxTTL)")
        }
    }

    /// An absolute URL with one of `schemes` and a host.
    package static func checkURL(_ text: String, field: String, schemes: Set<String>) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else {
            throw ConfigurationError.invalid(field: field, reason: "\"\(text)\" is not an absolute URL with a host")
        }
        guard schemes.contains(scheme) else {
            throw ConfigurationError.invalid(
                field: field, reason: "\"\(text)\" must use \(schemes.sorted().joined(separator: " or "))")
        }
    }

    /// Two listeners cannot bind the same port on overlapping addresses; port 0 is always fresh.
    package static func checkDistinctListeners(_ listeners: [(field: String, address: ListenAddress)]) throws {
        for (index, first) in listeners.enumerated() {
            for second in listeners[(index + 1)...]
            where first.address.port != 0
                && first.address.port == second.address.port
                && (first.address.host == second.address.host || first.address.isWildcard
                    || second.address.isWildcard)
            {
                throw ConfigurationError.invalid(
                    field: second.field, reason: "\(second.address) clashes with \(first.field) (\(first.address))")
            }
        }
    }

    /// Seconds as a flag or message shows them: `30`, not `30.0`; `0.5` as is.
    package static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
    }
}
