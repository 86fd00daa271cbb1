import Dispatch
import Foundation
import Tunnel

/// One configured controller address: resolves it on an interval and keeps a tunnel to every A/AAAA record, so
/// each controller replica behind a headless Service can route requests to this agent.
final class ControllerPool {
    let controller: ListenAddress
    private let context: AgentContext
    private let queue = DispatchQueue(label: "porthole.agent.resolver")
    private var tunnels: [String: AgentTunnel] = [:]
    private var timer: DispatchSourceTimer?
    private var isStopped = false

    init(controller: ListenAddress, context: AgentContext) {
        self.controller = controller
        self.context = context
    }

    var allTunnels: [AgentTunnel] { self.queue.sync { Array(self.tunnels.values) } }

    func start() {
        let timer = DispatchSource.makeTimerSource(queue: self.queue)
        timer.schedule(deadline: .now(), repeating: self.context.configuration.resolveIntervalSeconds)
        timer.setEventHandler { [weak self] in self?.resolve() }
        timer.resume()
        self.timer = timer
    }

    /// Looks the name up again: joins new replicas, lets go of vanished ones.
    private func resolve() {
        guard !self.isStopped else { return }
        let addresses: [SocketAddress]
        do {
            addresses = try SocketAddress.resolve(host: self.controller.host, port: self.controller.port)
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
        let serverName = self.context.configuration.serverName(for: self.controller)
        let seen = Set(addresses.map(\.description))
        for address in addresses where self.tunnels[address.description] == nil {
            if !self.tunnels.isEmpty {
                Log.info("controller replica appeared", ["controller": "\(self.controller)", "address": "\(address)"])
            }
            let tunnel = AgentTunnel(address: address, serverName: serverName, context: self.context)
            self.tunnels[address.description] = tunnel
            tunnel.start()
        }
        for (key, tunnel) in self.tunnels where !seen.contains(key) {
            Log.info("controller replica is gone from DNS", ["controller": "\(self.controller)", "address": key])
            tunnel.stop()
            self.tunnels[key] = nil
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

// State is confined to `queue`.
extension ControllerPool: @unchecked Sendable {}
