import Dispatch
import Foundation
import Synchronization
import Tunnel

/// A request the controller itself sends down a tunnel: to an agent's service (`TunnelClient.open`), or to the
/// agent itself (the hello, `TunnelClient.open(on:)`).
///
/// Events reach `handler` on `queue`, in order: the response head, body bytes, the end, and the close. Flow control
/// is the same as for users: body bytes must be acknowledged with `consume` (the collecting helpers do it), and
/// the agent sends at most one stream window ahead of what was consumed, so a slow consumer holds only its own
/// stream. An upgraded response (101) turns the stream into raw bytes both ways (`send`, `end`).
final class TunnelClient {
    enum Event {
        /// The response head; `status` is 101 for an upgrade the backend accepted.
        case response(status: Int, headers: [HTTPField])
        case data([UInt8])
        case end
        /// The stream is gone: 0 after a clean finish, else the reset code.
        case closed(errorCode: UInt32)
    }

    let queue: DispatchQueue
    private let handler: (TunnelClient, Event) -> Void
    /// Set once the stream is open; queue state.
    private var stream: TunnelStream?

    private init(queue: DispatchQueue, handler: @escaping (TunnelClient, Event) -> Void) {
        self.queue = queue
        self.handler = handler
    }

    /// Opens a request to `agent`'s service `type/name` through its least busy session; nil when the agent or the
    /// service is not there. `user` names the controller's purpose in the agent's log (`controller:hello`, …).
    static func open(agent: String, serviceType: String, serviceName: String, method: String = "GET", path: String,
                     headers: [HTTPField] = [], hasBody: Bool = false, user: String, sessions: any SessionDirectory,
                     queue: DispatchQueue, handler: @escaping (TunnelClient, Event) -> Void) -> TunnelClient? {
        guard let session = sessions.routableSession(of: agent), session.offers(type: serviceType, name: serviceName)
        else { return nil }
        var fields = [HTTPField(":method", method), HTTPField(":scheme", "https"), HTTPField(":authority", "porthole"),
                      HTTPField(":path", path)]
        fields += headers.filter { HeaderRules.controllerForwards($0.name) }
        fields.append(HTTPField(TunnelProtocol.serviceHeader, "\(serviceType)/\(serviceName)"))
        fields.append(HTTPField(TunnelProtocol.requestIDHeader, RandomID.request()))
        fields.append(HTTPField(TunnelProtocol.userHeader, user))
        return self.open(on: session, headers: fields, hasBody: hasBody, queue: queue, handler: handler)
    }

    /// Opens a stream with exactly `headers` on `session` (the hello, which names no service).
    static func open(on session: any RoutableSession, headers: [HTTPField], hasBody: Bool, queue: DispatchQueue,
                     handler: @escaping (TunnelClient, Event) -> Void) -> TunnelClient {
        let client = TunnelClient(queue: queue, handler: handler)
        client.stream = session.openStream(headers: headers, hasBody: hasBody, delegate: client, delegateQueue: queue)
        return client
    }

    /// Request body bytes (or, once upgraded, raw bytes).
    func send(_ bytes: [UInt8]) { self.stream?.send(bytes) }
    /// Ends the request body (a half-close once upgraded).
    func end() { self.stream?.end() }
    /// Acknowledges `count` body bytes: the agent may send that many more.
    func consume(_ count: Int) { self.stream?.consume(count) }
    /// Gives up: the agent aborts the request.
    func cancel() {
        self.stream?.cancel()
        self.stream = nil
    }
}

extension TunnelClient: TunnelStreamDelegate {
    func tunnelStream(_ stream: TunnelStream, didReceiveResponse headers: [HTTPField], endStream: Bool) {
        var status = Int(headers.first { $0.name == ":status" }?.value ?? "") ?? 0
        if headers.contains(where: { $0.name == TunnelProtocol.statusHeader && $0.value == "101" }) { status = 101 }
        self.handler(self, .response(status: status, headers: headers.filter { !$0.name.hasASCIIPrefix(":") }))
        if endStream { self.handler(self, .end) }
    }

    func tunnelStream(_ stream: TunnelStream, didReceiveData bytes: [UInt8]) {
        self.handler(self, .data(bytes))
    }

    func tunnelStreamDidEnd(_ stream: TunnelStream) {
        self.handler(self, .end)
    }

    func tunnelStream(_ stream: TunnelStream, didDrain count: Int) {}

    func tunnelStream(_ stream: TunnelStream, didClose errorCode: UInt32) {
        self.stream = nil
        self.handler(self, .closed(errorCode: errorCode))
    }
}

// Confined to `queue`, where its stream delivers events.
extension TunnelClient: @unchecked Sendable {}

/// A whole response collected by `TunnelClient.collect`.
struct CollectedResponse: Sendable, Equatable {
    var status: Int
    var headers: [HTTPField]
    var body: [UInt8]
}

/// Why a collected request failed.
enum TunnelClientError: Error, Equatable, Sendable, CustomStringConvertible {
    case notRouted(String)
    case tooLarge(limit: Int)
    case reset(code: UInt32)
    case timedOut(seconds: Double)

    var description: String {
        switch self {
        case .notRouted(let why): why
        case .tooLarge(let limit): "response larger than \(limit) bytes"
        case .reset(let code): "stream reset (code \(code))"
        case .timedOut(let seconds): "no complete response within \(seconds) s"
        }
    }
}

extension TunnelClient {
    /// Collects the whole response (body up to `limit` bytes) and calls `completion` once on `queue`; `open` opens
    /// the request with the handler it is given.
    static func collect(_ open: (@escaping (TunnelClient, Event) -> Void) -> TunnelClient?, limit: Int,
                        timeout: Double, queue: DispatchQueue,
                        completion: @escaping (Result<CollectedResponse, TunnelClientError>) -> Void) {
        let collector = ResponseCollector(limit: limit, completion: completion)
        guard let client = open({ client, event in collector.handle(client, event) }) else {
            collector.finish(nil, .failure(.notRouted("the agent or its service is not connected")))
            return
        }
        queue.asyncAfter(deadline: .now() + timeout) { collector.finish(client, .failure(.timedOut(seconds: timeout))) }
    }
}

/// Gathers one response for `TunnelClient.collect`.
private final class ResponseCollector {
    private var response = CollectedResponse(status: 0, headers: [], body: [])
    private var isDone = false
    private let limit: Int
    private let completion: (Result<CollectedResponse, TunnelClientError>) -> Void

    init(limit: Int, completion: @escaping (Result<CollectedResponse, TunnelClientError>) -> Void) {
        self.limit = limit
        self.completion = completion
    }

    func handle(_ client: TunnelClient, _ event: TunnelClient.Event) {
        switch event {
        case .response(let status, let headers):
            self.response.status = status
            self.response.headers = headers
        case .data(let bytes):
            self.response.body += bytes
            client.consume(bytes.count)
            if self.response.body.count > self.limit { self.finish(client, .failure(.tooLarge(limit: self.limit))) }
        case .end:
            self.finish(client, .success(self.response))
        case .closed(let code):
            self.finish(client, code == 0 ? .success(self.response) : .failure(.reset(code: code)))
        }
    }

    func finish(_ client: TunnelClient?, _ result: Result<CollectedResponse, TunnelClientError>) {
        guard !self.isDone else { return }
        self.isDone = true
        if case .failure = result { client?.cancel() }
        self.completion(result)
    }
}

// Confined to the queue the collected request delivers on.
extension ResponseCollector: @unchecked Sendable {}
