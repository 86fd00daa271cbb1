/// A `HOST:PORT` pair: where a listener binds, or which controller an agent dials.
///
/// Accepted forms: `127.0.0.1:8443`, `example.com:8443`, `[::1]:8443` (IPv6 in brackets), and `:8443`, which
/// means every IPv4 interface (`0.0.0.0`). Port 0 asks the kernel for an ephemeral port. In JSON it is the same
/// string.
package struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address, without brackets.
    package var host: String
    /// TCP port; 0 means ephemeral when binding.
    package var port: UInt16

    /// An address from its parts; `host` is not checked.
    package init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT` or `:PORT`.
    ///
    /// - Parameter field: names the setting in the error, e.g. `agentListen` or `--agent-listen`.
    /// - Throws: `ConfigurationError.invalid(field:reason:)` saying what is wrong and what is expected.
    package init(parsing text: String, field: String = "address") throws {
        func failure(_ why: String) -> ConfigurationError {
            .invalid(
                field: field,
                reason: "\"\(text)\" \(why); expected HOST:PORT, e.g. 127.0.0.1:8443, [::1]:8443 "
                    + "or :8443")
        }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw failure("has no closing ']'") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw failure("has no ':PORT' after ']'") }
            portPart = rest.dropFirst()
            let zoneParts = hostPart.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
            let address = zoneParts[0]
            let zone = zoneParts.count > 1 ? zoneParts[1] : "x"
            guard address.contains(":"), address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }),
                !zone.isEmpty, zone.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else { throw failure("has no valid IPv6 address in brackets") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw failure("has no port") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw failure("looks like an IPv6 address; write it in brackets") }
            guard hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }) else {
                throw failure("has a host that is not a name or IP address")
            }
        }
        guard !portPart.isEmpty, portPart.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw failure("has no numeric port")
        }
        guard let port = UInt16(portPart) else { throw failure("has a port above 65535") }
        self.host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
        self.port = port
    }

    /// `HOST:PORT`, with IPv6 hosts in brackets; parses back to the same value.
    package var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// Whether the host is a wildcard (`0.0.0.0` or `::`) that binds every interface.
    package var isWildcard: Bool { self.host == "0.0.0.0" || self.host == "::" }
}

extension ListenAddress: Codable {
    /// Decodes the `HOST:PORT` string form.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch let error as ConfigurationError {
            guard case .invalid(_, let reason) = error else { throw error }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: reason)
        }
    }

    /// Encodes the `HOST:PORT` string form.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}
