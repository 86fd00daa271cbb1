import Testing

@testable import Tunnel

@Suite struct HTTP1SerializerTests {
    typealias T = HTTP1TestSupport

    @Test func requestHeadBytes() {
        let head = HTTPRequestHead(
            method: "POST",
            target: "/api/v1/pods?watch=1",
            headers: HTTPHeaders([("Host", "example"), ("X-Dup", "a"), ("X-Dup", "b"), ("Empty", "")])
        )
        #expect(HTTP1Serializer.requestHead(head) == T.bytes(
            "POST /api/v1/pods?watch=1 HTTP/1.1\r\nHost: example\r\nX-Dup: a\r\nX-Dup: b\r\nEmpty: \r\n\r\n"
        ))
    }

    @Test func startLineAlwaysSaysHTTP11() {
        let request = HTTPRequestHead(method: "GET", target: "/", version: "HTTP/2")
        #expect(HTTP1Serializer.requestHead(request) == T.bytes("GET / HTTP/1.1\r\n\r\n"))
        let response = HTTPResponseHead(status: 200, reason: "OK", version: "HTTP/1.0")
        #expect(HTTP1Serializer.responseHead(response) == T.bytes("HTTP/1.1 200 OK\r\n\r\n"))
    }

    @Test func responseHeadBytes() {
        let head = HTTPResponseHead(status: 404, reason: "Nope", headers: HTTPHeaders([("Content-Length", "0")]))
        #expect(HTTP1Serializer.responseHead(head) == T.bytes("HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n"))
    }

    @Test func emptyReasonComesFromTheTable() {
        #expect(HTTP1Serializer.responseHead(HTTPResponseHead(status: 101)) == T.bytes(
            "HTTP/1.1 101 Switching Protocols\r\n\r\n"
        ))
        #expect(HTTP1Serializer.responseHead(HTTPResponseHead(status: 503)) == T.bytes(
            "HTTP/1.1 503 Service Unavailable\r\n\r\n"
        ))
        #expect(HTTP1Serializer.responseHead(HTTPResponseHead(status: 599)) == T.bytes("HTTP/1.1 599 \r\n\r\n"))
    }

    @Test func reasonPhrases() {
        #expect(HTTP1Serializer.reasonPhrase(for: 200) == "OK")
        #expect(HTTP1Serializer.reasonPhrase(for: 204) == "No Content")
        #expect(HTTP1Serializer.reasonPhrase(for: 400) == "Bad Request")
        #expect(HTTP1Serializer.reasonPhrase(for: 401) == "Unauthorized")
        #expect(HTTP1Serializer.reasonPhrase(for: 403) == "Forbidden")
        #expect(HTTP1Serializer.reasonPhrase(for: 404) == "Not Found")
        #expect(HTTP1Serializer.reasonPhrase(for: 431) == "Request Header Fields Too Large")
        #expect(HTTP1Serializer.reasonPhrase(for: 502) == "Bad Gateway")
        #expect(HTTP1Serializer.reasonPhrase(for: 799) == "")
    }

    @Test func fieldsThatWouldSplitTheMessageAreLeftOut() {
        let head = HTTPResponseHead(status: 200, reason: "OK\r\nX-Injected: 1", headers: HTTPHeaders([
            ("X-Ok", "fine"), ("X-Bad", "a\r\nSet-Cookie: evil"), ("X-Nul", "a\u{0}b"), ("Bad Name", "v"),
            ("", "v"), ("X-Lf", "a\nb"), ("X-Tab", "a\tb"),
        ]))
        #expect(HTTP1Serializer.responseHead(head) == T.bytes("HTTP/1.1 200 OK\r\nX-Ok: fine\r\nX-Tab: a\tb\r\n\r\n"))
    }

    @Test func chunks() {
        #expect(HTTP1Serializer.chunk([]) == [])
        [UInt8]().withUnsafeBytes { #expect(HTTP1Serializer.chunk($0) == []) }
        #expect(HTTP1Serializer.chunk(T.bytes("hello")) == T.bytes("5\r\nhello\r\n"))
        let big = [UInt8](repeating: 7, count: 300)
        #expect(HTTP1Serializer.chunk(big) == T.bytes("12c\r\n") + big + T.bytes("\r\n"))
        big.withUnsafeBytes { #expect(HTTP1Serializer.chunk($0) == T.bytes("12c\r\n") + big + T.bytes("\r\n")) }
        #expect(HTTP1Serializer.lastChunk == T.bytes("0\r\n\r\n"))
    }

    @Test func serializedMessagesParseBack() throws {
        let request = HTTPRequestHead(
            method: "PUT",
            target: "/v1/object?x=1&y=%20",
            headers: HTTPHeaders([("Host", "h"), ("Transfer-Encoding", "chunked"), ("X-Name", "Zoë")])
        )
        let pieces: [[UInt8]] = [T.bytes("first "), [], [UInt8](repeating: 0, count: 4097), T.bytes("last")]
        var wire = HTTP1Serializer.requestHead(request)
        for piece in pieces { wire += HTTP1Serializer.chunk(piece) }
        wire += HTTP1Serializer.lastChunk
        let result = T.transcript(.request, wire)
        #expect(result.error == nil)
        #expect(result.events == [.requestHead(request), .body(pieces.flatMap { $0 }), .end])

        let response = HTTPResponseHead(status: 201, headers: HTTPHeaders([("Content-Length", "2")]))
        let parsed = T.transcript(.response, HTTP1Serializer.responseHead(response) + T.bytes("ok"))
        var expected = response
        expected.reason = "Created"
        #expect(parsed.events == [.responseHead(expected), T.body("ok"), .end])
    }
}
