@testable import Tunnel

/// `HTTP2Session` fed raw frames, as the server (the client preface is sent for the input) or as the client (two
/// requests are open; the input is what the server sends, its SETTINGS first). The harness acts as the session's
/// owner does: it answers requests, acknowledges body bytes, resets streams and sends what the session queued.
///
/// Input: a control byte (bits 0-2 the size of the pieces fed, bit 3 hold back body acknowledgements, bit 4 end
/// responses at once, bit 5 reset the first stream seen, bit 6 turn HTTP messaging checks off, bit 7 send a PING),
/// then the bytes on the wire.
///
/// Properties: no event for a stream after its `.streamClosed`; a client hears only about streams it opened; body
/// events are never empty; a closed stream leaves nothing behind in the session's per-stream tables.
enum HTTP2FuzzHarness {
    static let serverTarget = FuzzTarget("http2-server") { (input) throws(FuzzFinding) in try Self.run(input, .server) }
    static let clientTarget = FuzzTarget("http2-client") { (input) throws(FuzzFinding) in try Self.run(input, .client) }
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let pieceSizes = [Int.max, 1, 7, 64, 512, 9, 100, 4096]

    static func run(_ input: [UInt8], _ role: HTTP2Role) throws(FuzzFinding) {
        var reader = FuzzInputReader(input)
        let control = reader.byte()
        let wire = reader.rest
        var settings = HTTP2Settings()
        settings.validateHTTPMessaging = control & 0x40 == 0
        guard let session = try? HTTP2Session(role: role, settings: settings) else {
            throw FuzzFinding("cannot create a \(role) session")
        }
        var owner = Owner(session: session, control: control)
        if role == .client {
            let headers = [
                HTTPField(":method", "GET"), HTTPField(":scheme", "https"), HTTPField(":authority", "a"),
                HTTPField(":path", "/"),
            ]
            guard let get = try? session.submitRequest(headers, hasBody: false),
                let post = try? session.submitRequest(
                    [HTTPField(":method", "POST")] + headers.dropFirst(), hasBody: true)
            else { throw FuzzFinding("cannot submit the client's requests") }
            session.sendData(streamID: post, Array("hello".utf8))
            session.endStream(streamID: post)
            owner.opened = [get, post]
        }
        if control & 0x80 != 0 { session.ping(payload: 42) }
        guard try owner.flush() else { return }
        if role == .server {
            guard try owner.receive(Self.preface[...]) else { return }
        }
        let pieceSize = Self.pieceSizes[Int(control & 7)]
        var start = 0
        while start < wire.count {
            let end = wire.count - start > pieceSize ? start + pieceSize : wire.count
            guard try owner.receive(wire[start..<end]) else { return }
            start = end
        }
    }

    /// What the controller or agent does with a session's events, reduced to what changes the session's state.
    struct Owner {
        let session: HTTP2Session
        let control: UInt8
        /// Streams this end opened (client) or answered (server).
        var opened: Set<Int32> = []
        var closed: Set<Int32> = []
        var hasReset = false

        init(session: HTTP2Session, control: UInt8) {
            self.session = session
            self.control = control
        }

        /// Feeds bytes and acts on the events; false once the session failed.
        mutating func receive(_ bytes: ArraySlice<UInt8>) throws(FuzzFinding) -> Bool {
            let events: [HTTP2Event]
            do {
                events = try bytes.withUnsafeBytes { try self.session.receive($0) }
            } catch {
                _ = try? self.flush()
                return false
            }
            try self.handle(events)
            return try self.flush()
        }

        /// Sends what the session queued, as the owner's writer does; false once the session failed.
        mutating func flush() throws(FuzzFinding) -> Bool {
            for _ in 0..<64 {
                var output: [UInt8] = []
                let events: [HTTP2Event]
                do {
                    events = try self.session.send(into: &output, limit: 64 * 1024)
                } catch {
                    return false
                }
                try self.handle(events)
                if output.isEmpty { return true }
            }
            return true
        }

        mutating func handle(_ events: [HTTP2Event]) throws(FuzzFinding) {
            for event in events {
                let streamID: Int32
                switch event {
                case .headers(let id, _, _), .endStream(let id), .drained(let id, _), .headerListTooLarge(let id):
                    streamID = id
                case .data(let id, let bytes):
                    streamID = id
                    try FuzzFinding.check(!bytes.isEmpty, "empty DATA event on stream \(id)")
                case .streamClosed(let id, _):
                    try FuzzFinding.check(!self.closed.contains(id), "stream \(id) closed twice")
                    streamID = id
                case .pingAcknowledged, .goAway, .goAwaySent: continue
                }
                try FuzzFinding.check(!self.closed.contains(streamID), "\(event) after stream \(streamID) closed")
                switch event {
                case .headers(let id, _, let endStream):
                    if self.session.role == .client {
                        try FuzzFinding.check(self.opened.contains(id), "response headers on stream \(id), not opened")
                    } else if !self.opened.contains(id) {
                        try FuzzFinding.check(id % 2 == 1, "request on even stream \(id)")
                        self.opened.insert(id)
                        try? self.session.submitResponse(
                            streamID: id, [HTTPField(":status", "200")], hasBody: true)
                        self.session.sendData(streamID: id, Array(repeating: 0x61, count: 100))
                        if endStream || self.control & 0x10 != 0 { self.session.endStream(streamID: id) }
                    }
                    if self.control & 0x20 != 0 && !self.hasReset {
                        self.hasReset = true
                        self.session.reset(streamID: id)
                    }
                case .data(let id, let bytes):
                    if self.session.role == .client {
                        try FuzzFinding.check(self.opened.contains(id), "response body on stream \(id), not opened")
                    }
                    if self.control & 0x08 == 0 { self.session.consume(streamID: id, count: bytes.count) }
                case .endStream(let id):
                    if self.session.role == .server { self.session.endStream(streamID: id) }
                case .headerListTooLarge(let id):
                    self.session.reset(streamID: id)  // as the owners do when they do not answer 431
                case .streamClosed(let id, _):
                    self.closed.insert(id)
                default:
                    break
                }
            }
            for id in self.closed {
                try FuzzFinding.check(self.session.unconsumed[id] == nil, "closed stream \(id) kept its unconsumed count")
                try FuzzFinding.check(self.session.outbound[id] == nil, "closed stream \(id) kept its outbound body")
            }
        }
    }
}
