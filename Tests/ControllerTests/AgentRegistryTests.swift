import Dispatch
import Foundation
import Synchronization
import Testing
import Tunnel
@testable import Controller

/// A session whose load and state a test sets by hand.
final class FakeRegisteredSession: RegisteredSession, @unchecked Sendable {
    let id: String
    let agentName: String
    let address = "127.0.0.1:1"
    let connectedSince = Date(timeIntervalSince1970: 0)
    var activeStreams: Int
    var isDraining = false
    let hello: AgentHello
    var drained = false

    init(_ id: String, agent: String = "edge", streams: Int = 0, services: [String] = ["kubernetes/default"]) {
        self.id = id
        self.agentName = agent
        self.activeStreams = streams
        self.hello = AgentHello(name: agent, protocolVersion: 1, agentVersion: "t", annotations: [:], services:
            services.map { key in
                let parts = key.split(separator: "/").map(String.init)
                return AdvertisedService(type: parts[0], name: parts[1], annotations: [:])
            })
    }

    func offers(type: String, name: String) -> Bool {
        self.hello.services.contains { $0.type == type && $0.name == name }
    }

    func openStream(headers: [HTTPField], hasBody: Bool, delegate: TunnelStreamDelegate,
                    delegateQueue: DispatchQueue) -> TunnelStream {
        preconditionFailure("not in these tests")
    }

    func drain() {
        self.drained = true
        self.isDraining = true
    }
}

@Suite struct AgentRegistryTests {
    @Test func theLeastBusyReplicaTakesTheNextStream() {
        let registry = AgentRegistry()
        let busy = FakeRegisteredSession("a", streams: 7)
        let idle = FakeRegisteredSession("b", streams: 2)
        let other = FakeRegisteredSession("c", agent: "other", streams: 0)
        #expect(!registry.register(busy))
        #expect(registry.register(idle))  // the name was seen: a replica or a reconnect
        registry.register(other)
        #expect(registry.leastBusySession(of: "edge")?.id == "b")
        idle.activeStreams = 9
        #expect(registry.leastBusySession(of: "edge")?.id == "a")
        #expect(registry.leastBusySession(of: "nobody") == nil)
        #expect(registry.agentCount == 2 && registry.sessionCount == 3 && registry.activeStreamCount == 16)
    }

    @Test func drainingSessionsTakeNoNewStreamsButStillCount() {
        let registry = AgentRegistry()
        let draining = FakeRegisteredSession("a", streams: 0)
        let busy = FakeRegisteredSession("b", streams: 50)
        registry.register(draining)
        registry.register(busy)
        draining.drain()
        #expect(registry.leastBusySession(of: "edge")?.id == "b")
        busy.drain()
        #expect(registry.leastBusySession(of: "edge") == nil)
        #expect(registry.sessionCount == 2 && registry.activeStreamCount == 50)
    }

    @Test func aNameSeenBeforeIsAReconnect() {
        let registry = AgentRegistry()
        let first = FakeRegisteredSession("a")
        #expect(!registry.register(first))
        registry.unregister(first)
        #expect(registry.agentCount == 0 && registry.leastBusySession(of: "edge") == nil)
        #expect(registry.register(FakeRegisteredSession("b")))
    }

    @Test func snapshotsListAgentsInOrderWithTheirSessionsAndServices() {
        let registry = AgentRegistry()
        registry.register(FakeRegisteredSession("z1", agent: "zeta", services: ["x-web/site"]))
        registry.register(FakeRegisteredSession("a1", agent: "alpha", streams: 3))
        let snapshot = registry.snapshot()
        #expect(snapshot.map(\.name) == ["alpha", "zeta"])
        #expect(snapshot[0].sessions.map(\.activeStreams) == [3])
        #expect(snapshot[1].services == [AdvertisedService(type: "x-web", name: "site", annotations: [:])])
    }
}
