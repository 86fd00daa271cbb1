import Testing

@testable import Tunnel

/// Everything a parser produced from one input, with adjacent body pieces merged so splits do not show.
struct HTTP1Transcript: Equatable, CustomStringConvertible {
    var events: [HTTP1Parser.Event] = []
    var error: HTTP1Error?
    var remaining: [UInt8] = []
    var keepAlive = true

    var body: [UInt8] {
        self.events.flatMap { event -> [UInt8] in
            if case .body(let bytes) = event { return bytes }
            return []
        }
    }

    var description: String {
        "events: \(self.events), error: \(String(describing: self.error)), remaining: \(self.remaining.count) bytes"
    }

    mutating func record(_ event: HTTP1Parser.Event) {
        if case .body(let more) = event, case .body(let bytes)? = self.events.last {
            self.events[self.events.count - 1] = .body(bytes + more)
        } else {
            self.events.append(event)
        }
    }
}

/// Helpers shared by the HTTP/1.1 suites.
enum HTTP1TestSupport {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Feeds `input` cut at `splits` (sorted offsets), drains events after every piece, then optionally finishes.
    static func transcript(
        _ kind: HTTP1Parser.Kind,
        _ input: [UInt8],
        splits: [Int] = [],
        finish: Bool = false,
        expecting methods: [String] = [],
        maxHeaderBytes: Int = 64 * 1024,
        maxHeaderCount: Int = 200
    ) -> HTTP1Transcript {
        var parser = HTTP1Parser(kind: kind, maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
        for method in methods { parser.expectResponse(toMethod: method) }
        var transcript = HTTP1Transcript()
        var start = 0
        do {
            for end in splits + [input.count] where end >= start {
                parser.feed(Array(input[start..<end]))
                start = end
                while let event = try parser.next() { transcript.record(event) }
            }
            if finish {
                var event = try parser.finish()
                while let current = event {
                    transcript.record(current)
                    event = try parser.next()
                }
            }
        } catch let error as HTTP1Error {
            transcript.error = error
        } catch {
            Issue.record("unexpected error type \(error)")
        }
        if parser.isSwitchingProtocols { transcript.remaining = parser.takeRemainingBytes() }
        transcript.keepAlive = parser.keepAlive
        return transcript
    }

    static func request(_ text: String, finish: Bool = false) -> HTTP1Transcript {
        self.transcript(.request, self.bytes(text), finish: finish)
    }

    static func response(_ text: String, to methods: [String] = [], finish: Bool = false) -> HTTP1Transcript {
        self.transcript(.response, self.bytes(text), finish: finish, expecting: methods)
    }

    static func requestHead(_ method: String, _ target: String, _ fields: [(String, String)] = [],
                            version: String = "HTTP/1.1") -> HTTP1Parser.Event {
        .requestHead(HTTPRequestHead(method: method, target: target, version: version,
                                     headers: HTTPHeaders(fields.map { (name: $0.0, value: $0.1) })))
    }

    static func responseHead(_ status: Int, _ reason: String, _ fields: [(String, String)] = [],
                             version: String = "HTTP/1.1") -> HTTP1Parser.Event {
        .responseHead(HTTPResponseHead(status: status, reason: reason, version: version,
                                       headers: HTTPHeaders(fields.map { (name: $0.0, value: $0.1) })))
    }

    static func body(_ text: String) -> HTTP1Parser.Event { .body(self.bytes(text)) }
}

@Suite struct HTTP1ParserTests {
    typealias T = HTTP1TestSupport

    // MARK: - Valid requests

    @Test func simpleGet() {
        let result = T.request("GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n")
        #expect(result.error == nil)
        #expect(result.events == [
            T.requestHead("GET", "/api/v1/pods?watch=1", [("Host", "example"), ("Accept", "*/*")]), .end,
        ])
        #expect(result.keepAlive)
    }

    @Test func fieldValuesAreTrimmedAndKeepCaseAndDuplicates() {
        let result = T.request("GET / HTTP/1.1\r\nX-A: \t a  b \t\r\nx-a:c\r\nEmpty:\r\nSpaces:   \r\n\r\n")
        #expect(result.events == [
            T.requestHead("GET", "/", [("X-A", "a  b"), ("x-a", "c"), ("Empty", ""), ("Spaces", "")]), .end,
        ])
    }

    @Test func nonASCIIValuesAreKeptWhenUTF8() {
        let result = T.request("GET / HTTP/1.1\r\nX-Name: Zoë ✓\r\n\r\n")
        #expect(result.events == [T.requestHead("GET", "/", [("X-Name", "Zoë ✓")]), .end])
    }

    @Test func pipelinedRequestsInOneFeed() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "DELETE /d HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        let result = T.request(input)
        #expect(result.error == nil)
        #expect(result.events == [
            T.requestHead("GET", "/a", [("Host", "h")]), .end,
            T.requestHead("POST", "/b", [("Content-Length", "5")]), T.body("hello"), .end,
            T.requestHead("PUT", "/c", [("Transfer-Encoding", "chunked")]), T.body("abc"), .end,
            T.requestHead("DELETE", "/d", [("Content-Length", "0")]), .end,
        ])
    }

    @Test func resultIsTheSameAtEverySplitPoint() {
        let input = T.bytes(
            "\r\nPOST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                + "4;name=value;quoted=\"a b\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                + "0\r\nExpires: never\r\n\r\n"
                + "GET /next HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                + "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{05}hello"
        )
        let whole = T.transcript(.request, input)
        #expect(whole.error == nil)
        #expect(whole.events.count == 6)
        #expect(whole.remaining == T.bytes("\u{81}\u{05}hello"))
        for split in 0...input.count {
            #expect(T.transcript(.request, input, splits: [split]) == whole, "split at \(split)")
        }
        #expect(T.transcript(.request, input, splits: Array(0...input.count)) == whole)
    }

    @Test func chunkedWithExtensionsAndTrailers() {
        let result = T.request(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;foo=bar\r\nhello\r\n6 ; baz\r\n world\r\n000A\r\n0123456789\r\na\r\nabcdefghij\r\n"
                + "0;last\r\nX-Checksum: abc\r\nX-Other:  1 \r\n\r\n"
        )
        #expect(result.error == nil)
        #expect(result.body == T.bytes("hello world0123456789abcdefghij"))
        #expect(result.events.last == .end)
        #expect(result.events.count == 3)
    }

    @Test func transferEncodingIsCaseInsensitiveAndMayListCodings() {
        let result = T.request(
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\nx\r\n0\r\n\r\n"
        )
        #expect(result.error == nil)
        #expect(result.body == [UInt8(ascii: "x")])
    }

    @Test func leadingEmptyLinesBeforeRequestAreSkipped() {
        let result = T.request("\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        #expect(result.events == [T.requestHead("GET", "/"), .end])
    }

    @Test func equalContentLengthsAreAccepted() {
        let result = T.request("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length: 003\r\n\r\nabc")
        #expect(result.error == nil)
        #expect(result.body == T.bytes("abc"))
    }

    @Test func requestWithoutLengthHasNoBody() throws {
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes("POST / HTTP/1.1\r\n\r\nGET"))
        #expect(try parser.next() == T.requestHead("POST", "/"))
        #expect(try parser.next() == .end)
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 3)
    }

    @Test func bodyArrivesAsItIsFed() throws {
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"))
        #expect(try parser.next() == T.requestHead("PUT", "/", [("Content-Length", "10")]))
        #expect(try parser.next() == T.body("abc"))
        #expect(try parser.next() == nil)
        parser.feed(T.bytes("defghij"))
        #expect(try parser.next() == T.body("defghij"))
        #expect(try parser.next() == .end)
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func rawBufferFeedIsEquivalent() throws {
        var parser = HTTP1Parser(kind: .request)
        T.bytes("GET / HTTP/1.1\r\n\r\n").withUnsafeBytes { parser.feed($0) }
        #expect(try parser.next() == T.requestHead("GET", "/"))
        #expect(try parser.next() == .end)
    }

    @Test func largeBodyInManyPieces() throws {
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes("POST / HTTP/1.1\r\nContent-Length: \(body.count)\r\n\r\n"))
        _ = try parser.next()
        var received: [UInt8] = []
        var offset = 0
        while offset < body.count {
            let end = min(offset + 7919, body.count)
            parser.feed(Array(body[offset..<end]))
            offset = end
            while let event = try parser.next() {
                if case .body(let bytes) = event { received += bytes } else { #expect(event == .end) }
            }
            #expect(parser.bufferedByteCount == 0)
        }
        #expect(received == body)
    }

    // MARK: - Upgrades

    @Test func websocketUpgradeStopsAfterHead() {
        let result = T.request(
            "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\n\r\n\u{81}\u{83}GET / HTTP/1.1\r\n\r\n"
        )
        #expect(result.error == nil)
        #expect(result.events.count == 1)
        #expect(result.remaining == T.bytes("\u{81}\u{83}GET / HTTP/1.1\r\n\r\n"))
        #expect(!result.keepAlive)
    }

    @Test func kubectlSPDYUpgradeWithPost() throws {
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes(
            "POST /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                + "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
        ))
        guard case .requestHead(let head) = try parser.next() else {
            Issue.record("no head")
            return
        }
        #expect(head.method == "POST")
        #expect(head.headers[first: "upgrade"] == "SPDY/3.1")
        #expect(parser.isSwitchingProtocols)
        #expect(try parser.next() == nil)
        parser.feed([0x80, 0x03, 0x00, 0x01])
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 4)
        #expect(parser.takeRemainingBytes() == [0x80, 0x03, 0x00, 0x01])
        #expect(try parser.finish() == nil)
    }

    @Test func upgradeWithoutConnectionTokenIsAnOrdinaryRequest() {
        let result = T.request("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        #expect(result.events == [
            T.requestHead("GET", "/", [("Upgrade", "websocket")]), .end, T.requestHead("GET", "/2"), .end,
        ])
    }

    @Test func upgradeInHTTP10IsIgnored() {
        let result = T.request("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(result.events.last == .end)
        #expect(result.remaining.isEmpty)
    }

    @Test func connectStopsAfterHead() {
        let result = T.request("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\u{16}\u{03}")
        #expect(result.events == [T.requestHead("CONNECT", "example.com:443", [("Host", "example.com:443")])])
        #expect(result.remaining == [0x16, 0x03])
    }

    @Test func switchingProtocolsResponseAndRemainingBytes() {
        let input = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{82}\u{01}x"
        let whole = T.response(input)
        #expect(whole.events == [
            T.responseHead(101, "Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade")]),
        ])
        #expect(whole.remaining == T.bytes("\u{82}\u{01}x"))
        for split in 0...input.utf8.count {
            #expect(T.transcript(.response, T.bytes(input), splits: [split]) == whole)
        }
    }

    @Test func connectResponseSwitches() {
        let result = T.response("HTTP/1.1 200 Connection Established\r\n\r\nrawbytes", to: ["CONNECT"])
        #expect(result.events == [T.responseHead(200, "Connection Established")])
        #expect(result.remaining == T.bytes("rawbytes"))
    }

    @Test func failedConnectResponseHasABody() {
        let result = T.response("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", to: ["CONNECT"])
        #expect(result.events == [T.responseHead(403, "Forbidden", [("Content-Length", "2")]), T.body("no"), .end])
    }

    // MARK: - Responses

    @Test func interimResponsesPrecedeTheFinalOne() {
        let result = T.response(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            to: ["POST"]
        )
        #expect(result.events == [
            T.responseHead(100, "Continue"), T.responseHead(103, "Early Hints", [("Link", "</a>")]),
            T.responseHead(200, "OK", [("Content-Length", "2")]), T.body("ok"), .end,
        ])
    }

    @Test func headResponseHasNoBody() {
        let result = T.response(
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            to: ["HEAD", "HEAD", "GET"]
        )
        #expect(result.error == nil)
        #expect(result.events == [
            T.responseHead(200, "OK", [("Content-Length", "1234")]), .end,
            T.responseHead(200, "OK", [("Transfer-Encoding", "chunked")]), .end,
            T.responseHead(200, "OK", [("Content-Length", "3")]), T.body("abc"), .end,
        ])
        #expect(result.keepAlive)
    }

    @Test func noContentAndNotModifiedHaveNoBody() {
        let result = T.response(
            "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(result.events == [
            T.responseHead(204, "No Content"), .end,
            T.responseHead(304, "Not Modified", [("Content-Length", "50"), ("ETag", "\"x\"")]), .end,
            T.responseHead(200, "OK", [("Content-Length", "0")]), .end,
        ])
    }

    @Test func closeDelimitedBodyEndsAtFinish() throws {
        var parser = HTTP1Parser(kind: .response)
        parser.feed(T.bytes("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of "))
        #expect(try parser.next() == T.responseHead(200, "OK", [("Content-Type", "text/plain")], version: "HTTP/1.0"))
        #expect(try parser.next() == T.body("all of "))
        #expect(try parser.next() == nil)
        #expect(!parser.keepAlive)
        parser.feed(T.bytes("this\r\n\r\nHTTP/1.1 200 OK\r\n"))
        #expect(try parser.next() == T.body("this\r\n\r\nHTTP/1.1 200 OK\r\n"))
        #expect(try parser.finish() == .end)
        #expect(try parser.next() == nil)
    }

    @Test func closeDelimitedFinishDrainsBufferedBytesFirst() throws {
        var parser = HTTP1Parser(kind: .response)
        parser.feed(T.bytes("HTTP/1.1 200 OK\r\n\r\nabc"))
        #expect(try parser.next() == T.responseHead(200, "OK"))
        #expect(try parser.finish() == T.body("abc"))
        #expect(try parser.next() == .end)
        #expect(try parser.next() == nil)
    }

    @Test func responseWithoutChunkedTransferCodingReadsUntilClose() {
        let result = T.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", finish: true)
        #expect(result.events == [T.responseHead(200, "OK", [("Transfer-Encoding", "gzip")]), T.body("zzz"), .end])
        #expect(!result.keepAlive)
    }

    @Test func statusLineForms() {
        #expect(T.response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").events == [
            T.responseHead(200, "", [("Content-Length", "0")]), .end,
        ])
        #expect(T.response("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n").events.first == T.responseHead(
            599, "", [("Content-Length", "0")]
        ))
        #expect(T.response("HTTP/1.1 404 Not  Found\tHere\r\nContent-Length: 0\r\n\r\n").events.first
            == T.responseHead(404, "Not  Found\tHere", [("Content-Length", "0")]))
        #expect(T.response("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n").events.first
            == T.responseHead(200, "OK", [("Content-Length", "0")], version: "HTTP/1.2"))
    }

    @Test func responsesFollowTheExpectedMethodsInOrder() throws {
        var parser = HTTP1Parser(kind: .response)
        parser.expectResponse(toMethod: "GET")
        parser.expectResponse(toMethod: "HEAD")
        parser.feed(T.bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"))
        parser.feed(T.bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"))
        var events: [HTTP1Parser.Event] = []
        while let event = try parser.next() { events.append(event) }
        #expect(events == [
            T.responseHead(200, "OK", [("Content-Length", "1")]), T.body("x"), .end,
            T.responseHead(200, "OK", [("Content-Length", "1")]), .end,
        ])
    }

    // MARK: - keepAlive

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n", false),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true),
    ])
    func keepAliveOfRequests(input: String, keepAlive: Bool) {
        let result = T.request(input)
        #expect(result.error == nil)
        #expect(result.keepAlive == keepAlive)
    }

    @Test func keepAliveFollowsTheLatestMessage() throws {
        var parser = HTTP1Parser(kind: .request)
        #expect(parser.keepAlive)
        parser.feed(T.bytes("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))
        _ = try parser.next()
        #expect(!parser.keepAlive)
        parser.feed(T.bytes("GET / HTTP/1.1\r\n\r\n"))
        while try parser.next() != nil {}
        #expect(parser.keepAlive)
    }

    @Test func keepAliveOfResponses() {
        #expect(T.response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(!T.response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").keepAlive)
        #expect(!T.response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(T.response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        #expect(!T.response("HTTP/1.1 200 OK\r\n\r\n").keepAlive)
    }

    // MARK: - End of input

    @Test func finishBetweenMessagesIsClean() throws {
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes("GET / HTTP/1.1\r\n\r\n\r\n"))
        #expect(try parser.next() != nil)
        #expect(try parser.next() == .end)
        #expect(try parser.next() == nil)
        #expect(try parser.finish() == nil)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost",
        "GET / HTTP/1.1\r\n",
        "G",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n",
    ])
    func finishInsideAMessageIsTruncation(input: String) {
        #expect(T.request(input, finish: true).error == .truncatedMessage)
    }

    @Test func truncatedResponseBody() {
        #expect(T.response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", finish: true).error == .truncatedMessage)
        #expect(T.response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", finish: true).body == T.bytes("abc"))
    }

    // MARK: - Malformed input

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP1Error.malformedHeader),
        ("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\n: x\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nBad(Name): x\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\u{7F}b\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", .bareCarriageReturn),
        ("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", .bareCarriageReturn),
        ("GET / HTTP/1.1\r\nHost: x\n\r\n", .bareLineFeed),
        ("GET / HTTP/1.1\nHost: x\n\n", .bareLineFeed),
        ("GET / HTTP/1.1\r\nX: a\nb\r\n\r\n", .bareLineFeed),
        ("\n", .bareLineFeed),
        ("GET / HTTP/2.0\r\n\r\n", .invalidVersion),
        ("GET / HTTP/0.9\r\n\r\n", .invalidVersion),
        ("GET / http/1.1\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.1x\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1\r\n\r\n", .invalidVersion),
        ("GET / \r\n\r\n", .invalidVersion),
        ("GET HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET  / HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET /a b HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET / HTTP/1.1 \r\n\r\n", .malformedStartLine),
        (" GET / HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("G@T / HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET /\u{1} HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET /\u{7F} HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET /é HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("GET\r\n\r\n", .malformedStartLine),
        ("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", .conflictingLengths),
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingLengths),
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingLengths),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", .conflictingLengths),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\u{1}\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rx", .malformedChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", .bareLineFeed),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n", .malformedHeader),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", .bareLineFeed),
    ])
    func malformedRequest(input: String, error: HTTP1Error) {
        let result = T.request(input, finish: true)
        #expect(result.error == error, "\(input.debugDescription)")
        for split in 0...input.utf8.count {
            #expect(T.transcript(.request, T.bytes(input), splits: [split], finish: true) == result)
        }
    }

    @Test(arguments: [
        ("HTTP/2.0 200 OK\r\n\r\n", HTTP1Error.invalidVersion),
        ("HTTP/2 200 OK\r\n\r\n", .invalidVersion),
        ("HTTP/1.1\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1 20 OK\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1 2000 OK\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1 abc OK\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1 099 Low\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1  200 OK\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1 200 O\u{1}K\r\n\r\n", .malformedStartLine),
        ("\r\nHTTP/1.1 200 OK\r\n\r\n", .malformedStartLine),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .conflictingLengths),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingLengths),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", .invalidContentLength),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", .malformedChunk),
    ])
    func malformedResponse(input: String, error: HTTP1Error) {
        #expect(T.response(input).error == error, "\(input.debugDescription)")
    }

    @Test func headerTooLargeFailsBeforeTheHeadIsComplete() throws {
        var parser = HTTP1Parser(kind: .request, maxHeaderBytes: 1024)
        parser.feed(T.bytes("GET / HTTP/1.1\r\nX-Big: "))
        #expect(try parser.next() == nil)
        parser.feed([UInt8](repeating: UInt8(ascii: "a"), count: 1000))
        #expect(try parser.next() == nil)
        parser.feed([UInt8](repeating: UInt8(ascii: "a"), count: 100))
        #expect(throws: HTTP1Error.headerTooLarge(limit: 1024)) { try parser.next() }
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func headerLimitCountsUpToTheBlankLine() {
        let head = "GET / HTTP/1.1\r\nX: "
        let exact = head + String(repeating: "v", count: 100 - head.utf8.count - 4) + "\r\n\r\n"
        #expect(exact.utf8.count == 100)
        #expect(T.transcript(.request, T.bytes(exact), maxHeaderBytes: 100).error == nil)
        #expect(T.transcript(.request, T.bytes(exact), maxHeaderBytes: 99).error == .headerTooLarge(limit: 99))
        let manyLines = "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 20) + "\r\n"
        #expect(T.transcript(.request, T.bytes(manyLines), maxHeaderBytes: 100).error == .headerTooLarge(limit: 100))
    }

    @Test func oversizedHeaderIsRejectedWithoutUnboundedBuffering() throws {
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes("GET / HTTP/1.1\r\n"))
        let line = T.bytes("X-Filler: " + String(repeating: "z", count: 1000) + "\r\n")
        var fed = 0
        var failure: Error?
        while failure == nil && fed < 10_000_000 {
            parser.feed(line)
            fed += line.count
            do { _ = try parser.next() } catch { failure = error }
        }
        #expect(failure as? HTTP1Error == .headerTooLarge(limit: 64 * 1024))
        #expect(fed < 64 * 1024 + 2 * line.count)
    }

    @Test func tooManyHeaders() {
        let fields = (0..<201).map { "X-\($0): v\r\n" }
        let exact = "GET / HTTP/1.1\r\n" + fields.prefix(200).joined() + "\r\n"
        let over = "GET / HTTP/1.1\r\n" + fields.joined() + "\r\n"
        #expect(T.request(exact).error == nil)
        #expect(T.request(over).error == .tooManyHeaders)
        #expect(T.transcript(.request, T.bytes("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"), maxHeaderCount: 1).error
            == .tooManyHeaders)
    }

    @Test func trailerLimits() {
        let trailers = String(repeating: "T: x\r\n", count: 10)
        let input = T.bytes("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers + "\r\n")
        #expect(T.transcript(.request, input, maxHeaderCount: 10).error == nil)
        #expect(T.transcript(.request, input, maxHeaderCount: 9).error == .tooManyHeaders)
        #expect(T.transcript(.request, input, maxHeaderBytes: 62).error == nil)
        #expect(T.transcript(.request, input, maxHeaderBytes: 61).error == .headerTooLarge(limit: 61))
    }

    @Test func chunkExtensionsCannotGrowWithoutBound() {
        let input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 5000)
        #expect(T.request(input).error == .malformedChunk)
    }

    @Test func deadParserRethrowsAndIgnoresInput() {
        var parser = HTTP1Parser(kind: .request)
        parser.feed(T.bytes("GET / HTTP/3\r\n\r\n"))
        #expect(throws: HTTP1Error.invalidVersion) { try parser.next() }
        parser.feed(T.bytes("GET / HTTP/1.1\r\n\r\n"))
        #expect(parser.bufferedByteCount == 0)
        #expect(throws: HTTP1Error.invalidVersion) { try parser.next() }
        #expect(throws: HTTP1Error.invalidVersion) { try parser.finish() }
    }

    @Test func errorsDescribeThemselves() {
        let errors: [HTTP1Error] = [
            .malformedStartLine, .malformedHeader, .headerTooLarge(limit: 10), .tooManyHeaders, .invalidContentLength,
            .conflictingLengths, .unsupportedTransferEncoding, .malformedChunk, .invalidVersion, .bareLineFeed,
            .bareCarriageReturn, .truncatedMessage,
        ]
        #expect(Set(errors.map(\.description)).count == errors.count)
        #expect(HTTP1Error.headerTooLarge(limit: 10).description.contains("10"))
    }

    @Test func headerScanningIsLinearWhenFedByteByByte() throws {
        let head = T.bytes("GET / HTTP/1.1\r\nX-Long: " + String(repeating: "q", count: 60_000) + "\r\n\r\n")
        var parser = HTTP1Parser(kind: .request)
        var events = 0
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for byte in head {
                parser.feed([byte])
                while try parser.next() != nil { events += 1 }
            }
        }
        #expect(events == 2)
        #expect(elapsed < .seconds(5))
    }
}

@Suite struct HTTPHeaderTokenTests {
    @Test func tokensAreSplitTrimmedLowercasedAcrossFields() {
        let headers = HTTPHeaders([("Connection", " Keep-Alive ,\tUpgrade,, "), ("Upgrade", "x"),
                                   ("connection", "X-Hop")])
        #expect(headers.tokens("CONNECTION") == ["keep-alive", "upgrade", "x-hop"])
        #expect(headers.tokens("Absent").isEmpty)
        #expect(HTTPHeaders([("Connection", "")]).tokens("Connection").isEmpty)
    }

    @Test(arguments: [("  Bearer abc \t", "Bearer abc"), ("\t\t", ""), ("", ""), ("x", "x"), (" é ", "é"),
                      ("a\u{A0}", "a\u{A0}")])
    func optionalWhitespaceIsTrimmedOnlyAtTheEnds(input: String, trimmed: String) {
        #expect(input.trimmingOptionalWhitespace() == trimmed)
        #expect(input[...].trimmingOptionalWhitespace() == trimmed)
    }
}

@Suite struct ForwardableHeaderTests {
    @Test func endToEndHeadersPassLowercasedInOrder() {
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("X-Custom", "a"), ("x-custom", "b"),
                                   ("ETag", "\"1\"")])
        #expect(HeaderRules.fields(of: headers, where: HeaderRules.controllerForwards).map { "\($0.name)=\($0.value)" }
                    == ["content-type=application/json", "x-custom=a", "x-custom=b", "etag=\"1\""])
    }

    /// The rule as a table: each name's kind, and whether the controller (user → tunnel), the agent
    /// (tunnel → backend) and the response path pass it on.
    @Test(arguments: [
        ("content-type", HeaderRules.Kind.endToEnd, true, true, true),
        ("x-kept", .endToEnd, true, true, true),
        ("connection", .hopByHop, false, false, false), ("keep-alive", .hopByHop, false, false, false),
        ("proxy-connection", .hopByHop, false, false, false), ("te", .hopByHop, false, false, false),
        ("trailer", .hopByHop, false, false, false), ("transfer-encoding", .hopByHop, false, false, false),
        ("upgrade", .hopByHop, false, false, false), ("proxy-authenticate", .hopByHop, false, false, false),
        ("http2-settings", .hopByHop, false, false, false),
        ("authorization", .credential, false, false, false), ("proxy-authorization", .credential, false, false, false),
        ("cookie", .credential, false, false, false), ("impersonate-user", .credential, false, false, false),
        ("impersonate-extra-scopes", .credential, false, false, false),
        ("x-forwarded-client-cert", .credential, false, false, false),
        ("x-porthole-id-token", .credential, false, false, false), ("x-id-token", .credential, false, false, false),
        ("x-forwarded-access-token", .credential, false, false, false),
        ("x-remote-user", .identityClaim, false, false, false), ("x-remote-group", .identityClaim, false, false, false),
        ("x-remote-extra-team", .identityClaim, false, false, false),
        ("x-forwarded-user", .identityClaim, false, false, false),
        ("x-forwarded-groups", .identityClaim, false, false, false),
        ("x-auth-request-user", .identityClaim, false, false, false),
        ("x-pomerium-jwt-assertion", .identityClaim, false, false, false),
        ("remote-user", .identityClaim, false, false, false), ("x-original-url", .identityClaim, false, false, false),
        ("x-rewrite-url", .identityClaim, false, false, false),
        ("impersonate_user", .identityClaim, false, false, false), ("any_underscored", .identityClaim, false, false, false),
        ("forwarded", .forwardingClaim, false, true, true), ("x-forwarded-for", .forwardingClaim, false, true, true),
        ("x-real-ip", .forwardingClaim, false, true, true), ("x-forwarded-proto", .forwardingClaim, false, true, true),
        ("porthole-user", .tunnel, false, false, false), ("porthole-service", .tunnel, false, false, false),
        ("host", .host, false, false, false), (":path", .pseudo, false, false, false),
        // Near misses stay end to end.
        ("connections", .endToEnd, true, true, true), ("hostname", .endToEnd, true, true, true),
        ("x-remote", .endToEnd, true, true, true), ("cookies", .endToEnd, true, true, true),
        ("authorization2", .endToEnd, true, true, true), ("impersonate", .endToEnd, true, true, true),
        ("portholes", .endToEnd, true, true, true), ("te2", .endToEnd, true, true, true),
        ("x-forwarded", .endToEnd, true, true, true), ("remote-users", .endToEnd, true, true, true),
        ("x-auth-request", .endToEnd, true, true, true), ("x-forwarded-fort", .endToEnd, true, true, true),
    ] as [(String, HeaderRules.Kind, Bool, Bool, Bool)])
    func headerRule(name: String, kind: HeaderRules.Kind, controller: Bool, agent: Bool, response: Bool) {
        #expect(HeaderRules.kind(of: name) == kind)
        #expect(HeaderRules.controllerForwards(name) == controller)
        #expect(HeaderRules.agentForwards(name) == agent)
        #expect(HeaderRules.responseForwards(name) == response)
    }

    @Test func headersNamedInConnectionAreDroppedToo() {
        let headers = HTTPHeaders([("Connection", "close, X-Named-By-Connection"), ("X-Named-By-Connection", "v"),
                                   ("X-Kept", "yes")])
        #expect(HeaderRules.fields(of: headers, where: HeaderRules.controllerForwards).map(\.name) == ["x-kept"])
    }

    @Test func asciiHelpers() {
        #expect("Content-TYPE".asciiLowercased() == "content-type")
        #expect("already-lower".asciiLowercased() == "already-lower")
        #expect("ÄBC".asciiLowercased() == "Äbc", "only ASCII letters change")
        #expect("porthole-user".hasASCIIPrefix("porthole-") && !"porthole".hasASCIIPrefix("porthole-"))
        #expect(":path".hasASCIIPrefix(":") && !"".hasASCIIPrefix(":"))
        #expect("Content-Length".caseInsensitiveEquals("content-length") && !"a".caseInsensitiveEquals("ab"))
    }
}
