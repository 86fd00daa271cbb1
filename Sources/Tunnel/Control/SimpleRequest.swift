import Foundation

/// One complete HTTP/1.1 request as a small request/response endpoint (control API, metrics) sees it.
package struct SimpleRequest: Sendable, Equatable {
    /// `GET`, `POST`, ...
    package var method: String
    /// The path of the request target, without the query, as sent (not percent-decoded).
    package var path: String
    /// Query items, percent-decoded; the last value wins when a name repeats.
    package var query: [String: String]
    package var headers: HTTPHeaders
    /// The whole request body.
    package var body: [UInt8]
    /// The client certificate, if one was presented and verified.
    package var peerCertificate: Certificate?
    /// The identity `peerCertificate` names in the server's trust domain, if the server was given one.
    package var peerIdentity: EndpointIdentity?
    /// The client certificate's subject CN (the human or tool holding it), for logs.
    package var peerCommonName: String?
    /// `host:port` of the peer, for logs.
    package var peerAddress: String?

    /// A request; `target` is split into `path` and `query`.
    package init(
        method: String, target: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
        peerCertificate: Certificate? = nil, peerIdentity: EndpointIdentity? = nil, peerCommonName: String? = nil,
        peerAddress: String? = nil
    ) {
        self.method = method
        (self.path, self.query) = Self.split(target: target)
        self.headers = headers
        self.body = body
        self.peerCertificate = peerCertificate
        self.peerIdentity = peerIdentity
        self.peerCommonName = peerCommonName
        self.peerAddress = peerAddress
    }

    /// Equal when every field is; certificates compare by object identity.
    package static func == (lhs: SimpleRequest, rhs: SimpleRequest) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.query == rhs.query && lhs.headers == rhs.headers
            && lhs.body == rhs.body && lhs.peerCertificate === rhs.peerCertificate
            && lhs.peerIdentity == rhs.peerIdentity && lhs.peerCommonName == rhs.peerCommonName
            && lhs.peerAddress == rhs.peerAddress
    }

    /// The identity the client certificate names in `trustDomain`, `nil` without one.
    package func peerIdentity(trustDomain: String) -> EndpointIdentity? {
        self.peerCertificate.flatMap { EndpointIdentity.from(certificate: $0, trustDomain: trustDomain) }
    }

    /// `/a/b?x=1&y=%20` into `/a/b` and `["x": "1", "y": " "]`; `+` in the query means a space.
    package static func split(target: String) -> (path: String, query: [String: String]) {
        guard let mark = target.firstIndex(of: "?") else { return (target, [:]) }
        var query: [String: String] = [:]
        for item in target[target.index(after: mark)...].split(separator: "&") {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decodeQueryComponent(pair[0])
            guard !name.isEmpty else { continue }
            query[name] = pair.count > 1 ? Self.decodeQueryComponent(pair[1]) : ""
        }
        return (String(target[..<mark]), query)
    }

    private static func decodeQueryComponent(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
