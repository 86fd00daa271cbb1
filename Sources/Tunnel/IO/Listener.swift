import Dispatch
import Foundation

/// A listening TCP socket that hands each accepted socket, on its own queue, to `onAccept`.
package final class Listener {
    package let name: String
    package let address: SocketAddress
    /// The listening socket, owned: closed by the source's cancel handler.
    private let fd: Int32
    private let queue: DispatchQueue
    private let source: DispatchSourceRead
    private let loops: EventLoops
    private var isStarted = false
    /// Queue state: whether the source is suspended after a failed `accept`, and for how long the next pause is.
    private var isSuspended = false
    private var isStopped = false
    private var pauseDelay = Listener.minimumPause
    private static let minimumPause: TimeInterval = 0.1
    private static let maximumPause: TimeInterval = 1
    /// One line per interval for a run of failed `accept` calls, however fast they come.
    private let failureLog: RateLimitedLog

    /// Binds and listens; connections wait in the backlog until `start`.
    ///
    /// `failureLog` writes the line for a run of failed `accept` calls (descriptors or memory ran out).
    package init(name: String, host: String, port: UInt16, loops: EventLoops = .shared,
                 failureLog: RateLimitedLog = RateLimitedLog()) throws {
        guard let bindAddress = try SocketAddress.resolve(host: host, port: port).first else {
            throw ConnectionError.io(IOError(errno: EADDRNOTAVAIL, call: "resolve(\(host))"))
        }
        let fd = socket(bindAddress.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                            | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConnectionError.io(IOError(errno: errno, call: "socket")) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bindAddress.withSockaddr({ bind(fd, $0, $1) }) == 0 else {
            let error = IOError(errno: errno, call: "bind(\(bindAddress))")
            close(fd)
            throw ConnectionError.io(error)
        }
        guard listen(fd, 4096) == 0 else {
            let error = IOError(errno: errno, call: "listen")
            close(fd)
            throw ConnectionError.io(error)
        }
        self.name = name
        self.fd = fd
        self.address = SocketAddress.local(of: fd) ?? bindAddress
        self.loops = loops
        self.failureLog = failureLog
        self.queue = DispatchQueue(label: "porthole.listener.\(name)")
        self.source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: self.queue)
        self.source.setCancelHandler { close(fd) }
    }

    /// Starts accepting. `onAccept` runs on the new connection's own queue with the accepted descriptor.
    package func start(onAccept: @escaping @Sendable (_ fd: Int32, _ queue: DispatchQueue) -> Void) {
        self.isStarted = true
        self.source.setEventHandler { [weak self] in self?.acceptPending(onAccept) }
        self.source.resume()
    }

    /// Accepts what the backlog holds, a fair share at a time. On the listener's queue.
    private func acceptPending(_ onAccept: @escaping @Sendable (_ fd: Int32, _ queue: DispatchQueue) -> Void) {
        for _ in 0..<256 {
            let client = accept(self.fd, nil, nil)
            if client < 0 {
                let code = errno
                switch code {
                case EAGAIN:
                    return
                case EINTR, ECONNABORTED, EPROTO:
                    continue  // that one connection is gone; the next may be fine
                default:
                    // EMFILE, ENFILE, ENOMEM, ENOBUFS and anything unforeseen: the socket stays readable, so
                    // retrying now would spin. Stop watching it for a while; the connection waits in the backlog.
                    let pause = self.pauseAccepting()
                    self.failureLog.record(.warning, "accept failed; pausing the listener", key: "accept", [
                        "listener": self.name, "error": "\(IOError(errno: code, call: "accept"))",
                        "pauseMs": "\(Int(pause * 1000))",
                    ])
                    return
                }
            }
            if self.pauseDelay > Self.minimumPause {
                self.pauseDelay = Self.minimumPause
                let unreported = self.failureLog.recovered(key: "accept")
                Log.info("listener accepting again", ["listener": self.name, "count": "\(unreported)"])
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            Connection.setNoDelay(client)
            let queue = self.loops.makeConnectionQueue(label: "porthole.\(self.name)")
            queue.async { onAccept(client, queue) }
        }
    }

    /// Suspends the source for the current pause, doubling the next one (up to `maximumPause`); returns the pause.
    private func pauseAccepting() -> TimeInterval {
        let pause = self.pauseDelay
        guard !self.isSuspended, !self.isStopped else { return pause }
        self.pauseDelay = min(self.pauseDelay * 2, Self.maximumPause)
        self.isSuspended = true
        self.source.suspend()
        self.queue.asyncAfter(deadline: .now() + pause) { [weak self] in
            guard let self, self.isSuspended else { return }
            self.isSuspended = false
            self.source.resume()
        }
        return pause
    }

    /// Stops accepting and closes the socket; accepted connections are not affected.
    package func stop() {
        self.queue.sync {
            guard !self.isStopped else { return }
            self.isStopped = true
            self.source.cancel()
            // A suspended source runs its cancel handler (which closes the socket) only once resumed.
            if self.isSuspended {
                self.isSuspended = false
                self.source.resume()
            }
        }
    }

    deinit {
        // A source must not be released suspended: one never started is resumed into its cancellation.
        if !self.isStarted {
            self.source.cancel()
            self.source.resume()
        }
    }
}

// The source, the descriptor and the pause state are touched only on `queue` after `start`; the rest is immutable.
extension Listener: @unchecked Sendable {}
