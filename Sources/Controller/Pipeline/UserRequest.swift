import Tunnel

/// One user request as the pipeline sees it, whichever transport brought it: HTTP/1.1 and HTTP/2 (and an upgrade
/// on either) build the same value, and the same stages decide what becomes of it.
struct UserRequest: Sendable {
    enum Transport: String, Sendable {
        case http1 = "h1"
        case http2 = "h2"
    }

    var transport: Transport
    var requestID: String
    /// `GET`, `POST`, …; an HTTP/2 extended CONNECT is `CONNECT` with `upgrade` set.
    var method: String
    /// Path and query as sent (HTTP/1.1 request-target or HTTP/2 `:path`).
    var target: String
    /// `Host` or `:authority`.
    var authority: String?
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    var version: String
    /// Header fields in arrival order, names lowercased, without pseudo-headers.
    var headers: [HTTPField]
    /// The protocol asked for: HTTP/1.1 `Upgrade` (when the parser saw a protocol switch) or HTTP/2 `:protocol`.
    var upgrade: String?
    /// Whether a body follows the head (always for an upgrade: its bytes travel as the body).
    var hasBody: Bool
    var peerCertificate: Certificate?
    /// The user's address, as the controller saw the connection.
    var peerHost: String?

    /// The path without the query.
    var path: Substring {
        self.target.firstIndex(of: "?").map { self.target[..<$0] } ?? self.target[...]
    }

    /// How many fields of this name the request has.
    func count(of lowercasedName: String) -> Int {
        var count = 0
        for field in self.headers where field.name == lowercasedName { count += 1 }
        return count
    }

    /// The first value of a header.
    func first(_ lowercasedName: String) -> String? {
        self.headers.first { $0.name == lowercasedName }?.value
    }

    /// Every value of a header, in order.
    func values(of lowercasedName: String) -> [String] {
        self.headers.compactMap { $0.name == lowercasedName ? $0.value : nil }
    }
}

extension UserRequest {
    /// An HTTP/1.1 request head; `upgrade` is the `Upgrade` value when the parser saw a protocol switch.
    init(http1 head: HTTPRequestHead, requestID: String, upgrade: String?, hasBody: Bool,
         peerCertificate: Certificate?, peerHost: String?) {
        var headers: [HTTPField] = []
        headers.reserveCapacity(head.headers.count)
        var authority: String?
        for (name, value) in head.headers {
            let lower = name.asciiLowercased()
            if lower == "host", authority == nil { authority = value }
            headers.append(HTTPField(lower, value))
        }
        self.init(transport: .http1, requestID: requestID, method: head.method, target: head.target,
                  authority: authority, version: head.version, headers: headers, upgrade: upgrade, hasBody: hasBody,
                  peerCertificate: peerCertificate, peerHost: peerHost)
    }

    /// An HTTP/2 request header block.
    init(http2 fields: [HTTPField], requestID: String, endStream: Bool, peerCertificate: Certificate?,
         peerHost: String?) {
        var method = "GET"
        var target = ""
        var authority: String?
        var upgrade: String?
        var headers: [HTTPField] = []
        headers.reserveCapacity(fields.count)
        for field in fields {
            switch field.name {
            case ":method": method = field.value
            case ":path": target = field.value
            case ":authority": authority = field.value
            case ":protocol": upgrade = field.value
            case ":scheme": break
            case "host":
                if authority == nil { authority = field.value }
                headers.append(field)
            default: headers.append(field)
            }
        }
        self.init(transport: .http2, requestID: requestID, method: method, target: target, authority: authority,
                  version: "HTTP/2", headers: headers, upgrade: method == "CONNECT" ? upgrade : nil,
                  hasBody: !endStream || (method == "CONNECT" && upgrade != nil), peerCertificate: peerCertificate,
                  peerHost: peerHost)
    }
}
