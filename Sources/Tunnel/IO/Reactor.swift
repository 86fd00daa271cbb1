import CTunnelShims
import Dispatch
import Foundation
import Synchronization

/// Socket readiness for every connection of the process, from one thread blocked in `epoll_wait`.
///
/// Each socket is registered once, edge-triggered, for reading and writing; an event is handed to the socket's
/// serial queue, where the connection reads or writes until `EAGAIN`. Compared with a dispatch source per
/// direction, this saves the `FIONREAD` ioctl and the two `epoll_ctl` calls (disarm, re-arm) that libdispatch
/// makes around every event, and the hand-over from its manager thread: several system calls per request.
package final class Reactor: @unchecked Sendable {
    package static let shared = Reactor()

    private let epoll: Int32
    /// Registrations removed from epoll, released by the reactor thread once the batch in hand is done, so a
    /// pointer taken from `epoll_wait` is never used after it was freed.
    private let retired = Mutex<[Unmanaged<Registration>]>([])

    private init() {
        self.epoll = CTunnelShims_epoll_create()
        precondition(self.epoll >= 0, "epoll_create1: \(String(cString: strerror(errno)))")
        let thread = Thread { [self] in self.run() }
        thread.name = "porthole.reactor"
        thread.qualityOfService = .userInteractive
        thread.start()
    }

    /// Watches `fd` until `deregister`; `handler` runs on `queue` with the events that arrived (`EPOLLIN`, …).
    package func register(fd: Int32, queue: DispatchQueue,
                          handler: @escaping (_ events: UInt32) -> Void) throws -> Registration {
        let registration = Registration(queue: queue, handler: handler)
        let pointer = Unmanaged.passRetained(registration)
        guard CTunnelShims_epoll_add(self.epoll, fd, pointer.toOpaque()) == 0 else {
            let error = IOError(errno: errno, call: "epoll_ctl")
            pointer.release()
            throw ConnectionError.io(error)
        }
        return registration
    }

    /// Stops watching `fd`; call before closing it. The handler is not called again.
    package func deregister(fd: Int32, _ registration: Registration) {
        registration.isRetired.store(true, ordering: .releasing)
        _ = CTunnelShims_epoll_remove(self.epoll, fd)
        self.retired.withLock { $0.append(Unmanaged.passUnretained(registration)) }
    }

    private func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<CTunnelShims_event>.allocate(capacity: capacity)
        while true {
            let count = CTunnelShims_epoll_wait(self.epoll, events, Int32(capacity))
            if count < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait: \(String(cString: strerror(errno)))")
            }
            for index in 0..<Int(count) {
                guard let pointer = events[index].pointer else { continue }
                Unmanaged<Registration>.fromOpaque(pointer).takeUnretainedValue().post(events[index].events)
            }
            let retired = self.retired.withLock { list in
                defer { list.removeAll() }
                return list
            }
            // One release balances passRetained in `register`.
            for registration in retired { registration.release() }
        }
    }
}

/// One socket's entry in the reactor: where its events go, and which have arrived but not yet been handled.
package final class Registration: Sendable {
    private let queue: DispatchQueue
    private let handler: @Sendable (UInt32) -> Void
    private let pending = Atomic<UInt32>(0)
    fileprivate let isRetired = Atomic<Bool>(false)

    fileprivate init(queue: DispatchQueue, handler: @escaping (UInt32) -> Void) {
        self.queue = queue
        // Only ever called on `queue`, which confines the connection it touches.
        nonisolated(unsafe) let handler = handler
        self.handler = { handler($0) }
    }

    /// On the reactor thread: records `events` and, unless a delivery is already queued, queues one.
    fileprivate func post(_ events: UInt32) {
        guard !self.isRetired.load(ordering: .acquiring) else { return }
        let before = self.pending.bitwiseOr(events, ordering: .acquiringAndReleasing).oldValue
        if before == 0 {
            self.queue.async { self.deliver() }
        }
    }

    private func deliver() {
        let events = self.pending.exchange(0, ordering: .acquiringAndReleasing)
        guard events != 0, !self.isRetired.load(ordering: .acquiring) else { return }
        self.handler(events)
    }
}
