import Dispatch
import Foundation

/// A small HTTP/1.1 client for the controller's own calls (OIDC discovery, JWK Sets, an external decision
/// endpoint): one request per connection, `Connection: close`, http or https, a CA file or the system's roots,
/// connect and total timeouts, a response size limit, and redirects returned as they are, never followed.
package final class HTTPClient: Sendable {
    /// Limits of one exchange.
    package struct Limits: Sendable, Equatable {
        /// Seconds to connect and finish the TLS handshake.
        package var connectTimeout: TimeInterval
        /// Seconds for the whole exchange, connect included.
        package var totalTimeout: TimeInterval
        /// The largest response body accepted, in bytes.
        package var maximumResponseBytes: Int

        /// Defaults: 5 s to connect, 10 s in all, 1 MiB.
        package init(connectTimeout: TimeInterval = 5, totalTimeout: TimeInterval = 10,
                     maximumResponseBytes: Int = 1 << 20) {
            self.connectTimeout = connectTimeout
            self.totalTimeout = totalTimeout
            self.maximumResponseBytes = maximumResponseBytes
        }
    }

    /// The system's CA bundle on Debian and Ubuntu, used when no CA file is configured.
    package static let systemRootsFile = "/etc/ssl/certs/ca-certificates.crt"

    /// For https URLs.
    private let tls: TLSContext
    package let limits: Limits

    /// A client trusting the certificates in `trustedCAFile` (PEM), or the system's roots when nil.
    package init(trustedCAFile: String?, limits: Limits = Limits()) throws {
        var trusted: [Certificate] = []
        if let trustedCAFile {
            trusted = try PEMFile.certificates(trustedCAFile, role: "CA bundle")
        } else if FileManager.default.fileExists(atPath: Self.systemRootsFile) {
            trusted = try PEMFile.certificates(Self.systemRootsFile, role: "system CA bundle")
        }
        self.tls = try TLSContext.client(certificateChain: nil, key: nil, trustedCAs: trusted, verifyPeer: true,
                                         alpn: ["http/1.1"], allowTLS12: true)
        self.limits = limits
    }

    /// Sends `request` and calls `completion` once, on an internal queue, with the response or why there is none.
    /// `limits` replaces the client's for this request.
    package func send(_ request: HTTPClientRequest, limits: Limits? = nil,
                      completion: @escaping @Sendable (Result<HTTPClientResponse, HTTPClientError>) -> Void) {
        let queue = DispatchQueue(label: "porthole.http-client")
        let exchange = HTTPClientExchange(request: request, limits: limits ?? self.limits, queue: queue,
                                          completion: completion)
        let tls = request.url.isSecure ? self.tls : nil
        // An IP literal resolves at once, on the calling thread: start on the exchange's own queue.
        queue.async {
            Resolver.resolve(host: request.url.host, port: request.url.port, deliverOn: queue) { result in
                exchange.connect(result, tls: tls)
            }
        }
    }

    /// `send(_:completion:)` for async callers.
    package func send(_ request: HTTPClientRequest) async -> Result<HTTPClientResponse, HTTPClientError> {
        await withCheckedContinuation { continuation in
            self.send(request) { continuation.resume(returning: $0) }
        }
    }
}

/// An absolute http or https URL, split for a client: no user info, no fragment.
package struct HTTPClientURL: Sendable, Equatable, CustomStringConvertible {
    package var isSecure: Bool
    package var host: String
    package var port: UInt16
    /// Path and query, at least `/`.
    package var target: String

    /// Parses `text`; nil unless it is `http://` or `https://` with a host.
    package init?(_ text: String) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
              components.user == nil, components.password == nil
        else { return nil }
        self.isSecure = scheme == "https"
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard let port = UInt16(exactly: components.port ?? (self.isSecure ? 443 : 80)), port > 0 else { return nil }
        self.port = port
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.target = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }

    /// `Host` header value.
    package var authority: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.isSecure ? 443 : 80) ? host : "\(host):\(self.port)"
    }

    package var description: String { "\(self.isSecure ? "https" : "http")://\(self.authority)\(self.target)" }
}

/// One request for `HTTPClient`.
package struct HTTPClientRequest: Sendable {
    package var method: String
    package var url: HTTPClientURL
    /// Extra header fields; `Host`, `Content-Length` and `Connection` are the client's.
    package var headers: [HTTPField]
    package var body: [UInt8]

    package init(method: String = "GET", url: HTTPClientURL, headers: [HTTPField] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// What came back.
package struct HTTPClientResponse: Sendable, Equatable {
    package var status: Int
    package var headers: HTTPHeaders
    package var body: [UInt8]
}

/// Why an exchange produced no response. Descriptions name the URL's host, never a body.
package enum HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The host did not resolve, or the connection or TLS handshake failed.
    case connectFailed(String)
    /// No response within the total timeout (or no connection within the connect timeout).
    case timedOut(String)
    /// The response body is larger than the limit.
    case tooLarge(Int)
    /// The response is not HTTP/1.1, or the connection ended before it did.
    case malformed(String)

    package var description: String {
        switch self {
        case .connectFailed(let reason): "connection failed: \(reason)"
        case .timedOut(let what): "timed out (\(what))"
        case .tooLarge(let limit): "response larger than \(limit) bytes"
        case .malformed(let reason): "malformed response: \(reason)"
        }
    }
}

/// One exchange on its own queue: connect, write the request, parse the response, finish exactly once.
final class HTTPClientExchange {
    private let request: HTTPClientRequest
    private let limits: HTTPClient.Limits
    private let queue: DispatchQueue
    private var completion: (@Sendable (Result<HTTPClientResponse, HTTPClientError>) -> Void)?
    private var connection: Connection?
    private var parser = HTTP1Parser(kind: .response)
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var timer: DispatchSourceTimer?

    init(request: HTTPClientRequest, limits: HTTPClient.Limits, queue: DispatchQueue,
         completion: @escaping @Sendable (Result<HTTPClientResponse, HTTPClientError>) -> Void) {
        self.request = request
        self.limits = limits
        self.queue = queue
        self.completion = completion
        self.parser.expectResponse(toMethod: request.method)
    }

    /// On `queue`, with the resolved addresses.
    func connect(_ resolved: Result<[SocketAddress], Error>, tls: TLSContext?) {
        dispatchPrecondition(condition: .onQueue(self.queue))
        let timer = DispatchSource.makeTimerSource(queue: self.queue)
        timer.schedule(deadline: .now() + self.limits.totalTimeout)
        timer.setEventHandler { [self] in self.finish(.failure(.timedOut("no response within "
            + "\(Int(self.limits.totalTimeout)) s from \(self.request.url.authority)"))) }
        timer.resume()
        self.timer = timer
        do {
            guard let address = try resolved.get().first else {
                throw HTTPClientError.connectFailed("\(self.request.url.host) has no address")
            }
            let connection = try Connection.connect(to: address, tls: tls, serverName: self.request.url.host,
                                                    queue: self.queue)
            self.connection = connection
            connection.start(delegate: self, handshakeTimeout: self.limits.connectTimeout)
        } catch let error as HTTPClientError {
            self.finish(.failure(error))
        } catch {
            self.finish(.failure(.connectFailed("\(self.request.url.authority): \(error)")))
        }
    }

    private func finish(_ result: Result<HTTPClientResponse, HTTPClientError>) {
        guard let completion = self.completion else { return }
        self.completion = nil
        self.timer?.cancel()
        self.timer = nil
        if let connection = self.connection, !connection.isClosed { connection.close() }
        self.connection = nil
        completion(result)
    }

    /// Handles parser events until more bytes are needed; `first` is an event already taken (at EOF).
    private func process(first: HTTP1Parser.Event? = nil) {
        do {
            var event = try first ?? self.parser.next()
            while let current = event {
                switch current {
                case .responseHead(let head):
                    self.head = head
                case .body(let bytes):
                    self.body += bytes
                    guard self.body.count <= self.limits.maximumResponseBytes else {
                        self.finish(.failure(.tooLarge(self.limits.maximumResponseBytes)))
                        return
                    }
                case .end:
                    self.complete()
                    return
                case .requestHead:
                    break
                }
                event = try self.parser.next()
            }
        } catch {
            self.finish(.failure(.malformed("\(error)")))
        }
    }

    private func complete() {
        guard let head = self.head else {
            self.finish(.failure(.malformed("no status line")))
            return
        }
        self.finish(.success(HTTPClientResponse(status: head.status, headers: head.headers, body: self.body)))
    }
}

extension HTTPClientExchange: ConnectionDelegate {
    func connectionDidBecomeActive(_ connection: Connection) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.request.url.authority)
        for field in self.request.headers { headers.add(name: field.name, value: field.value) }
        if !self.request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(self.request.method) {
            headers.add(name: "Content-Length", value: "\(self.request.body.count)")
        }
        headers.add(name: "Connection", value: "close")
        connection.write(HTTP1Serializer.requestHead(HTTPRequestHead(
            method: self.request.method, target: self.request.url.target, headers: headers)))
        if !self.request.body.isEmpty { connection.write(self.request.body) }
    }

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        self.parser.feed(bytes)
        self.process()
    }

    func connectionDidReceiveEOF(_ connection: Connection) {
        do {
            self.process(first: try self.parser.finish())
        } catch {
            self.finish(.failure(.malformed("\(error)")))
        }
        self.finish(.failure(.malformed("the connection ended before the response did")))
    }

    func connection(_ connection: Connection, didFlush count: Int) {}

    func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        if self.completion != nil {
            let reason = error.map { "\($0)" } ?? "closed"
            self.finish(.failure(self.head == nil
                ? .connectFailed("\(self.request.url.authority): \(reason)")
                : .malformed("the connection ended before the response did")))
        }
    }
}

// Confined to its own serial queue: created there (connect), driven by its connection's events there.
extension HTTPClientExchange: @unchecked Sendable {}
