@testable import Tunnel

/// HTTP/1.1 parsing, chunked decoding included. Input: a control byte (bit 0 response parser, bit 1 finish at the
/// end, bits 2-3 header limits), a split byte (0 feeds one byte at a time, n feeds n bytes at a time), a byte
/// holding four 2-bit request methods the responses answer, then the bytes on the wire.
///
/// Properties: the events do not depend on how the bytes were split, body events are never empty, and every head
/// the parser accepts survives `HTTP1Serializer` and a second parse unchanged (what the proxy forwards is what it
/// understood).
enum HTTP1FuzzHarness {
    static let target = FuzzTarget("http1", run: Self.run)
    static let limits: [(bytes: Int, count: Int)] = [(64 * 1024, 200), (48, 3), (128, 2), (1024, 10)]
    static let methods = ["GET", "HEAD", "CONNECT", "POST"]

    /// Everything one parse produced; adjacent body pieces merged so splits do not show.
    struct Transcript: Equatable {
        var events: [HTTP1Parser.Event] = []
        var error: HTTP1Error?
        var remaining: [UInt8] = []
        var keepAlive = true
    }

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        var reader = FuzzInputReader(input)
        let control = reader.byte()
        let step = Int(reader.byte())
        let methodBits = reader.byte()
        let wire = reader.rest
        let kind: HTTP1Parser.Kind = control & 1 == 0 ? .request : .response
        let finish = control & 2 != 0
        let limit = Self.limits[Int(control >> 2) & 3]
        let methods = kind == .response ? (0..<4).map { Self.methods[Int(methodBits >> (2 * $0)) & 3] } : []

        let whole = try Self.transcript(kind, wire, splits: [], finish: finish, methods: methods, limit: limit)
        let pieceSize = max(step, 1)
        let splits = Array(stride(from: pieceSize, to: wire.count, by: pieceSize))
        let split = try Self.transcript(kind, wire, splits: splits, finish: finish, methods: methods, limit: limit)
        try FuzzFinding.check(whole == split, "split at every \(pieceSize) bytes: \(split) differs from \(whole)")

        for event in whole.events {
            switch event {
            case .requestHead(let head): try Self.checkReparse(head)
            case .responseHead(let head): try Self.checkReparse(head)
            case .body, .end: break
            }
        }
    }

    static func transcript(
        _ kind: HTTP1Parser.Kind, _ wire: [UInt8], splits: [Int], finish: Bool, methods: [String],
        limit: (bytes: Int, count: Int)
    ) throws(FuzzFinding) -> Transcript {
        var parser = HTTP1Parser(kind: kind, maxHeaderBytes: limit.bytes, maxHeaderCount: limit.count)
        for method in methods { parser.expectResponse(toMethod: method) }
        var transcript = Transcript()
        var start = 0
        func record(_ event: HTTP1Parser.Event) throws(FuzzFinding) {
            if case .body(let more) = event {
                try FuzzFinding.check(!more.isEmpty, "empty body event")
                if case .body(let bytes)? = transcript.events.last {
                    transcript.events[transcript.events.count - 1] = .body(bytes + more)
                    return
                }
            }
            transcript.events.append(event)
        }
        do {
            for end in splits + [wire.count] {
                wire.withUnsafeBytes { parser.feed(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
                start = end
                while let event = try parser.next() { try record(event) }
            }
            if finish {
                var event = try parser.finish()
                while let current = event {
                    try record(current)
                    event = try parser.next()
                }
            }
        } catch let error as HTTP1Error {
            transcript.error = error
            // A failed parser keeps failing with the same error.
            var again: (any Error)?
            do { _ = try parser.next() } catch { again = error }
            try FuzzFinding.check(again as? HTTP1Error == error, "after \(error), next() gave \(String(describing: again))")
        } catch let finding as FuzzFinding {
            throw finding
        } catch {
            throw FuzzFinding("unexpected error type: \(error)")
        }
        if parser.isSwitchingProtocols { transcript.remaining = parser.takeRemainingBytes() }
        transcript.keepAlive = parser.keepAlive
        return transcript
    }

    static func checkReparse(_ head: HTTPRequestHead) throws(FuzzFinding) {
        let bytes = HTTP1Serializer.requestHead(head)
        var parser = HTTP1Parser(kind: .request, maxHeaderBytes: 1 << 20, maxHeaderCount: 100_000)
        parser.feed(bytes)
        let event: HTTP1Parser.Event?
        do {
            event = try parser.next()
        } catch {
            throw FuzzFinding("serialized request head is refused (\(error)): \(head)")
        }
        guard case .requestHead(let again)? = event else {
            throw FuzzFinding("serialized request head gave \(String(describing: event)): \(head)")
        }
        try FuzzFinding.check(
            again.method == head.method && again.target == head.target && again.headers == head.headers,
            "request head changed through the serializer: \(head) became \(again)")
    }

    static func checkReparse(_ head: HTTPResponseHead) throws(FuzzFinding) {
        let bytes = HTTP1Serializer.responseHead(head)
        var parser = HTTP1Parser(kind: .response, maxHeaderBytes: 1 << 20, maxHeaderCount: 100_000)
        parser.expectResponse(toMethod: "HEAD")
        parser.feed(bytes)
        let event: HTTP1Parser.Event?
        do {
            event = try parser.next()
        } catch {
            throw FuzzFinding("serialized response head is refused (\(error)): \(head)")
        }
        guard case .responseHead(let again)? = event else {
            throw FuzzFinding("serialized response head gave \(String(describing: event)): \(head)")
        }
        try FuzzFinding.check(
            again.status == head.status && again.headers == head.headers,
            "response head changed through the serializer: \(head) became \(again)")
    }
}
