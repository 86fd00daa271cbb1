import Tunnel

/// The HTTP/1.1 request head the agent sends a backend for a tunnel stream's header block: the target joined under
/// the service's base path, `Host` set to the backend, the user's identity as impersonation headers when the service
/// asks for them, the service's credentials added, hop-by-hop and `porthole-*` headers dropped, chunked framing when a
/// body comes without a length, and the upgrade asked for again.
struct BackendRequestHead {
    /// The request's method (`GET` when the header block has none).
    let method: String
    /// The `:path` the controller sent.
    let path: String
    /// The target under the service's base path; nil when `path` would leave it (answered 400, never sent).
    let target: String?
    /// The controller's request ID, for logs; `-` when it sent none.
    let requestID: String
    /// The protocol the user asked to upgrade to, if any.
    let upgrade: String?
    /// Whether the body is sent chunked: there is one and it has no `content-length`.
    let isChunked: Bool
    /// The headers sent to the backend.
    let headers: HTTPHeaders

    /// Rewrites `fields` (a tunnel stream's header block) for the backend at `host:port` under `basePath`;
    /// `endStream` says the request has no body; `impersonate` turns the controller's identity headers into
    /// impersonation headers.
    init(
        tunnelFields fields: [HTTPField], endStream: Bool, host: String, port: UInt16, basePath: String,
        impersonate: Bool = false, credentials: [(String, String)]
    ) {
        var method = "GET"
        var path = "/"
        var requestID = "-"
        var upgrade: String?
        var forwarded = HTTPHeaders()
        forwarded.reserveCapacity(fields.count + 4)
        var hasLength = false
        var identity = ImpersonationHeaders()
        for field in fields {
            switch field.name {
            case TunnelProtocol.identityUserHeader, TunnelProtocol.identityGroupHeader: identity.note(field)
            case ":method": method = field.value
            case ":path": path = field.value
            case ":authority", ":scheme", ":protocol": break
            case TunnelProtocol.requestIDHeader: requestID = field.value
            case TunnelProtocol.upgradeHeader: upgrade = field.value
            case _ where !HeaderRules.agentForwards(field.name): break
            default:
                if field.name == "content-length" { hasLength = true }
                forwarded.add(name: field.name, value: field.value)
            }
        }
        forwarded.replaceOrAdd(name: "Host", value: port == 80 || port == 443 ? host : "\(host):\(port)")
        var isChunked = false
        if let upgrade {
            forwarded.add(name: "Connection", value: "Upgrade")
            forwarded.add(name: "Upgrade", value: upgrade)
        } else if !endStream && !hasLength {
            forwarded.add(name: "Transfer-Encoding", value: "chunked")
            isChunked = true
        }
        if impersonate {
            for field in identity.fields { forwarded.add(name: field.name, value: field.value) }
        }
        for (name, value) in credentials { forwarded.add(name: name, value: value) }
        self.method = method
        self.path = path
        self.target = RequestTarget.join(basePath: basePath, target: path, method: upgrade == nil ? method : "GET")
        self.requestID = requestID
        self.upgrade = upgrade
        self.isChunked = isChunked
        self.headers = forwarded
    }

    /// The serialized head; a refused target is written as `/` (such a head is never sent).
    var bytes: [UInt8] {
        HTTP1Serializer.requestHead(HTTPRequestHead(method: self.method, target: self.target ?? "/",
                                                    headers: self.headers))
    }
}
