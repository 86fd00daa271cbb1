import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Tunnel

/// `Connection` on one end of a socket pair, the test on the other: reading (edge-triggered, from the reactor),
/// corked writing, pausing, end-of-file and close.
@Suite struct ConnectionTests {
    /// What the connection told its delegate, in order.
    final class Recorder: ConnectionDelegate, @unchecked Sendable {
        private let state = Mutex<(bytes: [UInt8], eof: Bool, closed: Bool, flushed: Int)>(([], false, false, 0))

        var bytes: [UInt8] { self.state.withLock { $0.bytes } }
        var sawEOF: Bool { self.state.withLock { $0.eof } }
        var isClosed: Bool { self.state.withLock { $0.closed } }
        var flushed: Int { self.state.withLock { $0.flushed } }

        func connectionDidBecomeActive(_ connection: Connection) {}
        func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
            self.state.withLock { $0.bytes += bytes }
        }
        func connectionDidReceiveEOF(_ connection: Connection) { self.state.withLock { $0.eof = true } }
        func connection(_ connection: Connection, didFlush count: Int) { self.state.withLock { $0.flushed += count } }
        func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
            self.state.withLock { $0.closed = true }
        }
    }

    struct Pair {
        let connection: Connection
        let queue: DispatchQueue
        let recorder: Recorder
        /// The test's end, blocking.
        let peer: Int32

        func onQueue<T>(_ body: () -> T) -> T { self.queue.sync(execute: body) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBytes { write(self.peer, $0.baseAddress, $0.count) } == bytes.count)
        }

        /// Reads from the peer end until `count` bytes or end-of-file, for at most 10 s.
        func receive(atLeast count: Int) -> (bytes: [UInt8], eof: Bool) {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let deadline = Date().addingTimeInterval(10)
            while received.count < count, Date() < deadline {
                var descriptor = pollfd(fd: self.peer, events: Int16(POLLIN), revents: 0)
                guard poll(&descriptor, 1, 100) > 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { read(self.peer, $0.baseAddress, $0.count) }
                if n <= 0 { return (received, true) }
                received += buffer[0..<n]
            }
            return (received, false)
        }

        func close() {
            self.onQueue { self.connection.close() }
            Foundation.close(self.peer)
        }
    }

    private func makePair() throws -> Pair {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let flags = fcntl(fds[0], F_GETFL)
        _ = fcntl(fds[0], F_SETFL, flags | O_NONBLOCK)
        let queue = EventLoops.shared.makeConnectionQueue(label: "test.connection")
        let connection = try Connection.accepted(fd: fds[0], tls: nil, queue: queue)
        let recorder = Recorder()
        queue.sync { connection.start(delegate: recorder) }
        return Pair(connection: connection, queue: queue, recorder: recorder, peer: fds[1])
    }

    /// Polls `condition` every 10 ms for at most 10 s.
    private func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test func smallWritesInOneTurnGoOutTogetherAtItsEnd() throws {
        let pair = try self.makePair()
        defer { pair.close() }
        let corked = pair.onQueue {
            for piece in ["head ", "body ", "end"] { pair.connection.write(Array(piece.utf8)) }
            return pair.connection.outboundByteCount
        }
        #expect(corked == 13, "three small writes wait for the end of the turn")
        let (bytes, _) = pair.receive(atLeast: 13)
        #expect(String(decoding: bytes, as: UTF8.self) == "head body end")
        #expect(self.eventually { pair.recorder.flushed == 13 })
        #expect(pair.onQueue { pair.connection.outboundByteCount } == 0)
    }

    @Test func aLargeWriteGoesStraightThroughAndAllOfItArrives() throws {
        let pair = try self.makePair()
        defer { pair.close() }
        let payload = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        pair.onQueue { pair.connection.write(payload) }
        // More than the socket buffer holds: the rest goes out on the reactor's EPOLLOUT edges as we read.
        let (bytes, eof) = pair.receive(atLeast: payload.count)
        #expect(!eof && bytes.count == payload.count && bytes == payload)
        #expect(self.eventually { pair.recorder.flushed == payload.count })
    }

    @Test func whatWasWrittenBeforeCloseIsSent() throws {
        let pair = try self.makePair()
        pair.onQueue {
            pair.connection.write(Array("goodbye".utf8))
            pair.connection.close()
        }
        let (bytes, eof) = pair.receive(atLeast: 8)
        #expect(String(decoding: bytes, as: UTF8.self) == "goodbye" && eof)
        #expect(pair.recorder.isClosed)
        Foundation.close(pair.peer)
    }

    @Test func dataAndTheFINThatCameWithItAreBothSeen() throws {
        let pair = try self.makePair()
        defer { pair.close() }
        pair.send("last words")
        shutdown(pair.peer, Int32(SHUT_WR))
        #expect(self.eventually { pair.recorder.sawEOF })
        #expect(String(decoding: pair.recorder.bytes, as: UTF8.self) == "last words")
    }

    @Test func bytesThatArriveWhileReadingIsPausedAreReadOnResume() throws {
        let pair = try self.makePair()
        defer { pair.close() }
        pair.send("one ")
        #expect(self.eventually { pair.recorder.bytes.count == 4 })
        pair.onQueue { pair.connection.pauseReading() }
        pair.send("two")
        shutdown(pair.peer, Int32(SHUT_WR))
        // The edge for "two" and the FIN is raised now, while paused; give the reactor time to deliver it.
        usleep(200_000)
        #expect(pair.recorder.bytes.count == 4, "nothing is read while paused")
        pair.onQueue { pair.connection.resumeReading() }
        #expect(self.eventually { pair.recorder.sawEOF })
        #expect(String(decoding: pair.recorder.bytes, as: UTF8.self) == "one two")
    }

    @Test func manyConnectionsOpenAndCloseWithoutCrossedEvents() throws {
        // Descriptor numbers are reused at once; a retired registration must never deliver to a new connection.
        for round in 0..<200 {
            let pair = try self.makePair()
            pair.send("r\(round)")
            #expect(self.eventually { pair.recorder.bytes.count == "r\(round)".utf8.count })
            #expect(String(decoding: pair.recorder.bytes, as: UTF8.self) == "r\(round)")
            pair.close()
        }
    }
}
