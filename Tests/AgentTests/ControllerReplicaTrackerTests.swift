import Testing
@testable import Agent
@testable import Tunnel

@Suite struct ControllerReplicaTrackerTests {
    typealias Action = ControllerReplicaTracker.Action

    /// The slot ids of the `.dial` actions, in order.
    func dialled(_ actions: [Action]) -> [Int] {
        actions.compactMap { if case .dial(let id, _) = $0 { id } else { nil } }
    }

    @Test func oneLoadBalancedNameIsDialledUntilEveryAnnouncedReplicaIsHeld() {
        var tracker = ControllerReplicaTracker()
        #expect(tracker.addressesResolved(["lb:8441"]) == [.dial(0, address: "lb:8441")])
        #expect(tracker.expected == 1, "before any hello, one replica per address")

        // The first hello announces three replicas: two more tunnels to the same name.
        let afterHello = tracker.helloAnswered(slot: 0, instance: "a", replicaCount: 3)
        #expect(afterHello == [.dial(1, address: "lb:8441"), .dial(2, address: "lb:8441")])
        #expect(tracker.expected == 3)
        #expect(tracker.connected == 1)

        // One extra lands on a replica already held: it is dropped and dials again; nothing else is added.
        #expect(tracker.helloAnswered(slot: 1, instance: "a", replicaCount: 3) == [.dropDuplicate(1, instance: "a")])
        #expect(tracker.connected == 1)
        #expect(tracker.helloAnswered(slot: 2, instance: "b", replicaCount: 3) == [])
        #expect(tracker.helloAnswered(slot: 1, instance: "c", replicaCount: 3) == [])
        #expect(tracker.connected == 3)
        #expect(tracker.slots.count == 3)
    }

    @Test func aLostReplicaIsReplacedByTheSlotThatHeldIt() {
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["lb:8441"])
        _ = tracker.helloAnswered(slot: 0, instance: "a", replicaCount: 3)
        _ = tracker.helloAnswered(slot: 1, instance: "b", replicaCount: 3)
        _ = tracker.helloAnswered(slot: 2, instance: "c", replicaCount: 3)

        // Slot 2 redials by itself: no new slot.
        #expect(tracker.tunnelLost(slot: 2) == [])
        #expect(tracker.connected == 2)
        // It reaches a replica already held first, then the restarted one.
        #expect(tracker.helloAnswered(slot: 2, instance: "b", replicaCount: 3) == [.dropDuplicate(2, instance: "b")])
        #expect(tracker.helloAnswered(slot: 2, instance: "c2", replicaCount: 3) == [])
        #expect(tracker.connected == 3)
    }

    @Test func aPrimaryThatLandsOnAnExtrasReplicaKeepsItAndTheExtraMovesOn() {
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["lb:8441"])
        _ = tracker.helloAnswered(slot: 0, instance: "a", replicaCount: 2)
        _ = tracker.helloAnswered(slot: 1, instance: "b", replicaCount: 2)
        #expect(tracker.tunnelLost(slot: 0) == [])
        // The primary comes back on the extra's replica: the extra is the one to go.
        #expect(tracker.helloAnswered(slot: 0, instance: "b", replicaCount: 2) == [.dropDuplicate(1, instance: "b")])
        #expect(tracker.helloAnswered(slot: 1, instance: "a", replicaCount: 2) == [])
        #expect(tracker.connected == 2)
    }

    @Test func perRecordModeIsUnchangedWithOrWithoutACount() {
        var tracker = ControllerReplicaTracker()
        let actions = tracker.addressesResolved(["10.0.0.1:8441", "10.0.0.2:8441", "10.0.0.3:8441"])
        #expect(dialled(actions) == [0, 1, 2])
        // Old controllers announce nothing: one replica per address.
        #expect(tracker.helloAnswered(slot: 0, instance: "a", replicaCount: nil) == [])
        #expect(tracker.helloAnswered(slot: 1, instance: "b", replicaCount: nil) == [])
        #expect(tracker.helloAnswered(slot: 2, instance: "c", replicaCount: 3) == [])
        #expect(tracker.expected == 3)
        #expect(tracker.connected == 3)

        // A record that disappears is let go, one that appears is joined.
        let moved = tracker.addressesResolved(["10.0.0.1:8441", "10.0.0.2:8441", "10.0.0.4:8441"])
        #expect(moved == [.stop(2), .dial(3, address: "10.0.0.4:8441")])
    }

    @Test func twoRecordsOfOneReplicaAreBothKeptWithoutACount() {
        // Dual stack: each replica has an A and an AAAA record. Primaries are never dropped as duplicates, and
        // without an announced count no extras are dialled.
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["10.0.0.1:8441", "[fd00::1]:8441"])
        #expect(tracker.helloAnswered(slot: 0, instance: "a", replicaCount: nil) == [])
        #expect(tracker.helloAnswered(slot: 1, instance: "a", replicaCount: nil) == [])
        #expect(tracker.slots.count == 2)
    }

    @Test func aSmallerCountStopsExtrasThatAreStillDialling() {
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["lb:8441"])
        _ = tracker.helloAnswered(slot: 0, instance: "a", replicaCount: 3)
        _ = tracker.helloAnswered(slot: 1, instance: "b", replicaCount: 3)
        // Scaled down to two while slot 2 was still looking for a third replica.
        #expect(tracker.helloAnswered(slot: 1, instance: "b", replicaCount: 2) == [.stop(2)])
        #expect(tracker.slots.count == 2)
    }

    @Test func aDuplicateBeyondTheCountIsStoppedNotRedialled() {
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["lb:8441"])
        _ = tracker.helloAnswered(slot: 0, instance: "a", replicaCount: 2)
        _ = tracker.helloAnswered(slot: 1, instance: "b", replicaCount: 2)
        // Slot 1 reconnects to "a" once the count has dropped to one: it is not needed at all.
        _ = tracker.tunnelLost(slot: 1)
        #expect(tracker.helloAnswered(slot: 1, instance: "a", replicaCount: 1) == [.stop(1)])
        #expect(tracker.connected == 1)
        #expect(tracker.slots.count == 1)
    }

    @Test func aVanishedAddressTakesItsExtrasAlongAndTheyMoveToAnother() {
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["lb1:8441", "lb2:8441"])
        _ = tracker.helloAnswered(slot: 0, instance: "a", replicaCount: 3)  // slot 2 dials lb1
        _ = tracker.helloAnswered(slot: 1, instance: "b", replicaCount: 3)
        #expect(tracker.slots[2]?.address == "lb1:8441")
        let actions = tracker.addressesResolved(["lb2:8441"])
        #expect(actions == [.stop(0), .stop(2), .dial(3, address: "lb2:8441"), .dial(4, address: "lb2:8441")])
    }

    @Test func helloAndLossOfUnknownSlotsAreIgnored() {
        var tracker = ControllerReplicaTracker()
        _ = tracker.addressesResolved(["lb:8441"])
        #expect(tracker.helloAnswered(slot: 7, instance: "a", replicaCount: 3) == [])
        #expect(tracker.tunnelLost(slot: 7) == [])
        #expect(tracker.tunnelLost(slot: 0) == [], "a slot still dialling has nothing to lose")
    }

    @Test func replicaCountHeaderValues() {
        #expect(TunnelProtocol.replicaCount("3") == 3)
        #expect(TunnelProtocol.replicaCount(nil) == nil)
        #expect(TunnelProtocol.replicaCount("0") == nil)
        #expect(TunnelProtocol.replicaCount("-2") == nil)
        #expect(TunnelProtocol.replicaCount("1001") == nil)
        #expect(TunnelProtocol.replicaCount("three") == nil)
    }
}
