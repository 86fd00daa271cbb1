import Dispatch
import Foundation
import Synchronization
import Tunnel

/// How many controller replicas serve, as this replica tells agents in the hello (`porthole-replicas`): a fixed
/// `replicaCount`, or the number of A/AAAA records of `replicasFromDNS` (the replicas' headless Service), looked up
/// on an interval. Agents behind one load-balanced name keep dialling until they hold a tunnel to that many.
final class ReplicaAnnouncement {
    private let dnsName: String?
    private let interval: Double
    private let count: Mutex<Int?>
    private let queue = DispatchQueue(label: "porthole.controller.replicas")
    /// Created once, in `start`; a source must not be released before it was resumed.
    private var timer: DispatchSourceTimer?

    init(configuration: ControllerConfiguration) {
        self.dnsName = configuration.replicasFromDNS
        self.interval = configuration.replicasResolveIntervalSeconds
        self.count = Mutex(configuration.replicaCount)
    }

    /// The count to announce now; nil announces none (agents then count one replica per address).
    var current: Int? { self.count.withLock { $0 } }

    /// Starts the DNS look-ups, if configured; the first runs before this returns, so the first hello has it.
    func start() {
        guard self.dnsName != nil else { return }
        self.queue.sync { self.lookUp() }
        let timer = DispatchSource.makeTimerSource(queue: self.queue)
        timer.schedule(deadline: .now() + self.interval, repeating: self.interval)
        timer.setEventHandler { [weak self] in self?.lookUp() }
        timer.resume()
        self.timer = timer
    }

    private func lookUp() {
        guard let name = self.dnsName else { return }
        do {
            let records = Set(try SocketAddress.resolve(host: name, port: 0).map(\.description)).count
            let count = min(max(records, 1), TunnelProtocol.maxReplicaCount)
            let previous = self.count.withLock { old in
                defer { old = count }
                return old
            }
            if previous != count {
                Log.info("controller replicas counted", ["name": name, "replicas": "\(count)"])
            }
        } catch {
            // Keep announcing the last count: a DNS hiccup must not make agents drop replicas.
            Log.warning("counting controller replicas failed", ["name": name, "error": "\(error)"])
        }
    }
}

// The count is behind its mutex; the timer is set once, in `start`, before any other thread can see it change.
extension ReplicaAnnouncement: @unchecked Sendable {}
