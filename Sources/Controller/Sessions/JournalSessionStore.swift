import Foundation
import Synchronization

/// Sessions kept in a local append-only journal of JSON lines: the single-replica default, needing nothing but a
/// file (put it on a volume that outlives the pod).
///
/// Each save appends `{"session": {…}, "time": "…", "version": "N"}` and each delete `{"deleted": "ID", …}`, then
/// `fsync`s. Opening the store replays the file: the last record of each id wins; a torn last line (a crash in the
/// middle of a write) is skipped and counted. `compact(now:retention:)` rewrites the file with one line per live
/// session (dropping final sessions older than the retention) through a temporary file and `rename`, so a crash
/// leaves either the old or the new journal. Versions are per session and start at 1; a save with a stale
/// version is a conflict, as with the ConfigMap store.
final class JournalSessionStore: SessionStore {
    /// The journal's path.
    let path: String
    /// Lines that could not be read when the file was replayed.
    let skippedLines: Int
    private let state: Mutex<State>

    private struct State {
        /// `O_APPEND` descriptor of the journal; owned.
        var fileDescriptor: Int32
        var sessions: [String: DebugSession]
        var records: Int
    }

    /// One line of the journal.
    private struct Record: Codable {
        var time: Date
        var version: String?
        var session: DebugSession?
        var deleted: String?
    }

    /// Opens (creating it, mode 0600) and replays the journal at `path`.
    init(path: String) throws(SessionStoreError) {
        self.path = path
        let fileDescriptor = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fileDescriptor >= 0 else { throw Self.ioError("open", path) }
        let bytes: [UInt8]
        do {
            bytes = try Self.readAll(fileDescriptor, path: path)
        } catch {
            close(fileDescriptor)
            throw error
        }
        var sessions: [String: DebugSession] = [:]
        var skipped = 0
        var records = 0
        for line in bytes.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let record = try? DebugSessionCoding.decode(Record.self, from: line) else {
                skipped += 1
                continue
            }
            records += 1
            if var session = record.session {
                session.storeVersion = record.version
                sessions[session.id] = session
            } else if let id = record.deleted {
                sessions[id] = nil
            }
        }
        if let last = bytes.last, last != UInt8(ascii: "\n") {
            // A torn line: end it so the next record starts on a line of its own.
            _ = [UInt8(ascii: "\n")].withUnsafeBytes { write(fileDescriptor, $0.baseAddress, 1) }
        }
        self.skippedLines = skipped
        self.state = Mutex(State(fileDescriptor: fileDescriptor, sessions: sessions, records: records))
    }

    deinit {
        self.state.withLock { _ = close($0.fileDescriptor) }
    }

    /// The sessions as replayed and saved since, by id.
    var sessions: [String: DebugSession] {
        self.state.withLock { $0.sessions }
    }

    /// Stores `session` synchronously; see `save(_:completion:)`.
    func save(_ session: DebugSession) throws(SessionStoreError) -> DebugSession {
        try self.state.withLock { (state: inout State) throws(SessionStoreError) -> DebugSession in
            let current = state.sessions[session.id]?.storeVersion
            guard current == session.storeVersion else {
                throw SessionStoreError(
                    .conflict, "session \(session.id) is at version \(current ?? "none"), not "
                        + "\(session.storeVersion ?? "none")")
            }
            var saved = session
            saved.storeVersion = String((current.flatMap { Int($0) } ?? 0) + 1)
            var unversioned = session
            unversioned.storeVersion = nil
            try self.append(Record(time: Date(), version: saved.storeVersion, session: unversioned), to: &state)
            state.sessions[session.id] = saved
            return saved
        }
    }

    /// Forgets a session synchronously; see `delete(id:version:completion:)`.
    func delete(id: String, version: String?) throws(SessionStoreError) {
        try self.state.withLock { (state: inout State) throws(SessionStoreError) in
            guard let current = state.sessions[id] else {
                throw SessionStoreError(.notFound, "no session \(id)")
            }
            if let version, version != current.storeVersion {
                throw SessionStoreError(.conflict, "session \(id) is at version \(current.storeVersion ?? "none")")
            }
            try self.append(Record(time: Date(), deleted: id), to: &state)
            state.sessions[id] = nil
        }
    }

    /// Rewrites the journal with one line per session, dropping sessions in a final state whose last change is
    /// older than `retention` seconds; returns how many were dropped.
    @discardableResult
    func compact(now: Date, retention: TimeInterval) throws(SessionStoreError) -> Int {
        try self.state.withLock { (state: inout State) throws(SessionStoreError) -> Int in
            let keep = state.sessions.filter { _, session in
                guard session.state.isFinal, let last = session.history.last?.at else { return true }
                return now.timeIntervalSince(last) < retention
            }
            var text: [UInt8] = []
            for session in keep.values.sorted(by: { $0.createdAt < $1.createdAt }) {
                var unversioned = session
                unversioned.storeVersion = nil
                let record = Record(time: now, version: session.storeVersion, session: unversioned)
                text += DebugSessionCoding.encode(record)
                text.append(UInt8(ascii: "\n"))
            }
            let temporary = self.path + ".tmp"
            let fileDescriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fileDescriptor >= 0 else { throw Self.ioError("open", temporary) }
            do throws(SessionStoreError) {
                try Self.writeAll(text, to: fileDescriptor, path: temporary)
                guard fsync(fileDescriptor) == 0 else { throw Self.ioError("fsync", temporary) }
            } catch {
                close(fileDescriptor)
                throw error
            }
            guard rename(temporary, self.path) == 0 else {
                close(fileDescriptor)
                throw Self.ioError("rename", temporary)
            }
            close(state.fileDescriptor)
            close(fileDescriptor)
            let reopened = open(self.path, O_RDWR | O_APPEND | O_CLOEXEC, 0o600)
            guard reopened >= 0 else { throw Self.ioError("open", self.path) }
            state.fileDescriptor = reopened
            let dropped = state.sessions.count - keep.count
            state.sessions = keep
            state.records = keep.count
            return dropped
        }
    }

    // MARK: - SessionStore

    func loadAll(completion: @escaping @Sendable (Result<[DebugSession], SessionStoreError>) -> Void) {
        completion(.success(self.sessions.values.sorted { $0.createdAt < $1.createdAt }))
    }

    func save(_ session: DebugSession,
              completion: @escaping @Sendable (Result<DebugSession, SessionStoreError>) -> Void) {
        completion(Result { () throws(SessionStoreError) in try self.save(session) })
    }

    func delete(id: String, version: String?,
                completion: @escaping @Sendable (Result<Void, SessionStoreError>) -> Void) {
        completion(Result { () throws(SessionStoreError) in try self.delete(id: id, version: version) })
    }

    // MARK: - Files

    private func append(_ record: Record, to state: inout State) throws(SessionStoreError) {
        var line = DebugSessionCoding.encode(record)
        line.append(UInt8(ascii: "\n"))
        try Self.writeAll(line, to: state.fileDescriptor, path: self.path)
        guard fsync(state.fileDescriptor) == 0 else { throw Self.ioError("fsync", self.path) }
        state.records += 1
    }

    private static func writeAll(_ bytes: [UInt8], to fileDescriptor: Int32, path: String)
        throws(SessionStoreError)
    {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fileDescriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw Self.ioError("write", path)
            }
            offset += written
        }
    }

    private static func readAll(_ fileDescriptor: Int32, path: String) throws(SessionStoreError) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fileDescriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.ioError("read", path)
            }
            if count == 0 { return bytes }
            bytes += buffer[..<count]
        }
    }

    private static func ioError(_ call: String, _ path: String) -> SessionStoreError {
        SessionStoreError(.io, "\(call) \(path): \(String(cString: strerror(errno)))")
    }
}
