import Foundation
import Synchronization
import Tunnel

/// One audit line: a decision, or the start or end of a stream. Never a token, cookie or key: only names, the
/// decision's reason (which carries none) and counts.
struct AuditRecord: Sendable, Equatable, Encodable {
    enum Event: String, Sendable, Encodable {
        case decision
        case streamStart = "stream_start"
        case streamEnd = "stream_end"
    }

    var time = ""
    var event: Event = .decision
    var requestID = ""
    var user = ""
    var groups: [String] = []
    var issuer = ""
    var gateway = ""
    /// The peer address of the user's connection.
    var source = ""
    /// The agent.
    var cluster = ""
    /// `TYPE/NAME`.
    var service = ""
    var namespace = ""
    var resource = ""
    var subresource = ""
    var name = ""
    var verb = ""
    var operation = ""
    /// `allow` or `deny`.
    var decision = ""
    var reason = ""
    /// Stream end only: the response status, bytes from the user to the agent and back, and how long it took.
    var status: Int?
    var bytesIn: Int?
    var bytesOut: Int?
    var durationMs: Int?

    /// The identity's fields.
    mutating func set(identity: GatewayIdentity) {
        self.user = identity.username
        self.groups = identity.groups
        self.issuer = identity.issuer
        self.gateway = identity.gateway ?? ""
    }

    /// The Kubernetes request's fields.
    mutating func set(attributes: KubernetesRequestAttributes) {
        self.namespace = attributes.namespace
        self.resource = attributes.resource
        self.subresource = attributes.subresource
        self.name = attributes.name
        self.verb = attributes.verb
        self.operation = attributes.operation.rawValue
    }

    /// The line, without its newline: keys sorted, so lines compare and grep well.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// Audit lines (JSON, one per line) to their own destination: a file opened for appending, or standard output
/// for `-`. `reopen()` (on SIGHUP) lets a log rotator move the file away.
final class AuditLog: Sendable {
    /// The file, or `-`.
    let path: String
    private let descriptor: Mutex<Int32>

    init(path: String) throws(PolicyError) {
        self.path = path
        self.descriptor = Mutex(try Self.open(path))
    }

    deinit {
        let fd = self.descriptor.withLock { $0 }
        if fd > 2 { close(fd) }
    }

    private static func open(_ path: String) throws(PolicyError) -> Int32 {
        if path == "-" { return STDOUT_FILENO }
        let fd = Foundation.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw PolicyError(path: path, field: "auditLog", location: nil,
                              reason: "cannot open for appending: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Writes `record` stamped with the current time, as one `write(2)`, so lines never interleave.
    func write(_ record: AuditRecord) {
        var record = record
        if record.time.isEmpty { record.time = Self.timestamp(Date()) }
        self.write(line: Array(record.json.utf8))
    }

    /// Writes one JSON object (without its newline) as one line: the debug sessions' lines
    /// (`DebugSessionAuditEvent`, `kind: "session"`).
    func write(line: [UInt8]) {
        let line = line + [UInt8(ascii: "\n")]
        self.descriptor.withLock { fd in
            line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    /// Opens the path again (after rotation); keeps the old file on failure.
    func reopen() {
        guard self.path != "-" else { return }
        do {
            let fresh = try Self.open(self.path)
            let old = self.descriptor.withLock { fd in
                defer { fd = fresh }
                return fd
            }
            close(old)
            Log.info("audit log reopened", ["path": self.path])
        } catch {
            Log.warning("reopening the audit log failed; writing to the old file", ["error": "\(error)"])
        }
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// The audit of one forwarded stream: its start line when created and its end line (status, bytes each way,
/// duration) once, when `finish` is called or, failing that, when the last reference goes.
final class StreamAudit {
    private let log: AuditLog
    private var record: AuditRecord
    private let started = DispatchTime.now()
    private var isFinished = false
    /// Bytes of request body from the user towards the agent.
    var bytesIn = 0
    /// Bytes of response body from the agent to the user.
    var bytesOut = 0
    /// The response status, once known.
    var status = 0

    init(log: AuditLog, record: AuditRecord) {
        self.log = log
        var start = record
        start.event = .streamStart
        self.record = start
        log.write(start)
    }

    deinit {
        self.finish()
    }

    /// Writes the end line, once.
    func finish() {
        guard !self.isFinished else { return }
        self.isFinished = true
        var end = self.record
        end.event = .streamEnd
        end.time = ""
        end.status = self.status
        end.bytesIn = self.bytesIn
        end.bytesOut = self.bytesOut
        end.durationMs = Int(Double(DispatchTime.now().uptimeNanoseconds - self.started.uptimeNanoseconds) / 1e6)
        self.log.write(end)
    }
}

// Touched only on the user connection's queue that forwards the stream (its counters and `finish`); the log is
// thread-safe.
extension StreamAudit: @unchecked Sendable {}
