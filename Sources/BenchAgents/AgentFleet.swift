import Dispatch
import Foundation
import Synchronization
import Tunnel

/// Many `IdleTunnel`s in one process: issues their credentials, opens them with a bounded number of first dials
/// in flight, and reports how many are up as JSON lines on stdout.
final class AgentFleet: Sendable {
    private struct State {
        var target = 0
        var up = 0
        var firstDialsInFlight = 0
        var notStarted: [IdleTunnel] = []
        var failures: [String: Int] = [:]
        var changed = true
        var allUpReported = false
        var lastFullAt: Double?
    }

    private let options: BenchOptions
    private let authority: CertificateAuthority
    private let trusted: [Certificate]
    private let state = Mutex(State())
    private let clock = DispatchTime.now()
    private let output = DispatchQueue(label: "porthole.bench.output")
    private let tunnels = Mutex<[IdleTunnel]>([])
    /// Fires on `output`; only `startReporting` configures it.
    private nonisolated(unsafe) let reporter: DispatchSourceTimer

    init(options: BenchOptions) throws {
        self.options = options
        let caPEM = try PEMFile.read(options.caCertFile, role: "CA certificate", expecting: "CERTIFICATE")
        let keyPEM = try PEMFile.read(options.caKeyFile, role: "CA key", expecting: "PRIVATE KEY")
        self.authority = try CertificateAuthority(certificatePEM: caPEM, keyPEM: keyPEM)
        self.trusted = try Certificate.chain(pem: caPEM)
        self.reporter = DispatchSource.makeTimerSource(queue: self.output)
    }

    private var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - self.clock.uptimeNanoseconds) / 1e9 }

    /// Issues credentials for tunnels up to `count` and starts dialing them; does nothing if there are as many.
    func grow(to count: Int) throws {
        let existing = self.tunnels.withLock { $0.count }
        guard count > existing else { return }
        let started = self.elapsed
        let indices = Array(existing..<count)
        let made = Mutex<[Int: IdleTunnel]>([:])
        let firstError = Mutex<Error?>(nil)
        // Issuing is CPU work (key generation, signing): spread it over the cores.
        DispatchQueue.concurrentPerform(iterations: indices.count) { offset in
            let index = indices[offset]
            do {
                let name = String(format: "%@-%05d", self.options.namePrefix, index + 1)
                let credential = try self.authority.issueCredential(
                    for: .agent(name: name), trustDomain: self.options.trustDomain,
                    commonName: "porthole-bench-agents", validity: 24 * 3600)
                let tls = try TLSContext.client(
                    certificateChain: [credential.certificate], key: credential.key, trustedCAs: self.trusted,
                    verifyPeer: true, alpn: [TunnelProtocol.alpn])
                let tunnel = IdleTunnel(name: name, tls: tls, options: self.options, fleet: self)
                made.withLock { $0[index] = tunnel }
            } catch {
                firstError.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = firstError.withLock({ $0 }) { throw error }
        let fresh = made.withLock { made in indices.map { made[$0]! } }
        self.emit(["event": "credentials", "count": fresh.count, "seconds": self.elapsed - started])
        self.tunnels.withLock { $0 += fresh }
        let toStart: [IdleTunnel] = self.state.withLock { state in
            state.target = count
            state.allUpReported = false
            state.changed = true
            state.notStarted += fresh
            return Self.takeStartable(&state, concurrency: self.options.concurrency)
        }
        for tunnel in toStart { tunnel.start() }
    }

    private static func takeStartable(_ state: inout State, concurrency: Int) -> [IdleTunnel] {
        let room = max(0, concurrency - state.firstDialsInFlight)
        let taken = Array(state.notStarted.prefix(room))
        state.notStarted.removeFirst(taken.count)
        state.firstDialsInFlight += taken.count
        return taken
    }

    func firstDialFinished() {
        let next: [IdleTunnel] = self.state.withLock { state in
            state.firstDialsInFlight -= 1
            return Self.takeStartable(&state, concurrency: self.options.concurrency)
        }
        for tunnel in next { tunnel.start() }
    }

    func tunnelCameUp() {
        self.state.withLock { state in
            state.up += 1
            state.changed = true
        }
    }

    func tunnelWentDown() {
        self.state.withLock { state in
            state.up -= 1
            state.changed = true
            state.allUpReported = false
        }
    }

    func recordFailure(_ reason: String) {
        // Addresses and ports make every reason unique; keep the kind only.
        let kind = String(reason.prefix { $0 != "(" && $0 != ":" }.prefix(60))
        self.state.withLock { state in
            state.failures[kind.isEmpty ? reason : kind, default: 0] += 1
            state.changed = true
        }
    }

    /// Prints a status line every `interval` when something changed, and an `all-up` line when every tunnel is up.
    func startReporting(interval: TimeInterval) {
        self.reporter.schedule(deadline: .now() + interval, repeating: interval)
        self.reporter.setEventHandler { [self] in self.report() }
        self.reporter.resume()
    }

    private func report() {
        let snapshot: State? = self.state.withLock { state in
            guard state.changed else { return nil }
            state.changed = false
            let copy = state
            if state.target > 0 && state.up == state.target && !state.allUpReported { state.allUpReported = true }
            return copy
        }
        guard let snapshot else { return }
        let now = self.elapsed
        self.emit(["event": "status", "t": now, "wall": Date().timeIntervalSince1970, "up": snapshot.up,
                   "target": snapshot.target, "dialing": snapshot.firstDialsInFlight + snapshot.notStarted.count,
                   "failures": snapshot.failures])
        if snapshot.target > 0 && snapshot.up == snapshot.target && !snapshot.allUpReported {
            self.emit(["event": "all-up", "t": now, "wall": Date().timeIntervalSince1970, "up": snapshot.up])
        }
    }

    func emit(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        self.output.async {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }
}
