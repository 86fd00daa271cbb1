import Testing

@testable import Tunnel

/// The opening handshake: RFC 6455's example, the server's checks and refusals, the client's checks.
@Suite struct WebSocketHandshakeTests {
    static let sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="

    static func request(_ extra: [(String, String)] = [], dropping dropped: Set<String> = []) -> HTTPRequestHead {
        let base = [("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", Self.sampleKey), ("Origin", "http://example.com"),
                    ("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Version", "13")]
        let fields = base.filter { !dropped.contains($0.0) } + extra
        let headers = HTTPHeaders(fields.map { (name: $0.0, value: $0.1) })
        return HTTPRequestHead(method: "GET", target: "/chat", headers: headers)
    }

    static let server = WebSocketServerHandshake(subprotocols: ["superchat", "chat"]) { $0 == "http://example.com" }

    @Test func rfcExample() throws {
        #expect(WebSocketHandshake.acceptValue(forKey: Self.sampleKey) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let acceptance = try Self.server.accept(Self.request())
        #expect(acceptance.subprotocol == "superchat")
        #expect(acceptance.responseHead.status == 101)
        #expect(acceptance.responseHead.headers[first: "Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(acceptance.responseHead.headers[first: "Upgrade"] == "websocket")
        #expect(acceptance.responseHead.headers[first: "Connection"] == "Upgrade")
        #expect(acceptance.responseHead.headers[first: "Sec-WebSocket-Protocol"] == "superchat")
        #expect(acceptance.responseHead.headers[first: "Sec-WebSocket-Extensions"] == nil)
    }

    @Test func headerTokensAreReadLiberally() throws {
        var head = Self.request([("Connection", "keep-alive, Upgrade"), ("Upgrade", "WebSocket")],
                                dropping: ["Connection", "Upgrade"])
        head.headers.add(name: "sec-websocket-protocol", value: "other")
        #expect(try Self.server.accept(head).subprotocol == "superchat")
    }

    @Test func refusals() {
        func refusal(_ head: HTTPRequestHead) -> WebSocketHandshakeError? {
            do { _ = try Self.server.accept(head); return nil } catch { return error }
        }
        var post = Self.request()
        post.method = "POST"
        #expect(refusal(post) == .methodNotGET("POST"))
        var old = Self.request()
        old.version = "HTTP/1.0"
        #expect(refusal(old) == .httpVersionTooOld("HTTP/1.0"))
        #expect(refusal(Self.request(dropping: ["Upgrade"])) == .missingUpgrade)
        #expect(refusal(Self.request([("Upgrade", "h2c")], dropping: ["Upgrade"])) == .missingUpgrade)
        #expect(refusal(Self.request([("Connection", "keep-alive")], dropping: ["Connection"]))
                == .missingConnectionUpgrade)
        #expect(refusal(Self.request(dropping: ["Sec-WebSocket-Key"])) == .invalidKey)
        #expect(refusal(Self.request([("Sec-WebSocket-Key", Self.sampleKey)])) == .invalidKey)
        let badKeys = ["dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZXg=", "AAAAAAAAAAAAAAAAAAAAAAAA",
                       "!!!!!!!!!!!!!!!!!!!!!!=="]
        for key in badKeys {
            #expect(refusal(Self.request([("Sec-WebSocket-Key", key)], dropping: ["Sec-WebSocket-Key"])) == .invalidKey)
        }
        #expect(refusal(Self.request([("Sec-WebSocket-Version", "8")], dropping: ["Sec-WebSocket-Version"]))
                == .unsupportedVersion("8"))
        #expect(refusal(Self.request(dropping: ["Sec-WebSocket-Version"])) == .unsupportedVersion(nil))
        #expect(refusal(Self.request([("Origin", "https://evil.example")], dropping: ["Origin"]))
                == .originRefused("https://evil.example"))
        #expect(refusal(Self.request(dropping: ["Origin"])) == .originRefused(nil))
        let strict = WebSocketServerHandshake(subprotocols: ["v5.channel.k8s.io"], requiresSubprotocol: true) { _ in
            true
        }
        #expect(throws: WebSocketHandshakeError.noCommonSubprotocol(offered: ["chat", "superchat"])) {
            try strict.accept(Self.request())
        }
    }

    @Test func refusalHeads() {
        #expect(WebSocketHandshakeError.unsupportedVersion("8").refusalHead.status == 426)
        #expect(WebSocketHandshakeError.unsupportedVersion("8").refusalHead.headers[first: "Sec-WebSocket-Version"]
                == "13")
        #expect(WebSocketHandshakeError.originRefused("x").refusalHead.status == 403)
        #expect(WebSocketHandshakeError.methodNotGET("PUT").refusalHead.headers[first: "Allow"] == "GET")
        #expect(WebSocketHandshakeError.invalidKey.refusalHead.status == 400)
    }

    @Test func noSubprotocolWhenNoneIsShared() throws {
        let acceptance = try WebSocketServerHandshake(subprotocols: ["other"]) { _ in true }.accept(Self.request())
        #expect(acceptance.subprotocol == nil)
        #expect(acceptance.responseHead.headers[first: "Sec-WebSocket-Protocol"] == nil)
    }

    @Test func clientRequestAndServerAnswer() throws {
        let client = WebSocketClientHandshake(subprotocols: KubernetesChannelProtocol.offered)
        #expect(WebSocketHandshake.isValidKey(client.key))
        #expect(WebSocketClientHandshake().key != client.key)
        let headers = client.requestHeaders
        #expect(headers[first: "Sec-WebSocket-Protocol"] == "v5.channel.k8s.io, v4.channel.k8s.io")
        #expect(headers[first: "Sec-WebSocket-Version"] == "13")
        // The server side of this package accepts what the client side sends.
        let server = WebSocketServerHandshake(subprotocols: ["v4.channel.k8s.io"], requiresSubprotocol: true) { _ in
            true
        }
        let acceptance = try server.accept(HTTPRequestHead(method: "GET", target: "/attach", headers: headers))
        #expect(try client.accept(acceptance.responseHead) == "v4.channel.k8s.io")
    }

    @Test func clientRefusesBadAnswers() throws {
        let client = WebSocketClientHandshake(subprotocols: ["v5.channel.k8s.io"], key: Self.sampleKey)
        func answer(status: Int = 101, _ fields: [(String, String)]) -> HTTPResponseHead {
            HTTPResponseHead(status: status, headers: HTTPHeaders(fields.map { (name: $0.0, value: $0.1) }))
        }
        let good = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]
        #expect(try client.accept(answer(good)) == nil)
        #expect(throws: WebSocketHandshakeError.unexpectedStatus(403)) { try client.accept(answer(status: 403, good)) }
        #expect(throws: WebSocketHandshakeError.missingUpgrade) { try client.accept(answer(Array(good.dropFirst()))) }
        #expect(throws: WebSocketHandshakeError.missingConnectionUpgrade) {
            try client.accept(answer([good[0], good[2]]))
        }
        #expect(throws: WebSocketHandshakeError.acceptMismatch) {
            try client.accept(answer(Array(good.prefix(2)) + [("Sec-WebSocket-Accept", "AAAA")]))
        }
        #expect(throws: WebSocketHandshakeError.acceptMismatch) { try client.accept(answer(Array(good.prefix(2)))) }
        #expect(throws: WebSocketHandshakeError.unofferedSubprotocol("chat")) {
            try client.accept(answer(good + [("Sec-WebSocket-Protocol", "chat")]))
        }
        #expect(throws: WebSocketHandshakeError.unofferedSubprotocol("v5.channel.k8s.io, chat")) {
            try client.accept(answer(good + [("Sec-WebSocket-Protocol", "v5.channel.k8s.io, chat")]))
        }
        #expect(throws: WebSocketHandshakeError.unrequestedExtension("permessage-deflate")) {
            try client.accept(answer(good + [("Sec-WebSocket-Extensions", "permessage-deflate")]))
        }
        #expect(try client.accept(answer(good + [("Sec-WebSocket-Protocol", "v5.channel.k8s.io")]))
                == "v5.channel.k8s.io")
    }
}
