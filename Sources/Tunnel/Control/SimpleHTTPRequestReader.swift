import Foundation

/// Turns the bytes of one HTTP/1.1 connection into whole requests with bounded bodies; sans-I/O, so the framing
/// and every refusal can be tested without sockets.
///
/// Feed bytes, then call `next()` until it returns `nil`, carrying out each action in order. After a `.reject`
/// the reader is dead: the owner answers and closes the connection.
package struct SimpleHTTPRequestReader: Sendable {
    /// What the owner of the connection does next.
    package enum Action: Equatable, Sendable {
        /// The client sent `Expect: 100-continue`: write `continueResponse` so it sends the body.
        case sendContinue
        /// A complete request; answer it, then the connection carries another request only if `keepAlive`.
        case request(SimpleRequest, keepAlive: Bool)
        /// The request cannot be served: answer `status` with `reason` as a JSON error, then close.
        case reject(status: Int, reason: String)
    }

    /// The interim response that lets a client waiting on `Expect: 100-continue` send its body.
    package static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private var parser: HTTP1Parser
    private let maxBodyBytes: Int
    private let peerCertificate: Certificate?
    private let peerIdentity: EndpointIdentity?
    private let peerCommonName: String?
    private let peerAddress: String?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var isDead = false

    /// A reader for one connection; every request it returns carries the given peer details.
    package init(
        maxBodyBytes: Int = 1 << 20, maxHeaderBytes: Int = 64 << 10, peerCertificate: Certificate? = nil,
        peerIdentity: EndpointIdentity? = nil, peerCommonName: String? = nil, peerAddress: String? = nil
    ) {
        self.parser = HTTP1Parser(kind: .request, maxHeaderBytes: maxHeaderBytes)
        self.maxBodyBytes = maxBodyBytes
        self.peerCertificate = peerCertificate
        self.peerIdentity = peerIdentity
        self.peerCommonName = peerCommonName
        self.peerAddress = peerAddress
    }

    /// Appends received bytes.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !self.isDead else { return }
        self.parser.feed(bytes)
    }

    /// Appends received bytes.
    package mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.feed($0) }
    }

    /// The next action, or `nil` when more bytes are needed (or the reader is dead).
    package mutating func next() -> Action? {
        self.step(atEndOfInput: false)
    }

    /// The peer sent its last byte: the next action (a request that the end completes, or a rejection of a
    /// truncated one), or `nil` between requests. Drain with `next()` afterwards.
    package mutating func finish() -> Action? {
        self.step(atEndOfInput: true)
    }

    private mutating func step(atEndOfInput: Bool) -> Action? {
        guard !self.isDead else { return nil }
        do {
            var event = atEndOfInput ? try self.parser.finish() : try self.parser.next()
            while let current = event {
                if let action = self.handle(current) { return action }
                event = try self.parser.next()
            }
            return nil
        } catch let error as HTTP1Error {
            switch error {
            case .headerTooLarge, .tooManyHeaders: return self.reject(431, error.description)
            default: return self.reject(400, error.description)
            }
        } catch {
            return self.reject(400, "malformed request: \(error)")
        }
    }

    private mutating func handle(_ event: HTTP1Parser.Event) -> Action? {
        switch event {
        case .requestHead(let head):
            if self.parser.isSwitchingProtocols {
                return self.reject(400, "\(head.method == "CONNECT" ? "CONNECT" : "protocol upgrade") is not supported")
            }
            if let length = Self.declaredLength(head.headers), length > self.maxBodyBytes {
                return self.reject(413, "request body larger than \(self.maxBodyBytes) bytes")
            }
            self.head = head
            self.body = []
            let hasBody = head.headers.contains(name: "transfer-encoding")
                || (Self.declaredLength(head.headers) ?? 0) > 0
            if hasBody, head.version == "HTTP/1.1", head.headers.tokens("expect").contains("100-continue") {
                return .sendContinue
            }
            return nil
        case .body(let bytes):
            guard self.body.count + bytes.count <= self.maxBodyBytes else {
                return self.reject(413, "request body larger than \(self.maxBodyBytes) bytes")
            }
            self.body += bytes
            return nil
        case .end:
            guard let head = self.head else { preconditionFailure("HTTP1Parser ended a request it never began") }
            self.head = nil
            let request = SimpleRequest(
                method: head.method, target: head.target, headers: head.headers, body: self.body,
                peerCertificate: self.peerCertificate, peerIdentity: self.peerIdentity,
                peerCommonName: self.peerCommonName, peerAddress: self.peerAddress)
            self.body = []
            return .request(request, keepAlive: self.parser.keepAlive)
        case .responseHead:
            preconditionFailure("a request parser produced a response head")
        }
    }

    private mutating func reject(_ status: Int, _ reason: String) -> Action {
        self.isDead = true
        self.head = nil
        self.body = []
        return .reject(status: status, reason: reason)
    }

    /// The `Content-Length` the parser accepted (all values agree by then), if any.
    private static func declaredLength(_ headers: HTTPHeaders) -> Int? {
        guard let value = headers[first: "content-length"] else { return nil }
        let first = value.split(separator: ",").first.map { $0.trimmingOptionalWhitespace() } ?? ""
        return Int(first)
    }
}
