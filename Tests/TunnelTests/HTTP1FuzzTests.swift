import Testing

@testable import Tunnel

/// SplitMix64: a small seeded generator, so a failing iteration can be replayed from its seed.
struct HTTP1FuzzRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Randomized properties: results do not depend on how the input is split, and no input crashes the parser.
@Suite struct HTTP1FuzzTests {
    typealias T = HTTP1TestSupport

    static let requests: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /api/v1/pods?watch=1&rv=10 HTTP/1.1\r\nHost: k8s\r\nAccept: application/json\r\n"
            + "User-Agent: kubectl\r\n\r\n",
        "POST /submit HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
        "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n",
        "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "\r\nDELETE /thing HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "GET /chat HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x==\r\n\r\n\u{81}\u{0}",
        "POST /exec HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
        "PATCH /p HTTP/1.1\r\nContent-Length: 3, 3\r\nX-Obs: caf\u{E9}\r\n\r\nabc",
    ]

    static let responses: [(text: String, method: String)] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", "GET"),
        ("HTTP/1.1 204 No Content\r\nDate: today\r\n\r\n", "DELETE"),
        ("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 99\r\n\r\n", "GET"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD"),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "POST"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nConnection: Upgrade\r\n\r\n\u{80}\u{3}", "POST"),
        ("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end", "GET"),
        ("HTTP/1.1 502\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "GET"),
    ]

    /// Bytes that tend to reach interesting states when inserted.
    static let interestingBytes: [UInt8] = Array("\r\n :;,\t0123456789abcdefABCDEF\"\u{0}\u{7F}".utf8) + [0x80, 0xFF]

    /// One to three corpus messages back to back, then zero to five mutations.
    static func makeInput(
        _ random: inout HTTP1FuzzRandom
    ) -> (kind: HTTP1Parser.Kind, input: [UInt8], methods: [String]) {
        let kind: HTTP1Parser.Kind = Bool.random(using: &random) ? .request : .response
        var input: [UInt8] = []
        var methods: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch kind {
            case .request:
                input += T.bytes(Self.requests.randomElement(using: &random)!)
            case .response:
                let response = Self.responses.randomElement(using: &random)!
                input += T.bytes(response.text)
                methods.append(response.method)
            }
        }
        for _ in 0..<Int.random(in: 0...5, using: &random) {
            Self.mutate(&input, &random)
        }
        return (kind, input, methods)
    }

    static func mutate(_ input: inout [UInt8], _ random: inout HTTP1FuzzRandom) {
        guard !input.isEmpty else {
            input.append(UInt8.random(in: 0...255, using: &random))
            return
        }
        let index = Int.random(in: 0..<input.count, using: &random)
        switch Int.random(in: 0..<7, using: &random) {
        case 0: input[index] = UInt8.random(in: 0...255, using: &random)
        case 1: input[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
        case 2: input.insert(Self.interestingBytes.randomElement(using: &random)!, at: index)
        case 3: input.remove(at: index)
        case 4:
            let end = min(input.count, index + Int.random(in: 1...16, using: &random))
            input.insert(contentsOf: input[index..<end], at: index)
        case 5:
            let end = min(input.count, index + Int.random(in: 1...32, using: &random))
            input.removeSubrange(index..<end)
        default: input[index] = Self.interestingBytes.randomElement(using: &random)!
        }
    }

    static func randomSplits(count: Int, _ random: inout HTTP1FuzzRandom) -> [Int] {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return Array(0...count)
        case 1: return count == 0 ? [] : [Int.random(in: 0...count, using: &random)]
        default:
            let pieces = Int.random(in: 1...12, using: &random)
            return (0..<pieces).map { _ in Int.random(in: 0...count, using: &random) }.sorted()
        }
    }

    @Test func corpusParsesCleanlyAtRandomSplits() {
        var random = HTTP1FuzzRandom(seed: 0x5EED_0001)
        for text in Self.requests {
            let input = T.bytes(text)
            let whole = T.transcript(.request, input, finish: true)
            #expect(whole.error == nil, "\(text.debugDescription)")
            #expect(!whole.events.isEmpty)
            for _ in 0..<20 {
                #expect(T.transcript(.request, input, splits: Self.randomSplits(count: input.count, &random),
                                     finish: true) == whole)
            }
        }
        for response in Self.responses {
            let input = T.bytes(response.text)
            let whole = T.transcript(.response, input, finish: true, expecting: [response.method])
            #expect(whole.error == nil, "\(response.text.debugDescription)")
            for _ in 0..<20 {
                let splits = Self.randomSplits(count: input.count, &random)
                #expect(T.transcript(.response, input, splits: splits, finish: true, expecting: [response.method])
                    == whole)
            }
        }
    }

    @Test(arguments: [(UInt64(1), 64 * 1024, 200), (2, 48, 3), (3, 128, 2)])
    func mutatedInputsAreSplitIndependent(seed: UInt64, maxHeaderBytes: Int, maxHeaderCount: Int) {
        var random = HTTP1FuzzRandom(seed: seed)
        let clock = ContinuousClock()
        let started = clock.now
        var failures = 0
        var iterations = 0
        while iterations < 2000 && clock.now - started < .seconds(60) {
            iterations += 1
            let (kind, input, methods) = Self.makeInput(&random)
            let finish = Bool.random(using: &random)
            let whole = T.transcript(kind, input, finish: finish, expecting: methods,
                                     maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
            for _ in 0..<2 {
                let splits = Self.randomSplits(count: input.count, &random)
                let split = T.transcript(kind, input, splits: splits, finish: finish, expecting: methods,
                                         maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
                if split != whole && failures < 5 {
                    failures += 1
                    Issue.record("""
                        iteration \(iterations): \(kind) \(String(decoding: input, as: UTF8.self).debugDescription)
                        splits \(splits)
                        whole: \(whole)
                        split: \(split)
                        """)
                }
            }
        }
        #expect(failures == 0)
        #expect(iterations >= 500)
    }

    @Test func randomBytesNeverCrash() {
        var random = HTTP1FuzzRandom(seed: 0xBAD_B17E5)
        for iteration in 0..<2000 {
            let length = Int.random(in: 0...200, using: &random)
            var input = (0..<length).map { _ in
                Bool.random(using: &random) ? Self.interestingBytes.randomElement(using: &random)!
                    : UInt8.random(in: 0...255, using: &random)
            }
            if iteration % 2 == 0 {
                input = T.bytes(iteration % 4 == 0 ? "GET / HTTP/1.1\r\n" : "HTTP/1.1 200 OK\r\n") + input
            }
            let kind: HTTP1Parser.Kind = iteration % 4 == 0 ? .request : .response
            let whole = T.transcript(kind, input, finish: true)
            let bytewise = T.transcript(kind, input, splits: Array(0...input.count), finish: true)
            #expect(whole == bytewise)
        }
    }

    @Test func chunkedRoundTripsAtRandomSizesAndSplits() {
        var random = HTTP1FuzzRandom(seed: 42)
        for _ in 0..<300 {
            var body: [UInt8] = []
            var wire = HTTP1Serializer.requestHead(HTTPRequestHead(
                method: "POST", target: "/", headers: HTTPHeaders([("Transfer-Encoding", "chunked")])
            ))
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                let piece = (0..<Int.random(in: 0...600, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
                body += piece
                wire += HTTP1Serializer.chunk(piece)
            }
            wire += HTTP1Serializer.lastChunk
            let splits = Self.randomSplits(count: wire.count, &random)
            let result = T.transcript(.request, wire, splits: splits, finish: true)
            #expect(result.error == nil)
            #expect(result.body == body)
            #expect(result.events.last == .end)
        }
    }
}
