import Dispatch
import Foundation
import Tunnel

/// Keep-alive connections to backends, idle between requests, so a request does not pay for a TCP and TLS
/// handshake. One pool per tunnel: its connections live on the tunnel's queue, like the exchanges that use them.
final class BackendPool {
    /// Per service; a class, so taking and giving mutate the list in place and never copy it out of the dictionary.
    private final class IdleList {
        var entries: [(connection: Connection, since: UInt64)] = []
        /// The delegate of every idle connection to the service (it keeps nothing per connection).
        let watcher: IdleBackend

        init(watcher: IdleBackend) {
            self.watcher = watcher
        }
    }

    private var idle: [String: IdleList] = [:]
    static let idleTimeout: UInt64 = 30_000_000_000  // ns; backends commonly close idle ones after 60 s+
    /// Monotonic nanoseconds; tests pass their own clock.
    private let now: () -> UInt64

    /// An empty pool reading time from `now` (monotonic nanoseconds).
    init(now: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.now = now
    }

    /// An idle connection to `service`, or nil.
    func take(_ service: String) -> Connection? {
        let now = self.now()
        guard let list = self.idle[service] else { return nil }
        while let entry = list.entries.popLast() {
            if entry.connection.isClosed { continue }
            if now - entry.since > Self.idleTimeout {
                entry.connection.close()
                continue
            }
            return entry.connection
        }
        return nil
    }

    /// Keeps a connection whose last response ended cleanly for the next request to `service`, unless
    /// `limit` connections to it are idle already.
    func give(_ connection: Connection, to service: String, limit: Int) {
        guard !connection.isClosed else { return }
        let list = self.idle[service] ?? {
            let created = IdleList(watcher: IdleBackend(pool: self, service: service))
            self.idle[service] = created
            return created
        }()
        guard list.entries.count < limit else {
            connection.close()
            return
        }
        connection.delegate = list.watcher
        list.entries.append((connection, self.now()))
    }

    fileprivate func forget(_ connection: Connection, service: String) {
        self.idle[service]?.entries.removeAll { $0.connection === connection }
    }

    /// Closes every idle connection (the tunnel that would use them is gone).
    func closeAll() {
        let all = self.idle.values.flatMap(\.entries)
        self.idle = [:]
        for entry in all { entry.connection.close() }
    }
}

/// Watches an idle backend connection: the backend closing it (or sending what nobody asked for) ends it.
private final class IdleBackend: ConnectionDelegate {
    private weak var pool: BackendPool?
    private let service: String

    init(pool: BackendPool, service: String) {
        self.pool = pool
        self.service = service
    }

    func connectionDidBecomeActive(_ connection: Connection) {}
    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) { connection.close() }
    func connectionDidReceiveEOF(_ connection: Connection) { connection.close() }
    func connection(_ connection: Connection, didFlush count: Int) {}

    func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        self.pool?.forget(connection, service: self.service)
    }
}
