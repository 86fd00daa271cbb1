import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Agent
@testable import Tunnel

@Suite struct BackendPoolTests {
    /// A clock the test moves by hand, in nanoseconds.
    final class Clock: Sendable {
        let nanoseconds = Atomic<UInt64>(1_000_000_000)
        func advance(seconds: UInt64) { self.nanoseconds.add(seconds * 1_000_000_000, ordering: .relaxed) }
        func now() -> UInt64 { self.nanoseconds.load(ordering: .relaxed) }
    }

    /// One end of a socket pair as a `Connection`; the other end is closed when the test ends.
    private final class Pair {
        let connection: Connection
        let peer: Int32

        init(queue: DispatchQueue) throws {
            var fds: [Int32] = [0, 0]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            self.connection = try Connection.accepted(fd: fds[0], tls: nil, queue: queue)
            self.peer = fds[1]
        }

        deinit { Foundation.close(self.peer) }
    }

    private let queue = DispatchQueue(label: "backend-pool-tests")

    @Test func anIdleConnectionIsReusedUntilItExpires() throws {
        let clock = Clock()
        let pool = BackendPool(now: clock.now)
        let first = try Pair(queue: self.queue)
        let second = try Pair(queue: self.queue)
        self.queue.sync {
            pool.give(first.connection, to: "http/web", limit: 4)
            #expect(pool.take("http/web") === first.connection)
            #expect(pool.take("http/web") == nil)
            #expect(pool.take("http/other") == nil)

            pool.give(first.connection, to: "http/web", limit: 4)
            clock.advance(seconds: 20)
            pool.give(second.connection, to: "http/web", limit: 4)
            clock.advance(seconds: 20)
            // 40 s idle is past the 30 s expiry; 20 s is not.
            #expect(pool.take("http/web") === second.connection)
            #expect(pool.take("http/web") == nil)
            #expect(first.connection.isClosed)
            #expect(!second.connection.isClosed)
            second.connection.close()
        }
    }

    @Test func thePoolKeepsAtMostTheLimitAndCloseAllEmptiesIt() throws {
        let pool = BackendPool(now: Clock().now)
        let pairs = try (0..<3).map { _ in try Pair(queue: self.queue) }
        self.queue.sync {
            for pair in pairs { pool.give(pair.connection, to: "http/web", limit: 2) }
            #expect(pairs[2].connection.isClosed)
            #expect(!pairs[0].connection.isClosed && !pairs[1].connection.isClosed)
            pool.closeAll()
            #expect(pairs.filter { !$0.connection.isClosed }.isEmpty)
            #expect(pool.take("http/web") == nil)
        }
    }

    @Test func aClosedConnectionIsNotHandedOut() throws {
        let pool = BackendPool(now: Clock().now)
        let pair = try Pair(queue: self.queue)
        self.queue.sync {
            pool.give(pair.connection, to: "http/web", limit: 2)
            pair.connection.close()
            #expect(pool.take("http/web") == nil)
        }
    }
}
