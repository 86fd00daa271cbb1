import Testing
@testable import Tunnel

/// Requests a hostile user might send, and what Porthole makes of them before anything reaches a backend.
@Suite struct HostileInputTests {
    typealias T = HTTP1TestSupport

    // MARK: HTTP/1.1 framing

    @Test func repeatedEqualContentLengthsBecomeOneFieldAndTheBodyIsKept() {
        for head in ["Content-Length: 5, 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n"] {
            let result = T.request("POST / HTTP/1.1\r\nHost: h\r\n\(head)\r\nhello")
            #expect(result.error == nil)
            #expect(result.events.first == T.requestHead("POST", "/", [("Host", "h"), ("Content-Length", "5")]))
            #expect(result.body == Array("hello".utf8))
        }
        #expect(T.request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello").error
            == .conflictingLengths)
    }

    @Test func requestVersionsOtherThanHTTP10And11AreRefused() {
        #expect(T.request("GET / HTTP/1.2\r\nHost: h\r\n\r\n").error == .invalidVersion)
        #expect(T.request("GET / HTTP/1.9\r\nHost: h\r\n\r\n").error == .invalidVersion)
        #expect(T.request("GET / HTTP/1.0\r\n\r\n").error == nil)
    }

    // MARK: Request targets

    @Test(arguments: [
        ("/", "GET", nil), ("/api/v1/pods?watch=1", "GET", nil), ("/a/b.c/..d/...", "GET", nil),
        ("/a?x=/../y", "GET", nil), ("/files/.well-known", "GET", nil), ("*", "OPTIONS", nil),
        ("*", "GET", RequestTarget.Refusal.notOriginForm), ("-admin/x", "GET", .notOriginForm),
        ("http://evil/x", "GET", .notOriginForm), ("evil:443", "GET", .notOriginForm), ("", "GET", .notOriginForm),
        ("/../small", "GET", .dotSegment), ("/a/./b", "GET", .dotSegment), ("/a/..", "GET", .dotSegment),
        ("/a/.", "GET", .dotSegment), ("/%2e%2e/x", "GET", .dotSegment), ("/%2E./x", "GET", .dotSegment),
        ("/a/..%2fb", "GET", .dotSegment), ("/a/..%5Cb", "GET", .dotSegment), ("/a\\..\\b", "GET", .dotSegment),
        ("/..?q", "GET", .dotSegment), ("/a/..#f", "GET", .dotSegment),
    ] as [(String, String, RequestTarget.Refusal?)])
    func requestTargets(target: String, method: String, expected: RequestTarget.Refusal?) {
        #expect(RequestTarget.check(target, method: method) == expected)
    }

    @Test func targetsJoinTheBasePathOnASlashBoundary() {
        #expect(RequestTarget.join(basePath: "/base", target: "/x?y=1", method: "GET") == "/base/x?y=1")
        #expect(RequestTarget.join(basePath: "/base/", target: "/x", method: "GET") == "/base/x")
        #expect(RequestTarget.join(basePath: "", target: "/x", method: "GET") == "/x")
        #expect(RequestTarget.join(basePath: "", target: "*", method: "OPTIONS") == "*")
        #expect(RequestTarget.join(basePath: "/base", target: "*", method: "OPTIONS") == nil)
        #expect(RequestTarget.join(basePath: "/base", target: "-admin/x", method: "GET") == nil)
        #expect(RequestTarget.join(basePath: "/base", target: "/../small", method: "GET") == nil)
    }

    // MARK: The tunnel protocol

    @Test func onlyTheControllersOwnHelloIsAHello() {
        let hello = [HTTPField(":method", "GET"), HTTPField(":path", TunnelProtocol.helloPath)]
        #expect(TunnelProtocol.isHello(hello))
        #expect(!TunnelProtocol.isHello(hello + [HTTPField(TunnelProtocol.serviceHeader, "http/web")]))
        #expect(!TunnelProtocol.isHello([HTTPField(":path", "/.porthole/v1/hello?x")]))
    }

    @Test func theControllerSetsItsOwnForwardingHeaders() {
        #expect(TunnelProtocol.forwardingHeaders(peerHost: "192.0.2.7") == [
            HTTPField("x-forwarded-for", "192.0.2.7"), HTTPField("x-forwarded-proto", "https"),
            HTTPField("forwarded", "for=192.0.2.7;proto=https"),
        ])
        #expect(TunnelProtocol.forwardingHeaders(peerHost: "::1").last == HTTPField("forwarded", "for=\"[::1]\";proto=https"))
    }

    // MARK: Per-user budgets

    @Test func bucketsRefuseAfterTheBurstAndRefillOverTime() {
        let now = ManualClock()
        let buckets = KeyedTokenBuckets(burst: 3, perSecond: 2, clock: { now.seconds })
        #expect(buckets.wait(for: "alice") == nil)
        for _ in 0..<3 { buckets.charge("alice") }
        #expect(buckets.wait(for: "alice") == 1)
        #expect(buckets.wait(for: "bob") == nil)
        now.seconds += 0.5
        #expect(buckets.wait(for: "alice") == nil)
        for _ in 0..<5 { buckets.charge("alice") }
        #expect(buckets.wait(for: "alice") == 3)
        now.seconds += 100
        #expect(buckets.wait(for: "alice") == nil)
        #expect(buckets.trackedKeyCount == 0)
    }

    @Test func bucketsForgetTheFullestWhenThereAreTooManyKeys() {
        let now = ManualClock()
        let buckets = KeyedTokenBuckets(burst: 10, perSecond: 1, maxKeys: 100, clock: { now.seconds })
        for index in 0..<1000 { buckets.charge("user-\(index)") }
        #expect(buckets.trackedKeyCount <= 100)
        let off = KeyedTokenBuckets(burst: 0, perSecond: 1)
        for _ in 0..<10 { off.charge("x") }
        #expect(off.wait(for: "x") == nil)
    }
}

/// A clock a test moves by hand.
final class ManualClock: @unchecked Sendable {
    var seconds: Double = 1000
}
