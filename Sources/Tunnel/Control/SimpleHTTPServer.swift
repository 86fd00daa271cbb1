import Dispatch
import Foundation

/// Serves small HTTP/1.1 request/response exchanges (control API, metrics, health) on accepted connections.
///
/// Each request is read whole (body up to `maxBodyBytes`), handed to `handler` on the connection's queue, and
/// answered with `Content-Length`; keep-alive is honoured. A malformed request gets a JSON 4xx, one warning line
/// in the log, and the connection is closed.
package final class SimpleHTTPServer: Sendable {
    /// Names the listener in log lines, e.g. `control` or `metrics`.
    package let name: String
    /// Trust domain in which client certificates name an `EndpointIdentity`; `nil` on a plain-HTTP listener.
    package let trustDomain: String?
    /// Largest request body accepted; a larger one gets 413.
    package let maxBodyBytes: Int
    /// Largest request header section accepted; a larger one gets 431.
    package let maxHeaderBytes: Int
    /// Seconds a connection may stay without receiving a byte before it is closed.
    package let idleTimeout: TimeInterval
    let handler: @Sendable (SimpleRequest) -> SimpleResponse

    /// A server whose `handler` answers every well-formed request; it runs on the connection's queue.
    package init(
        name: String, trustDomain: String?, maxBodyBytes: Int = 1 << 20, maxHeaderBytes: Int = 64 << 10,
        idleTimeout: TimeInterval = 120, handler: @escaping @Sendable (SimpleRequest) -> SimpleResponse
    ) {
        self.name = name
        self.trustDomain = trustDomain
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.idleTimeout = idleTimeout
        self.handler = handler
    }

    /// Serves `connection` with a server made for it; see `serve(_:handshakeTimeout:)`. `listener` names it in logs.
    package static func serve(
        connection: Connection, listener: String, trustDomain: String? = nil,
        handler: @escaping @Sendable (SimpleRequest) -> SimpleResponse
    ) {
        SimpleHTTPServer(name: listener, trustDomain: trustDomain, handler: handler).serve(connection)
    }

    /// Serves `connection` until it closes; call on `connection.queue`. A connection not started yet is started
    /// here; an active one (TLS handshake already done elsewhere) is taken over from its current delegate.
    package func serve(_ connection: Connection, handshakeTimeout: TimeInterval = 10) {
        dispatchPrecondition(condition: .onQueue(connection.queue))
        guard !connection.isClosed else { return }
        let exchange = SimpleHTTPConnection(server: self, connection: connection)
        if connection.isActive {
            connection.delegate = exchange
            exchange.connectionDidBecomeActive(connection)
        } else {
            connection.start(delegate: exchange, handshakeTimeout: handshakeTimeout)
        }
    }
}
