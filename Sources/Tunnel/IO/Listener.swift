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

    /// Binds and listens; connections wait in the backlog until `start`.
    package init(name: String, host: String, port: UInt16, loops: EventLoops = .shared) throws {
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
        self.queue = DispatchQueue(label: "porthole.listener.\(name)")
        self.source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: self.queue)
        self.source.setCancelHandler { close(fd) }
    }

    /// Starts accepting. `onAccept` runs on the new connection's own queue with the accepted descriptor.
    package func start(onAccept: @escaping @Sendable (_ fd: Int32, _ queue: DispatchQueue) -> Void) {
        let fd = self.fd
        let name = self.name
        let loopsForAccept = self.loops
        self.isStarted = true
        self.source.setEventHandler {
            for _ in 0..<256 {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EAGAIN || errno == EINTR || errno == ECONNABORTED { return }
                    Log.warning("accept failed", ["listener": name, "error": "\(IOError(errno: errno, call: "accept"))"])
                    return
                }
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                Connection.setNoDelay(client)
                let queue = loopsForAccept.makeConnectionQueue(label: "porthole.\(name)")
                queue.async { onAccept(client, queue) }
            }
        }
        self.source.resume()
    }

    /// Stops accepting and closes the socket; accepted connections are not affected.
    package func stop() {
        self.source.cancel()
    }

    deinit {
        // A source must not be released suspended: one never started is resumed into its cancellation.
        if !self.isStarted {
            self.source.cancel()
            self.source.resume()
        }
    }
}

// The source and descriptor are touched only on `queue` after `start`; the rest is immutable.
extension Listener: @unchecked Sendable {}
