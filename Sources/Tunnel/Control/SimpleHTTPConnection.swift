import Dispatch
import Foundation

/// One connection served by a `SimpleHTTPServer`: feeds a `SimpleHTTPRequestReader` and carries out its actions.
///
/// The connection holds this delegate strongly and drops it on close, which ends the cycle between them.
final class SimpleHTTPConnection: ConnectionDelegate {
    private let server: SimpleHTTPServer
    private let connection: Connection
    private var reader: SimpleHTTPRequestReader?
    private var idleTimer: DispatchSourceTimer?
    private var isClosing = false
    /// A deferred response is being produced: no further request is read until it is written.
    private var isWaiting = false

    init(server: SimpleHTTPServer, connection: Connection) {
        self.server = server
        self.connection = connection
    }

    private var peer: String { self.connection.peerAddress.map { "\($0)" } ?? "?" }

    func connectionDidBecomeActive(_ connection: Connection) {
        dispatchPrecondition(condition: .onQueue(connection.queue))
        let certificate = connection.tls?.peerCertificate
        let identity = certificate.flatMap { certificate in
            self.server.trustDomain.flatMap { EndpointIdentity.from(certificate: certificate, trustDomain: $0) }
        }
        self.reader = SimpleHTTPRequestReader(
            maxBodyBytes: self.server.maxBodyBytes, maxHeaderBytes: self.server.maxHeaderBytes,
            peerCertificate: certificate, peerIdentity: identity, peerCommonName: certificate?.commonName,
            peerAddress: self.peer)
        self.armIdleTimer()
    }

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        guard !self.isClosing, self.reader != nil else { return }
        self.armIdleTimer()
        self.reader!.feed(bytes)
        if !self.isWaiting { self.process(atEndOfInput: false) }
    }

    func connectionDidReceiveEOF(_ connection: Connection) {
        guard !self.isClosing, self.reader != nil, !self.isWaiting else { return }
        self.process(atEndOfInput: true)
        if !self.isClosing { self.closeAfterFlush() }
    }

    func connection(_ connection: Connection, didFlush count: Int) {}

    func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        self.idleTimer?.cancel()
        self.idleTimer = nil
        self.reader = nil
    }

    private func process(atEndOfInput: Bool) {
        var action = atEndOfInput ? self.reader?.finish() : self.reader?.next()
        while let current = action, !self.isClosing, !self.isWaiting {
            switch current {
            case .sendContinue:
                self.connection.write(SimpleHTTPRequestReader.continueResponse)
            case .request(let request, let keepAlive):
                let response = self.server.handler(request)
                if let deferred = response.deferred {
                    self.answerLater(deferred, keepAlive: keepAlive, includeBody: request.method != "HEAD")
                    return
                }
                self.connection.write(response.encoded(keepAlive: keepAlive, includeBody: request.method != "HEAD"))
                if !keepAlive { self.closeAfterFlush() }
            case .reject(let status, let reason):
                Log.warning("bad request", [
                    "listener": self.server.name, "peer": self.peer, "status": "\(status)", "reason": reason,
                ])
                self.connection.write(SimpleResponse.error(status, reason).encoded(keepAlive: false))
                self.closeAfterFlush()
            }
            action = self.reader?.next()
        }
    }

    /// Waits for a deferred response on the connection's queue, writes it, then reads on.
    private func answerLater(_ deferred: SimpleResponse.Deferred, keepAlive: Bool, includeBody: Bool) {
        self.isWaiting = true
        self.idleTimer?.cancel()
        self.idleTimer = nil
        let queue = self.connection.queue
        deferred.start { response in
            queue.async {
                guard self.isWaiting, !self.connection.isClosed else { return }
                self.isWaiting = false
                self.connection.write(response.encoded(keepAlive: keepAlive, includeBody: includeBody))
                if keepAlive {
                    self.armIdleTimer()
                    self.process(atEndOfInput: false)
                } else {
                    self.closeAfterFlush()
                }
            }
        }
    }

    private func closeAfterFlush() {
        self.isClosing = true
        self.idleTimer?.cancel()
        self.idleTimer = nil
        self.connection.pauseReading()
        self.connection.closeAfterFlush()
    }

    /// Closes the connection after `idleTimeout` without input; each arrival pushes the deadline back.
    private func armIdleTimer() {
        if let timer = self.idleTimer {
            timer.schedule(deadline: .now() + self.server.idleTimeout)
            return
        }
        let timer = DispatchSource.makeTimerSource(queue: self.connection.queue)
        timer.schedule(deadline: .now() + self.server.idleTimeout)
        timer.setEventHandler { [weak self] in
            guard let self, !self.isClosing else { return }
            self.isClosing = true
            self.connection.close()
        }
        timer.resume()
        self.idleTimer = timer
    }
}

// Confined to the connection's queue; a deferred response hops back there before touching it.
extension SimpleHTTPConnection: @unchecked Sendable {}
