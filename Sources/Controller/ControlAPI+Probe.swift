import Dispatch
import Foundation
import Tunnel

/// `POST /api/v1/probes`: a GET the controller itself sends through an agent's tunnel to one of its services,
/// streamed and counted rather than held, so an operator can check the whole path (controller → tunnel → agent →
/// backend) and its speed without a user credential.
extension ControlAPI {
    /// A validated probe request: `{"agent", "type"?, "service"?, "path"?, "timeout"?}`.
    struct ProbeRequest: Equatable {
        var agent: String
        var serviceType: String
        var serviceName: String
        var path: String
        var timeoutSeconds: Int

        init(json: [UInt8]) throws(ControlRequestError) {
            let body = try ControlRequestBody(json: json, allowed: ["agent", "type", "service", "path", "timeout"])
            self.agent = try body.name("agent")
            self.serviceType = try body.name("type", default: "kubernetes")
            self.serviceName = try body.name("service", default: "default")
            self.path = try body.string("path") ?? "/"
            guard RequestTarget.check(self.path, method: "GET") == nil else {
                throw ControlRequestError("path: must start with / and have no . or .. segments")
            }
            self.timeoutSeconds = try body.seconds("timeout", default: 30, max: 600)
        }
    }

    /// What a probe saw.
    struct ProbeResult: Encodable, Equatable {
        var status: Int
        var bytes: Int
        var sha256: String
        var firstByteMilliseconds: Double?
        var totalMilliseconds: Double
    }

    func probe(_ request: SimpleRequest, caller: String) -> SimpleResponse {
        let probe: ProbeRequest
        do {
            probe = try ProbeRequest(json: request.body)
        } catch {
            return .error(error.status, error.reason)
        }
        let sessions = self.sessions
        return .later { answer in
            let run = ProbeRun(probe: probe, answer: answer)
            run.start(sessions: sessions, caller: caller)
        }
    }
}

/// One probe in flight, on its own queue: counts and hashes the body as it streams, acknowledging every byte.
private final class ProbeRun {
    private let probe: ControlAPI.ProbeRequest
    private let answer: @Sendable (SimpleResponse) -> Void
    private let queue = DispatchQueue(label: "porthole.probe")
    private let started = DispatchTime.now()
    private let hasher = SHA256Hasher()
    private var status = 0
    private var bytes = 0
    private var firstByte: Double?
    private var isDone = false

    init(probe: ControlAPI.ProbeRequest, answer: @escaping @Sendable (SimpleResponse) -> Void) {
        self.probe = probe
        self.answer = answer
    }

    func start(sessions: any SessionDirectory, caller: String) {
        self.queue.async {
            let client = TunnelClient.open(
                agent: self.probe.agent, serviceType: self.probe.serviceType, serviceName: self.probe.serviceName,
                path: self.probe.path, user: "controller:probe:\(caller)", sessions: sessions, queue: self.queue
            ) { client, event in self.handle(client, event) }
            guard let client else {
                self.finish(.error(503, "agent \(self.probe.agent) is not connected or has no service "
                                   + "\(self.probe.serviceType)/\(self.probe.serviceName)"))
                return
            }
            self.queue.asyncAfter(deadline: .now() + .seconds(self.probe.timeoutSeconds)) {
                guard !self.isDone else { return }
                client.cancel()
                self.finish(.error(504, "no complete response within \(self.probe.timeoutSeconds) s"))
            }
        }
    }

    private func handle(_ client: TunnelClient, _ event: TunnelClient.Event) {
        switch event {
        case .response(let status, _):
            self.status = status
        case .data(let bytes):
            if self.firstByte == nil { self.firstByte = self.started.secondsElapsed * 1000 }
            self.bytes += bytes.count
            self.hasher.update(bytes)
            client.consume(bytes.count)
        case .end:
            self.finish(.json(200, ControlAPI.ProbeResult(
                status: self.status, bytes: self.bytes, sha256: self.hasher.finish(),
                firstByteMilliseconds: self.firstByte, totalMilliseconds: self.started.secondsElapsed * 1000)))
        case .closed(let code) where code != 0:
            self.finish(.error(502, "the probe's stream was reset (code \(code)) after \(self.bytes) bytes"))
        case .closed:
            break
        }
    }

    private func finish(_ response: SimpleResponse) {
        guard !self.isDone else { return }
        self.isDone = true
        Log.info("probe done", ["agent": self.probe.agent, "path": self.probe.path, "status": "\(response.status)",
                                "bytes": "\(self.bytes)", "ms": Log.milliseconds(since: self.started)])
        self.answer(response)
    }
}

// Confined to its queue.
extension ProbeRun: @unchecked Sendable {}
