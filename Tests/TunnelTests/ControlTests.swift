import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Tunnel

@Suite struct SimpleHTTPTests {
    private func events(_ input: String, maxBodyBytes: Int = 1 << 20, maxHeaderBytes: Int = 64 << 10,
                        finish: Bool = false) -> [SimpleHTTPRequestReader.Action] {
        var reader = SimpleHTTPRequestReader(maxBodyBytes: maxBodyBytes, maxHeaderBytes: maxHeaderBytes)
        reader.feed(Array(input.utf8))
        var actions: [SimpleHTTPRequestReader.Action] = []
        while let action = reader.next() { actions.append(action) }
        if finish, let action = reader.finish() {
            actions.append(action)
            while let action = reader.next() { actions.append(action) }
        }
        return actions
    }

    @Test func targetSplitsIntoPathAndDecodedQuery() {
        let (path, query) = SimpleRequest.split(target: "/api/v1/agents?x=1&name=a%20b&plus=c+d&flag&=skip")
        #expect(path == "/api/v1/agents")
        #expect(query == ["x": "1", "name": "a b", "plus": "c d", "flag": ""])
        #expect(SimpleRequest.split(target: "/healthz").query.isEmpty)
    }

    @Test func requestDerivesThePeerIdentityFromItsCertificate() throws {
        let authority = try CertificateAuthority.create(commonName: "test CA", validity: 3600)
        let issued = try authority.issueCredential(
            for: .control(name: "admin"), trustDomain: "porthole.local", commonName: "ops", validity: 600)
        let request = SimpleRequest(method: "GET", target: "/", peerCertificate: issued.certificate)
        #expect(request.peerIdentity(trustDomain: "porthole.local") == .control(name: "admin"))
        #expect(request.peerIdentity(trustDomain: "other.local") == nil)
        #expect(SimpleRequest(method: "GET", target: "/").peerIdentity(trustDomain: "porthole.local") == nil)
    }

    @Test func readerReturnsPipelinedRequestsWithBodies() {
        let actions = self.events(
            "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                + "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        guard actions.count == 3,
            case .request(let first, true) = actions[0],
            case .request(let second, true) = actions[1],
            case .request(let third, false) = actions[2]
        else {
            Issue.record("unexpected actions \(actions)")
            return
        }
        #expect(first.method == "GET" && first.path == "/a" && first.query == ["x": "1"] && first.body.isEmpty)
        #expect(second.path == "/b" && second.body == Array("hello".utf8))
        #expect(third.path == "/c" && third.body == Array("abcde".utf8))
    }

    @Test func readerHonoursHTTP10KeepAliveRules() {
        #expect(self.events("GET / HTTP/1.0\r\n\r\n") == [.request(SimpleRequest(method: "GET", target: "/",
            headers: HTTPHeaders()), keepAlive: false)])
    }

    @Test func readerRefusesOversizedBodies() {
        let declared = self.events("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", maxBodyBytes: 10)
        #expect(declared == [.reject(status: 413, reason: "request body larger than 10 bytes")])
        let chunked = self.events(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n",
            maxBodyBytes: 10)
        #expect(chunked == [.reject(status: 413, reason: "request body larger than 10 bytes")])
    }

    @Test func readerRefusesMalformedRequestsOnce() {
        #expect(self.events("GARBAGE\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            == [.reject(status: 400, reason: "malformed request or status line")])
        #expect(self.events("GET / HTTP/1.1\nHost: h\n\n")
            == [.reject(status: 400, reason: "line ending without CR (bare LF)")])
        let big = "GET / HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n"
        #expect(self.events(big, maxHeaderBytes: 1024)
            == [.reject(status: 431, reason: "header section larger than 1024 bytes")])
        #expect(self.events("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
            == [.reject(status: 400, reason: "protocol upgrade is not supported")])
        #expect(self.events("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", finish: true)
            == [.reject(status: 400, reason: "message truncated by end of stream")])
        #expect(self.events("GET / HTTP/1.1\r\n\r\n", finish: true).count == 1)
    }

    @Test func readerAsksForTheBodyAfterExpectContinue() {
        let actions = self.events("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        #expect(actions == [.sendContinue])
    }

    @Test func responseEncodingSetsLengthAndConnection() {
        let response = SimpleResponse.error(404, "nope")
        let text = String(decoding: response.encoded(keepAlive: false), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(text.contains("Content-Type: application/json\r\n"))
        #expect(text.contains("Content-Length: 17\r\n"))
        #expect(text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\n{\"error\":\"nope\"}\n"))
        let head = String(decoding: SimpleResponse.text(200, "ok").encoded(keepAlive: true, includeBody: false),
                          as: UTF8.self)
        #expect(head.hasSuffix("Content-Length: 2\r\n\r\n") && !head.contains("Connection"))
    }

    @Test func jsonResponsesUseISO8601Dates() {
        struct Payload: Encodable { var at: Date }
        let response = SimpleResponse.json(200, Payload(at: Date(timeIntervalSince1970: 0)))
        #expect(String(decoding: response.body, as: UTF8.self) == "{\"at\":\"1970-01-01T00:00:00Z\"}\n")
    }
}

@Suite struct MetricsEndpointTests {
    @Test func servesMetricsHealthAndReadiness() {
        let registry = MetricsRegistry()
        registry.counter("porthole_test_total", help: "A test counter.").increment()
        let ready = Mutex(false)
        let endpoint = MetricsEndpoint(registry: registry, notReadyReason: "listeners not up") {
            ready.withLock { $0 }
        }
        let metrics = endpoint.handle(SimpleRequest(method: "GET", target: "/metrics"))
        #expect(metrics.status == 200)
        #expect(metrics.headers[first: "content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("porthole_test_total 1"))
        #expect(endpoint.handle(SimpleRequest(method: "GET", target: "/healthz")) == .text(200, "ok\n"))
        #expect(endpoint.handle(SimpleRequest(method: "GET", target: "/readyz")) == .text(503, "listeners not up\n"))
        ready.withLock { $0 = true }
        #expect(endpoint.handle(SimpleRequest(method: "GET", target: "/readyz?verbose=1")) == .text(200, "ready\n"))
        #expect(endpoint.handle(SimpleRequest(method: "GET", target: "/nope")).status == 404)
        let post = endpoint.handle(SimpleRequest(method: "POST", target: "/metrics"))
        #expect(post.status == 405 && post.headers[first: "allow"] == "GET, HEAD")
    }
}

@Suite struct SimpleHTTPServerTests {
    /// Sends `request` on a blocking socket to 127.0.0.1:`port` and reads until the server closes.
    private func exchange(port: UInt16, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(connected == 0)
        let bytes = Array(request.utf8)
        #expect(send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test func servesKeepAliveRequestsAndRefusesBadOnes() throws {
        let server = SimpleHTTPServer(name: "test", trustDomain: nil, maxBodyBytes: 16) { request in
            .text(200, "\(request.method) \(request.path) \(request.body.count)")
        }
        let listener = try Listener(name: "test", host: "127.0.0.1", port: 0)
        listener.start { fd, queue in
            do {
                server.serve(try Connection.accepted(fd: fd, tls: nil, queue: queue))
            } catch {
                close(fd)
            }
        }
        defer { listener.stop() }
        let port = listener.address.port

        let two = try self.exchange(
            port: port,
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz")
        #expect(two.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        #expect(two.contains("\r\n\r\nGET /a 0HTTP/1.1 200"))
        #expect(two.hasSuffix("Connection: close\r\n\r\nPOST /b 3"))

        let bad = try self.exchange(port: port, "BAD REQUEST LINE WITH SPACES\r\n\r\n")
        #expect(bad.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(bad.hasSuffix("{\"error\":\"malformed request or status line\"}\n"))

        let large = try self.exchange(port: port, "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n")
        #expect(large.hasPrefix("HTTP/1.1 413 "))
        #expect(large.contains("request body larger than 16 bytes"))
    }
}
