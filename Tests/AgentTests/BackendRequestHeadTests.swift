import Testing

@testable import Agent
@testable import Tunnel

@Suite struct BackendRequestHeadTests {
    private func head(
        _ fields: [HTTPField], endStream: Bool = true, port: UInt16 = 8080, basePath: String = "/api",
        impersonate: Bool = false, credentials: [(String, String)] = []
    ) -> BackendRequestHead {
        BackendRequestHead(tunnelFields: fields, endStream: endStream, host: "backend.local", port: port,
                           basePath: basePath, impersonate: impersonate, credentials: credentials)
    }

    private func text(_ head: BackendRequestHead) -> String { String(decoding: head.bytes, as: UTF8.self) }

    @Test func aRequestIsRewrittenForTheBackend() {
        let head = self.head([
            HTTPField(":method", "GET"), HTTPField(":scheme", "https"), HTTPField(":authority", "controller:8443"),
            HTTPField(":path", "/v1/items?limit=2"), HTTPField("host", "controller:8443"),
            HTTPField("accept", "application/json"), HTTPField("x-forwarded-for", "10.0.0.9"),
            HTTPField(TunnelProtocol.serviceHeader, "jenkins/ci"), HTTPField(TunnelProtocol.requestIDHeader, "r-1"),
            HTTPField(TunnelProtocol.userHeader, "alice"), HTTPField("connection", "keep-alive"),
            HTTPField("te", "trailers"), HTTPField("authorization", "Bearer user-token"),
            HTTPField("impersonate-user", "root"), HTTPField("x-forwarded-user", "mallory"),
        ], credentials: [("Authorization", "Bearer service-token")])
        #expect(head.method == "GET")
        #expect(head.target == "/api/v1/items?limit=2")
        #expect(head.requestID == "r-1")
        #expect(head.upgrade == nil)
        #expect(!head.isChunked)
        #expect(self.text(head) == "GET /api/v1/items?limit=2 HTTP/1.1\r\n"
            + "accept: application/json\r\nx-forwarded-for: 10.0.0.9\r\nHost: backend.local:8080\r\n"
            + "Authorization: Bearer service-token\r\n\r\n")
    }

    @Test(arguments: [(UInt16(80), "backend.local"), (443, "backend.local"), (8443, "backend.local:8443")])
    func hostNamesThePortOnlyWhenItIsNotTheSchemesOwn(port: UInt16, host: String) {
        let head = self.head([HTTPField(":method", "GET"), HTTPField(":path", "/")], port: port)
        #expect(head.headers.first { $0.name == "Host" }?.value == host)
    }

    @Test func aBodyWithoutALengthIsChunked() {
        let post = [HTTPField(":method", "POST"), HTTPField(":path", "/upload")]
        #expect(self.head(post, endStream: false).isChunked)
        #expect(self.head(post, endStream: false).headers.tokens("transfer-encoding") == ["chunked"])
        #expect(!self.head(post + [HTTPField("content-length", "5")], endStream: false).isChunked)
        #expect(!self.head(post, endStream: true).isChunked)
        // A user's own framing never reaches the backend: the agent frames the body itself.
        let userChunked = self.head(post + [HTTPField("transfer-encoding", "chunked")], endStream: false)
        #expect(userChunked.headers.tokens("transfer-encoding") == ["chunked"])
    }

    @Test func anUpgradeIsAskedForAgainAndNeverChunked() {
        let head = self.head([
            HTTPField(":method", "GET"), HTTPField(":path", "/ws"),
            HTTPField(TunnelProtocol.upgradeHeader, "websocket"),
            HTTPField("sec-websocket-key", "abc"), HTTPField("upgrade", "h2c"),
        ], endStream: false)
        #expect(head.upgrade == "websocket")
        #expect(!head.isChunked)
        #expect(head.target == "/api/ws")
        #expect(head.headers.tokens("connection") == ["upgrade"])
        #expect(head.headers.tokens("upgrade") == ["websocket"])
        #expect(head.headers.contains(name: "sec-websocket-key"))
    }

    @Test func theControllersIdentityBecomesImpersonationOnlyWhenTheServiceAsks() {
        let fields = [
            HTTPField(":method", "GET"), HTTPField(":path", "/api/v1/pods"),
            HTTPField(TunnelProtocol.identityUserHeader, "alice@example.com"),
            HTTPField(TunnelProtocol.identityGroupHeader, "dev"), HTTPField(TunnelProtocol.identityGroupHeader, "ops"),
            HTTPField("impersonate-user", "root"),
        ]
        let impersonating = self.head(fields, impersonate: true, credentials: [("Authorization", "Bearer sa")])
        #expect(self.text(impersonating).hasSuffix("Host: backend.local:8080\r\n"
            + "Impersonate-User: alice@example.com\r\nImpersonate-Group: dev\r\nImpersonate-Group: ops\r\n"
            + "Authorization: Bearer sa\r\n\r\n"))
        let plain = self.head(fields)
        #expect(!plain.headers.contains(name: "impersonate-user"))
        #expect(!plain.headers.contains(name: "impersonate-group"))
    }

    @Test func aTargetOutsideTheBasePathIsRefused() {
        let head = self.head([HTTPField(":method", "GET"), HTTPField(":path", "/../secret")])
        #expect(head.target == nil)
        #expect(head.path == "/../secret")
    }

    @Test func missingPseudoHeadersDefaultToGetSlash() {
        let head = self.head([], basePath: "")
        #expect(head.method == "GET")
        #expect(head.target == "/")
        #expect(head.requestID == "-")
    }

    @Test func onlyABodilessRequestOnAReusedConnectionBeforeAnyResponseIsRetried() {
        #expect(BackendExchange.mayRetryOnFreshConnection(isReused: true, responseStarted: false,
                                                          hasRequestBody: false))
        #expect(!BackendExchange.mayRetryOnFreshConnection(isReused: false, responseStarted: false,
                                                           hasRequestBody: false))
        #expect(!BackendExchange.mayRetryOnFreshConnection(isReused: true, responseStarted: true,
                                                           hasRequestBody: false))
        #expect(!BackendExchange.mayRetryOnFreshConnection(isReused: true, responseStarted: false,
                                                           hasRequestBody: true))
    }
}
