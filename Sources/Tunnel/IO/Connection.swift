import CTunnelShims
import Dispatch
import Foundation
import Synchronization

/// What a connection reports to whoever drives it. Called on the connection's queue.
package protocol ConnectionDelegate: AnyObject {
    /// The transport is ready: TCP connected and, with TLS, the handshake is done.
    func connectionDidBecomeActive(_ connection: Connection)
    /// Plaintext arrived. The bytes are valid only during the call.
    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer)
    /// The peer will send no more (TCP FIN or TLS close_notify). Writing may go on.
    func connectionDidReceiveEOF(_ connection: Connection)
    /// `count` plaintext bytes given to `write` reached the kernel.
    func connection(_ connection: Connection, didFlush count: Int)
    /// The connection is closed; `error` is nil after an orderly close.
    func connectionDidClose(_ connection: Connection, error: ConnectionError?)
}

/// One TCP connection, optionally TLS, owned by one serial queue: socket, TLS object and its registration with
/// the `Reactor`, which hands readiness events (edge-triggered) to that queue.
///
/// Writes are never refused: the driver watches `outboundByteCount` and `didFlush` to stop producing, which is
/// how backpressure reaches the other side.
package final class Connection {
    package let queue: DispatchQueue
    /// The socket, owned: closed by `close` (after leaving the reactor) or, if never started, by `deinit`.
    let fd: Int32
    package let tls: TLSConnection?
    package let peerAddress: SocketAddress?
    package private(set) var isActive = false
    package private(set) var isClosed = false
    package var delegate: ConnectionDelegate?

    /// Readiness events from the reactor, from `start` until `close`.
    private var registration: Registration?
    private var isDescriptorClosed = false
    private var isConnecting: Bool
    private var wantsReading = true
    private var sawEOF = false
    /// The socket reached end-of-file; with TLS, plaintext may still wait inside the TLS object and is delivered
    /// before the EOF is.
    private var socketAtEOF = false
    private var outbound = ByteQueue()
    /// (end of the bytes in `outbound` coordinates, plaintext count finished there), in order.
    private var flushMarks: [(end: Int, plaintext: Int)] = []
    private var queuedTotal = 0
    private var writtenTotal = 0
    private var shutdownRequested = false
    private var handshakeTimer: DispatchSourceTimer?
    /// An open connection keeps itself alive, as an event loop keeps its channels; `close` lets go.
    private var selfReference: Connection?

    /// Plaintext written in this turn of the queue, sent at its end (see `write`).
    private var corked: [UInt8] = []
    private var isUncorkScheduled = false

    /// Bytes waiting to reach the kernel.
    package var outboundByteCount: Int { self.outbound.count + self.corked.count }

    private init(fd: Int32, tls: TLSConnection?, queue: DispatchQueue, connecting: Bool) {
        self.fd = fd
        self.tls = tls
        self.queue = queue
        self.isConnecting = connecting
        self.peerAddress = SocketAddress.peer(of: fd)
    }

    /// Wraps an accepted socket. Call `start` on `queue`.
    package static func accepted(fd: Int32, tls: TLSContext?, queue: DispatchQueue) throws -> Connection {
        let session = try tls.map { try TLSConnection(context: $0, serverName: nil) }
        return Connection(fd: fd, tls: session, queue: queue, connecting: false)
    }

    /// Starts connecting to `address`; the delegate hears `connectionDidBecomeActive` or `connectionDidClose`.
    package static func connect(
        to address: SocketAddress, tls: TLSContext?, serverName: String?, queue: DispatchQueue
    ) throws -> Connection {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                            | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConnectionError.io(IOError(errno: errno, call: "socket")) }
        Self.setNoDelay(fd)
        let rc = address.withSockaddr { Foundation.connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS {
            let error = IOError(errno: errno, call: "connect(\(address))")
            Foundation.close(fd)
            throw ConnectionError.io(error)
        }
        do {
            let session = try tls.map { try TLSConnection(context: $0, serverName: serverName) }
            return Connection(fd: fd, tls: session, queue: queue, connecting: true)
        } catch {
            Foundation.close(fd)
            throw error
        }
    }

    /// A 64 KiB read buffer, not zero-filled: every byte read is written by the kernel or OpenSSL first.
    private static func scratchBuffer() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 65_536) { _, count in count = 65_536 }
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Begins I/O. `handshakeTimeout` bounds connecting plus the TLS handshake.
    package func start(delegate: ConnectionDelegate, handshakeTimeout: TimeInterval = 10) {
        dispatchPrecondition(condition: .onQueue(self.queue))
        self.delegate = delegate
        self.selfReference = self
        do {
            self.registration = try Reactor.shared.register(fd: self.fd, queue: self.queue) { [weak self] events in
                self?.handle(events)
            }
        } catch let error as ConnectionError {
            self.close(error: error)
            return
        } catch {
            self.close(error: .io(IOError(errno: EINVAL, call: "epoll_ctl")))
            return
        }

        let timer = DispatchSource.makeTimerSource(queue: self.queue)
        timer.schedule(deadline: .now() + handshakeTimeout)
        timer.setEventHandler { [weak self] in
            guard let self, !self.isActive else { return }
            self.close(error: .timedOut(self.tls == nil ? "connect" : "TLS handshake"))
        }
        timer.resume()
        self.handshakeTimer = timer

        if !self.isConnecting, self.tls == nil { self.becomeActive() }
    }

    /// Events from the reactor (edge-triggered): each direction works until `EAGAIN` or until it pauses.
    private func handle(_ events: UInt32) {
        guard !self.isClosed else { return }
        let failure = CTunnelShims_EVENT_ERR | CTunnelShims_EVENT_HUP
        if events & (CTunnelShims_EVENT_OUT | failure) != 0, self.isConnecting || !self.outbound.isEmpty {
            self.writable()
        }
        if events & (CTunnelShims_EVENT_IN | CTunnelShims_EVENT_RDHUP | failure) != 0, !self.isConnecting {
            self.readable(untilEmpty: events & (CTunnelShims_EVENT_RDHUP | failure) != 0)
        }
    }

    private func becomeActive() {
        self.isActive = true
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        self.delegate?.connectionDidBecomeActive(self)
    }

    // MARK: Reading

    /// Stops reading from the socket until `resumeReading`; the kernel buffer then pushes back on the peer.
    package func pauseReading() {
        self.wantsReading = false
    }

    package func resumeReading() {
        let wasPaused = !self.wantsReading
        self.wantsReading = true
        guard wasPaused, !self.isClosed, !self.sawEOF, !self.isConnecting else { return }
        // Edge-triggered: what arrived while paused raised its event already, so look now. Plaintext may also
        // sit decrypted inside the TLS object.
        self.queue.async { [weak self] in
            guard let self, self.wantsReading else { return }
            if self.tls != nil, self.isActive { self.drainTLS() }
            self.readable()
        }
    }

    /// Reads what the socket holds. With `untilEmpty` false, a read shorter than the buffer ends it: the socket was
    /// empty then, and anything arriving later raises a new edge. With `untilEmpty` (the peer half-closed, or
    /// an edge may have passed unseen while reading was paused) it reads on to `EAGAIN` or end-of-file, so a FIN
    /// that came with the last bytes is seen.
    private func readable(untilEmpty: Bool = true) {
        guard !self.isClosed, self.wantsReading, !self.socketAtEOF, !self.sawEOF else { return }
        var buffer = Self.scratchBuffer()
        for _ in 0..<16 {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(self.fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.withUnsafeBytes { bytes in
                    let received = UnsafeRawBufferPointer(rebasing: bytes[0..<n])
                    if let tls = self.tls {
                        tls.receiveCiphertext(received)
                    } else {
                        self.delegate?.connection(self, didReceive: received)
                    }
                }
                if self.tls != nil { self.drainTLS() }
                if self.isClosed || !self.wantsReading { return }
                if n < buffer.count && !untilEmpty { return }
            } else if n == 0 {
                self.socketAtEOF = true
                if self.tls != nil, self.isActive {
                    // Deliver what the TLS object still holds first (reading may be paused); then the EOF.
                    self.drainTLS()
                } else {
                    self.receivedEOF()
                }
                return
            } else {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                self.close(error: .io(IOError(errno: errno, call: "read")))
                return
            }
        }
        // Still readable after a fair share: continue after the other work queued here.
        self.queue.async { [weak self] in
            self?.readable()
        }
    }

    private func drainTLS() {
        guard let tls = self.tls, !self.isClosed else { return }
        do {
            if !self.isActive {
                let state = try tls.handshake()
                self.flushCiphertext()
                guard case .complete = state else { return }
                self.becomeActive()
            }
            var plaintext = Self.scratchBuffer()
            while self.wantsReading, !self.isClosed {
                // Records hold at most 16 KiB: gather several into the buffer, so the delegate (and everything
                // downstream: HTTP/2 parsing, DATA events, hops between queues) runs once per 64 KiB, not per record.
                var filled = 0
                var ending: TLSConnection.ReadResult?
                while filled < plaintext.count {
                    let result = try plaintext.withUnsafeMutableBytes {
                        try tls.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
                    }
                    if case .bytes(let n) = result {
                        filled += n
                    } else {
                        ending = result
                        break
                    }
                }
                if filled > 0 {
                    plaintext.withUnsafeBytes {
                        self.delegate?.connection(self, didReceive: UnsafeRawBufferPointer(rebasing: $0[0..<filled]))
                    }
                }
                switch ending {
                case nil, .bytes:
                    continue  // the buffer filled up: there may be more
                case .wantMore:
                    if self.isClosed { return }
                    self.flushCiphertext()
                    if self.socketAtEOF { self.receivedEOF() }
                    return
                case .closed:
                    if self.isClosed { return }
                    self.flushCiphertext()
                    self.receivedEOF()
                    return
                }
            }
        } catch {
            self.flushCiphertext()
            self.close(error: .tls("\(error)"))
        }
    }

    private func receivedEOF() {
        guard !self.sawEOF else { return }
        self.sawEOF = true
        if !self.isActive {
            self.close(error: .io(IOError(errno: ECONNRESET, call: self.tls == nil ? "connect" : "TLS handshake")))
            return
        }
        self.delegate?.connectionDidReceiveEOF(self)
    }

    // MARK: Writing

    /// Queues plaintext; it is written (encrypted, with TLS) as the socket allows.
    ///
    /// Small writes made in one turn of the queue are corked and go out together at the end of the turn: a
    /// response head, its body and its last chunk become one TLS record and one `send`, not three. A write of
    /// `corkLimit` bytes or more goes straight through.
    /// A writer that knows nothing more follows in this turn (it batched its output itself, or wrote a whole
    /// message) passes `more: false` to skip the cork.
    package func write(_ bytes: UnsafeRawBufferPointer, more: Bool = true) {
        dispatchPrecondition(condition: .onQueue(self.queue))
        guard !self.isClosed, bytes.count > 0 else { return }
        if self.corked.isEmpty && (bytes.count >= Self.corkLimit || !more) {
            self.commit(bytes)
            return
        }
        Self.unsent.add(bytes.count, ordering: .relaxed)
        if !more {
            self.corked.append(contentsOf: bytes)
            self.commitCorked()
            return
        }
        self.corked.append(contentsOf: bytes)
        if self.corked.count >= Self.corkLimit {
            self.commitCorked()
        } else if !self.isUncorkScheduled {
            self.isUncorkScheduled = true
            self.queue.async { [weak self] in
                guard let self else { return }
                self.isUncorkScheduled = false
                self.commitCorked()
            }
        }
    }

    private static let corkLimit = 16 * 1024

    /// Bytes written to any connection of the process and not yet taken by the kernel (or dropped by a close):
    /// a draining process waits for it to reach zero, so the last responses are not cut off by its exit.
    package static var unsentByteCount: Int { Self.unsent.load(ordering: .relaxed) }
    private static let unsent = Atomic<Int>(0)

    /// Sends what is corked now.
    private func commitCorked() {
        guard !self.corked.isEmpty, !self.isClosed else { return }
        let bytes = self.corked
        self.corked = []  // not keepingCapacity: an idle connection holds no buffer
        Self.unsent.subtract(bytes.count, ordering: .relaxed)
        bytes.withUnsafeBytes { self.commit($0) }
    }

    /// Encrypts (with TLS) and queues `bytes` for the socket, then writes what the socket takes.
    private func commit(_ bytes: UnsafeRawBufferPointer) {
        if let tls = self.tls {
            do {
                var offset = 0
                while offset < bytes.count {
                    offset += try tls.write(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                }
            } catch {
                self.close(error: .tls("\(error)"))
                return
            }
            let ciphertext = tls.pendingCiphertext()
            self.outbound.append(ciphertext)
            self.queuedTotal += ciphertext.count
            Self.unsent.add(ciphertext.count, ordering: .relaxed)
        } else {
            self.outbound.append(bytes)
            self.queuedTotal += bytes.count
            Self.unsent.add(bytes.count, ordering: .relaxed)
        }
        self.flushMarks.append((self.queuedTotal, bytes.count))
        self.flush()
    }

    package func write(_ bytes: [UInt8], more: Bool = true) {
        bytes.withUnsafeBytes { self.write($0, more: more) }
    }

    /// Sends TLS close_notify (if any) and FIN after everything queued; reading goes on.
    package func shutdownOutput() {
        guard !self.isClosed, !self.shutdownRequested else { return }
        self.commitCorked()
        self.shutdownRequested = true
        if let tls = self.tls {
            tls.shutdown()
            self.flushCiphertext()
        }
        self.flush()
    }

    private func flushCiphertext() {
        guard let tls = self.tls else { return }
        let ciphertext = tls.pendingCiphertext()
        guard !ciphertext.isEmpty else { return }
        self.outbound.append(ciphertext)
        self.queuedTotal += ciphertext.count
        Self.unsent.add(ciphertext.count, ordering: .relaxed)
        self.flush()
    }

    private func writable() {
        if self.isConnecting {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(self.fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                self.close(error: .io(IOError(errno: error, call: "connect")))
                return
            }
            self.isConnecting = false
            if let tls = self.tls {
                do {
                    _ = try tls.handshake()
                    self.flushCiphertext()
                } catch {
                    self.close(error: .tls("\(error)"))
                }
                _ = tls
            } else {
                self.becomeActive()
            }
            // Bytes that came with the connection raised their edge while we were still connecting.
            self.readable()
            return
        }
        self.flush()
    }

    private func flush() {
        guard !self.isClosed, !self.isConnecting else { return }
        while !self.outbound.isEmpty {
            var failure: Int32 = 0
            let written = self.outbound.withFirstChunk { chunk in
                let n = Foundation.send(self.fd, chunk.baseAddress, chunk.count, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    failure = errno
                    return 0
                }
                return n
            }
            if failure == EAGAIN || failure == EINTR { break }
            if failure != 0 {
                self.close(error: .io(IOError(errno: failure, call: "send")))
                return
            }
            self.writtenTotal += written
            Self.unsent.subtract(written, ordering: .relaxed)
        }
        var flushed = 0
        while let mark = self.flushMarks.first, mark.end <= self.writtenTotal {
            flushed += mark.plaintext
            self.flushMarks.removeFirst()
        }
        // Bytes left over wait for the reactor's next EPOLLOUT edge: `send` just said the buffer is full.
        if self.outbound.isEmpty, self.shutdownRequested {
            Foundation.shutdown(self.fd, Int32(SHUT_WR))
        }
        if flushed > 0 { self.delegate?.connection(self, didFlush: flushed) }
    }

    // MARK: Closing

    /// Closes at once; bytes the socket does not take at once are dropped. The delegate hears
    /// `connectionDidClose` once.
    package func close(error: ConnectionError? = nil) {
        guard !self.isClosed else { return }
        // What was written before the close goes out as far as the socket takes it at once, as it would have
        // without the cork (a GOAWAY or an error response just before closing).
        self.commitCorked()
        guard !self.isClosed else { return }
        self.isClosed = true
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        if let registration {
            Reactor.shared.deregister(fd: self.fd, registration)
            self.registration = nil
        }
        Foundation.close(self.fd)
        self.isDescriptorClosed = true
        Self.unsent.subtract(self.outbound.count + self.corked.count, ordering: .relaxed)
        self.outbound = ByteQueue()
        self.corked = []
        self.flushMarks = []
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self, error: error)
        self.selfReference = nil
    }

    deinit {
        // A connection never started (or never closed) still owns its descriptor.
        if !self.isDescriptorClosed { Foundation.close(self.fd) }
    }

    /// Writes what is queued, then closes; bounded by `timeout`.
    package func closeAfterFlush(timeout: TimeInterval = 5) {
        guard !self.isClosed else { return }
        self.shutdownOutput()
        if self.outbound.isEmpty {
            // Let the peer read our FIN before the socket goes away; its EOF or the timer closes us.
        }
        self.queue.asyncAfter(deadline: .now() + timeout) { [weak self] in self?.close() }
    }
}

// A Connection is confined to `queue`: every method is called there (checked where it matters), and other
// threads reach it only by dispatching onto that queue.
extension Connection: @unchecked Sendable {}
