import Dispatch
import Foundation
import Synchronization
import Tunnel

/// One configured controller address: resolves it on an interval and keeps a tunnel to every distinct controller
/// replica behind it: one per A/AAAA record (a headless Service), and, when the controllers announce how many
/// replicas serve, more tunnels to the same name until each replica holds one (one load-balanced public name).
/// The decisions are `ControllerReplicaTracker`'s; this type carries them out.
final class ControllerPool {
    let controller: ListenAddress
    private let context: AgentContext
    private let queue = DispatchQueue(label: "porthole.agent.resolver")
    private var tracker = ControllerReplicaTracker()
    private var tunnels: [ControllerReplicaTracker.SlotID: AgentTunnel] = [:]
    /// The resolved addresses by their text, as the tracker names them.
    private var resolved: [String: SocketAddress] = [:]
    private var timer: DispatchSourceTimer?
    private var isStopped = false
    /// Read by metrics scrapes from other threads; written on `queue`.
    private let counts = Mutex((expected: 0, connected: 0))

    init(controller: ListenAddress, context: AgentContext) {
        self.controller = controller
        self.context = context
    }

    var allTunnels: [AgentTunnel] { self.queue.sync { Array(self.tunnels.values) } }

    /// Distinct controller replicas this name should reach, and how many tunnels are up to distinct ones.
    var replicaCounts: (expected: Int, connected: Int) { self.counts.withLock { $0 } }

    func start() {
        let timer = DispatchSource.makeTimerSource(queue: self.queue)
        timer.schedule(deadline: .now(), repeating: self.context.configuration.resolveIntervalSeconds)
        timer.setEventHandler { [weak self] in self?.resolve() }
        timer.resume()
        self.timer = timer
    }

    /// Looks the name up again, on a resolver thread so the pool's queue (which `/readyz` and `/metrics` read
    /// through `allTunnels`) never waits for DNS; then joins new replicas and lets go of vanished ones.
    private func resolve() {
        guard !self.isStopped else { return }
        Resolver.resolve(host: self.controller.host, port: self.controller.port, deliverOn: self.queue) { result in
            self.resolved(result)
        }
    }

    private func resolved(_ result: Result<[SocketAddress], Error>) {
        guard !self.isStopped else { return }
        let addresses: [SocketAddress]
        do {
            addresses = try result.get()
        } catch {
            // Keep the tunnels we have: a DNS hiccup must not drop working replicas.
            Log.warning("resolving a controller failed", ["controller": "\(self.controller)", "error": "\(error)"])
            if self.tunnels.isEmpty {
                self.queue.asyncAfter(deadline: .now() + min(5, self.context.configuration.resolveIntervalSeconds)) {
                    self.resolve()
                }
            }
            return
        }
        let isFirst = self.resolved.isEmpty
        for address in addresses where self.resolved[address.description] == nil {
            if !isFirst {
                Log.info("controller replica appeared", ["controller": "\(self.controller)", "address": "\(address)"])
            }
            self.resolved[address.description] = address
        }
        let seen = Set(addresses.map(\.description))
        for key in self.resolved.keys where !seen.contains(key) {
            Log.info("controller replica is gone from DNS", ["controller": "\(self.controller)", "address": key])
            self.resolved[key] = nil
        }
        self.carryOut(self.tracker.addressesResolved(addresses.map(\.description)))
    }

    /// A tunnel's report, on its queue: handled on the pool's.
    private func tunnel(_ tunnel: AgentTunnel, reported report: AgentTunnel.Report) {
        self.queue.async {
            guard !self.isStopped, self.tunnels[tunnel.slot] === tunnel else { return }
            switch report {
            case .helloAnswered(let instance, let replicaCount):
                self.carryOut(self.tracker.helloAnswered(slot: tunnel.slot, instance: instance,
                                                         replicaCount: replicaCount))
            case .lost:
                self.carryOut(self.tracker.tunnelLost(slot: tunnel.slot))
            }
        }
    }

    private func carryOut(_ actions: [ControllerReplicaTracker.Action]) {
        dispatchPrecondition(condition: .onQueue(self.queue))
        for action in actions {
            switch action {
            case .dial(let slot, let key):
                guard let address = self.resolved[key] else { continue }
                let tunnel = AgentTunnel(address: address, serverName: self.context.configuration.serverName(
                    for: self.controller), slot: slot, context: self.context) { [weak self] tunnel, report in
                    self?.tunnel(tunnel, reported: report)
                }
                self.tunnels[slot] = tunnel
                tunnel.start()
            case .stop(let slot):
                self.tunnels.removeValue(forKey: slot)?.stop()
            case .dropDuplicate(let slot, let instance):
                self.tunnels[slot]?.dropDuplicate(instance: instance)
            }
        }
        let counts = (self.tracker.expected, self.tracker.connected)
        let previous = self.counts.withLock { old in
            defer { old = counts }
            return old
        }
        if previous != counts, counts.0 > 1 || previous.expected > 1 {
            Log.info("controller replicas", ["controller": "\(self.controller)", "expected": "\(counts.0)",
                                             "connected": "\(counts.1)", "tunnels": "\(self.tunnels.count)"])
        }
    }

    func drain() {
        self.queue.sync {
            self.isStopped = true
            self.timer?.cancel()
            for tunnel in self.tunnels.values { tunnel.drain() }
        }
    }
}

// State is confined to `queue`, except `counts`, which is behind its mutex.
extension ControllerPool: @unchecked Sendable {}
