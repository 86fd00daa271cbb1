import Foundation
import Testing
import Tunnel
@testable import Controller

@Suite struct HelloResponseTests {
    static func hello(_ name: String) -> [UInt8] {
        Array(try! JSONEncoder().encode(AgentHello(name: name, protocolVersion: 1, agentVersion: "t", annotations: [:],
                                                   services: [])))
    }

    @Test func aHelloNamingTheCertificatesAgentIsAccepted() throws {
        let result = HelloResponse.check(.success(CollectedResponse(status: 200, headers: [], body: Self.hello("edge"))),
                                         agentName: "edge")
        #expect(try result.get().name == "edge")
    }

    @Test(arguments: [
        (Result<CollectedResponse, TunnelClientError>.success(CollectedResponse(status: 200, headers: [],
                                                                                body: Self.hello("other"))),
         "the hello names agent other, the certificate agent edge"),
        (.success(CollectedResponse(status: 404, headers: [], body: [])), "hello answered with status 404"),
        (.success(CollectedResponse(status: 200, headers: [], body: Array("{not json".utf8))), "hello is not valid JSON"),
        (.failure(.tooLarge(limit: HelloResponse.maximumSize)), "hello larger than 1 MiB"),
        (.failure(.reset(code: 2)), "hello failed: stream reset (code 2)"),
        (.failure(.timedOut(seconds: 30)), "hello failed: no complete response within 30.0 s"),
    ])
    func failures(result: Result<CollectedResponse, TunnelClientError>, reason: String) {
        guard case .failure(.protocolViolation(let message)) = HelloResponse.check(result, agentName: "edge") else {
            Issue.record("accepted")
            return
        }
        #expect(message.hasPrefix(reason), "\(message)")
    }
}
