import Foundation
import Synchronization
import Testing

@testable import Controller
@testable import Tunnel

/// Answers requests from a list of canned responses and records what was sent.
private final class FakeTransport: KubernetesTransport {
    let sent = Mutex<[KubernetesRequest]>([])
    let answers = Mutex<[Result<KubernetesResponse, SessionStoreError>]>([])

    init(_ answers: [Result<KubernetesResponse, SessionStoreError>]) {
        self.answers.withLock { $0 = answers }
    }

    func send(_ request: KubernetesRequest,
              completion: @escaping @Sendable (Result<KubernetesResponse, SessionStoreError>) -> Void) {
        self.sent.withLock { $0.append(request) }
        completion(self.answers.withLock { $0.removeFirst() })
    }
}

/// The ConfigMap the API server would answer with for `session` at `version`.
private func storedConfigMap(_ session: DebugSession, version: String) -> [UInt8] {
    let store = ConfigMapSessionStore(namespace: "porthole", transport: FakeTransport([]))
    var object = JSONValue.parse(DebugSessionCoding.encode(store.configMap(for: session, resourceVersion: version)))!
        .object!
    object["metadata"] = .object(object["metadata"]!.object!.merging(["uid": .string("cm-uid")]) { a, _ in a })
    return DebugSessionCoding.encode(JSONValueBox(object))
}

/// Encodes a JSONValue (Tunnel's is Decodable only).
private struct JSONValueBox: Encodable {
    var value: JSONValue
    init(_ object: [String: JSONValue]) { self.value = .object(object) }
    init(_ value: JSONValue) { self.value = value }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self.value {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values.map(JSONValueBox.init))
        case .object(let members): try container.encode(members.mapValues(JSONValueBox.init))
        }
    }
}

/// Waits for a completion that the fakes and the journal call synchronously.
private func wait<T: Sendable>(_ body: (@escaping @Sendable (T) -> Void) -> Void) -> T {
    let box = Mutex<T?>(nil)
    body { value in box.withLock { $0 = value } }
    return box.withLock { $0! }
}

@Suite struct ConfigMapSessionStoreTests {
    let session = SessionFixture.active().session

    @Test func createRequestIsAConfigMapWithLabelsAndSessionJSON() throws {
        let store = ConfigMapSessionStore(namespace: "porthole", transport: FakeTransport([]))
        let request = store.createRequest(for: self.session)
        #expect(request.method == "POST")
        #expect(request.path == "/api/v1/namespaces/porthole/configmaps")
        #expect(request.headers["content-type"] == "application/json")
        let object = try #require(JSONValue.parse(request.body ?? [])?.object)
        #expect(object["kind"] == .string("ConfigMap"))
        let metadata = try #require(object["metadata"]?.object)
        #expect(metadata["name"] == .string("porthole-session-abc123"))
        #expect(metadata["namespace"] == .string("porthole"))
        #expect(metadata["resourceVersion"] == nil)
        #expect(metadata["labels"] == .object([
            "app.kubernetes.io/managed-by": .string("porthole"),
            "app.kubernetes.io/component": .string("debug-session"),
            "porthole.dev/session-state": .string("Active"),
        ]))
        let text = try #require(object["data"]?.object?["session.json"]?.string)
        #expect(text.contains(#""deadline":"2025-06-15T15:21:45.000Z""#))
        #expect(try DebugSessionCoding.decode(DebugSession.self, from: Array(text.utf8)) == self.session)
    }

    @Test func updateListAndDeleteRequests() throws {
        let store = ConfigMapSessionStore(namespace: "porthole", transport: FakeTransport([]))
        var stored = self.session
        stored.storeVersion = "812"
        let update = store.updateRequest(for: stored)
        #expect(update.method == "PUT")
        #expect(update.path == "/api/v1/namespaces/porthole/configmaps/porthole-session-abc123")
        #expect(JSONValue.parse(update.body!)?.object?["metadata"]?.object?["resourceVersion"] == .string("812"))
        #expect(store.listRequest().path == "/api/v1/namespaces/porthole/configmaps?labelSelector="
            + "app%2Ekubernetes%2Eio%2Fmanaged%2Dby%3Dporthole%2Capp%2Ekubernetes%2Eio%2Fcomponent%3Ddebug%2Dsession")
        let delete = store.deleteRequest(id: "abc123", version: "812")
        #expect(delete.method == "DELETE")
        #expect(String(decoding: delete.body!, as: UTF8.self)
            == #"{"apiVersion":"v1","kind":"DeleteOptions","preconditions":{"resourceVersion":"812"}}"#)
    }

    @Test func saveCreatesThenUpdatesAndReportsConflicts() {
        let conflict = #"{"kind":"Status","code":409,"reason":"Conflict","message":"Operation cannot be fulfilled "#
            + #"on configmaps \"porthole-session-abc123\": the object has been modified"}"#
        let transport = FakeTransport([
            .success(KubernetesResponse(status: 201, body: storedConfigMap(self.session, version: "1"))),
            .success(KubernetesResponse(status: 409, body: Array(conflict.utf8))),
            .failure(SessionStoreError(.unavailable, "agent prod-eu is not connected")),
        ])
        let store = ConfigMapSessionStore(namespace: "porthole", transport: transport)
        let created = wait { store.save(self.session, completion: $0) }
        guard case .success(let saved) = created else {
            Issue.record("save failed: \(created)")
            return
        }
        #expect(saved.storeVersion == "1")
        var without = saved
        without.storeVersion = nil
        #expect(without == self.session)
        let second = wait { store.save(saved, completion: $0) }
        #expect(second == .failure(SessionStoreError(
            .conflict, "Operation cannot be fulfilled on configmaps \"porthole-session-abc123\": the object has been "
                + "modified")))
        #expect(transport.sent.withLock { $0.map(\.method) } == ["POST", "PUT"])
        let third = wait { store.save(saved, completion: $0) }
        #expect(third == .failure(SessionStoreError(.unavailable, "agent prod-eu is not connected")))
    }

    @Test func listReadsSessionsAndReportsOthers() throws {
        let good = String(decoding: storedConfigMap(self.session, version: "7"), as: UTF8.self)
        let junk = #"{"metadata":{"name":"porthole-session-junk"},"data":{}}"#
        let list = #"{"kind":"ConfigMapList","items":[\#(good),\#(junk)]}"#
        let (sessions, problems) = try ConfigMapSessionStore.sessions(
            fromList: KubernetesResponse(status: 200, body: Array(list.utf8)))
        #expect(sessions.map(\.id) == ["abc123"])
        #expect(sessions.first?.storeVersion == "7")
        #expect(problems == ["ConfigMap porthole-session-junk has no session.json"])
        #expect(throws: SessionStoreError(.unavailable, "HTTP 503")) {
            try ConfigMapSessionStore.sessions(fromList: KubernetesResponse(status: 503, body: []))
        }
    }
}

@Suite struct JournalSessionStoreTests {
    private func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("sessions.jsonl").path
    }

    @Test func savesReplaysAndRefusesStaleVersions() throws {
        let path = self.temporaryPath()
        var machine = SessionFixture.active()
        do {
            let store = try JournalSessionStore(path: path)
            let first = try store.save(machine.session)
            #expect(first.storeVersion == "1")
            #expect(throws: SessionStoreError.self) { try store.save(machine.session) }
            _ = try machine.extend(by: 60, actor: DebugSessionActor(subject: SessionFixture.alice), reason: nil,
                                   now: SessionFixture.now + 10)
            var next = machine.session
            next.storeVersion = first.storeVersion
            #expect(try store.save(next).storeVersion == "2")
            var other = SessionFixture.active().session
            other.id = "other1"
            _ = try store.save(other)
            try store.delete(id: "other1", version: nil)
        }
        let reopened = try JournalSessionStore(path: path)
        #expect(reopened.skippedLines == 0)
        #expect(reopened.sessions.keys.sorted() == ["abc123"])
        var expected = machine.session
        expected.storeVersion = "2"
        #expect(reopened.sessions["abc123"] == expected)
        let loaded = wait { reopened.loadAll(completion: $0) }
        #expect(loaded == .success([expected]))
    }

    @Test func aTornLastLineIsSkipped() throws {
        let path = self.temporaryPath()
        do {
            _ = try JournalSessionStore(path: path).save(SessionFixture.active().session)
        }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"session":{"id":"tor"#.utf8))
        try handle.close()
        let reopened = try JournalSessionStore(path: path)
        #expect(reopened.skippedLines == 1)
        #expect(reopened.sessions.count == 1)
        var session = SessionFixture.active().session
        session.id = "after1"
        _ = try reopened.save(session)
        #expect(try JournalSessionStore(path: path).sessions.count == 2)
    }

    @Test func compactionKeepsLiveSessionsAndDropsOldFinalOnes() throws {
        let path = self.temporaryPath()
        let store = try JournalSessionStore(path: path)
        var live = SessionFixture.active()
        var saved = try store.save(live.session)
        for seconds in [10, 20] {
            _ = try live.extend(by: 60, actor: DebugSessionActor(subject: SessionFixture.alice), reason: nil,
                                now: SessionFixture.now + Double(seconds))
            var next = live.session
            next.storeVersion = saved.storeVersion
            saved = try store.save(next)
        }
        var ended = SessionFixture.active()
        _ = ended.handleTimer(now: SessionFixture.now + 1000)
        var endedSession = ended.session
        endedSession.id = "ended1"
        _ = try store.save(endedSession)
        let dropped = try store.compact(now: SessionFixture.now + 1000 + 86400 * 8, retention: 86400 * 7)
        #expect(dropped == 1)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let reopened = try JournalSessionStore(path: path)
        #expect(reopened.sessions["abc123"] == saved)
        #expect(try reopened.save(saved).storeVersion == "4")
    }
}
