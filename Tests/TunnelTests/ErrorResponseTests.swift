import Foundation
import Testing

@testable import Tunnel

@Suite struct ErrorResponseTests {
    private func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func aKubernetesServiceGetsAStatus() throws {
        let error = ErrorResponse(status: 503, message: "agent edge is not connected", serviceType: "kubernetes",
                                  requestID: "r1")
        #expect(String(decoding: error.body, as: UTF8.self) == #"{"kind":"Status","apiVersion":"v1","metadata":{},"#
            + #""status":"Failure","message":"agent edge is not connected","reason":"ServiceUnavailable","code":503}"#
            + "\n")
    }

    @Test func anotherServiceGetsAJSONError() throws {
        let error = ErrorResponse(status: 503, message: "agent \"x\" is not connected", serviceType: "jenkins",
                                  requestID: "r1")
        let body = try self.json(error.body)
        #expect(body["error"] as? String == "agent \"x\" is not connected" && body["requestID"] as? String == "r1")
        #expect(body.count == 2 && error.warning == nil)
        #expect(ErrorResponse(status: 400, message: "m", serviceType: nil).isKubernetes == false)
    }

    @Test(arguments: [
        (400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound"), (405, "MethodNotAllowed"),
        (413, "RequestEntityTooLarge"), (431, "RequestEntityTooLarge"), (500, "InternalError"), (501, "InternalError"),
        (502, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout"), (418, "BadRequest"),
    ])
    func reasonFollowsKubernetesConventions(status: Int, reason: String) throws {
        let error = ErrorResponse(status: status, message: "m", serviceType: "kubernetes")
        #expect(error.reason.rawValue == reason)
        #expect(try self.json(error.body)["reason"] as? String == reason)
        #expect(try self.json(error.body)["code"] as? Int == status)
    }

    @Test func anExplicitReasonWins() throws {
        let error = ErrorResponse(status: 502, reason: .serviceUnavailable, message: "m", serviceType: "kubernetes")
        #expect(try self.json(error.body)["reason"] as? String == "ServiceUnavailable")
    }

    @Test func aStatusCarriesItsMessageAsAWarningKubectlPrints() {
        let error = ErrorResponse(status: 502, message: "a \"quoted\" \\ ünïcode\nline", serviceType: "kubernetes")
        #expect(error.warning == #"299 - "a \"quoted\" \\ ?n?code?line""#)
    }

    @Test func http1MessageHasLengthTypeWarningAndClose() {
        let error = ErrorResponse(status: 404, message: "no", serviceType: "kubernetes")
        let text = String(decoding: error.http1Message(keepAlive: false), as: UTF8.self)
        let body = String(decoding: error.body, as: UTF8.self)
        #expect(text == "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)"
            + "\r\nWarning: 299 - \"no\"\r\nConnection: close\r\n\r\n" + body)
        let kept = String(decoding: ErrorResponse(status: 404, message: "no", serviceType: nil)
            .http1Message(keepAlive: true), as: UTF8.self)
        #expect(!kept.contains("Connection:") && !kept.contains("Warning:"))
    }

    @Test func http2HeadersCarryStatusTypeLengthAndExtras() {
        let error = ErrorResponse(status: 503, message: "m", serviceType: "x-custom")
        #expect(error.http2Headers(adding: [HTTPField("porthole-error", "1")]) == [
            HTTPField(":status", "503"), HTTPField("content-type", "application/json"),
            HTTPField("content-length", "\(error.body.count)"), HTTPField("porthole-error", "1"),
        ])
    }
}

@Suite struct AuthorizationHeaderTests {
    @Test(arguments: [
        ("Bearer abc", AuthorizationHeader.bearer("abc")), ("bearer  abc ", .bearer("abc")),
        (" BEARER abc", .bearer("abc")),
        ("Bearer", .emptyBearer), ("Bearer ", .emptyBearer), ("bearer \t ", .emptyBearer),
        ("Basic dXNlcg==", .unsupported(scheme: "Basic")), ("Bearerabc", .unsupported(scheme: "Bearerabc")),
        ("", .unsupported(scheme: "")),
    ])
    func readsSchemeAndToken(value: String, expected: AuthorizationHeader) {
        #expect(AuthorizationHeader(value) == expected)
    }
}

@Suite struct NameResolutionErrorTests {
    @Test func aFailedLookupSaysOnlyWhatGetaddrinfoSaid() throws {
        do {
            _ = try SocketAddress.resolve(host: "porthole-test.invalid", port: 443)
            Issue.record("porthole-test.invalid resolved")
        } catch let error as ConnectionError {
            guard case .resolution(let host, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(host == "porthole-test.invalid")
            #expect("\(error)" == "cannot resolve porthole-test.invalid: \(reason)")
            // gai_strerror's words only: no errno text glued on.
            #expect(!reason.contains("No route to host") && !reason.isEmpty)
        }
    }
}
