import Foundation
import Testing
import Tunnel

// What the three test targets share: one copy, in a target of its own, that each test target depends on.

/// The Python that tests run to check output with a Python library (PyYAML, prometheus_client):
/// `$PORTHOLE_PYTHON` (`make test` passes its `.venv`'s, made with Debian's own Python), else `python3` on `PATH`.
package let testPython = ProcessInfo.processInfo.environment["PORTHOLE_PYTHON"] ?? "python3"

/// A fresh directory under the system temporary directory, removed when the value is released.
package final class TemporaryDirectory {
    package let path: String

    package init() throws {
        self.path = NSTemporaryDirectory() + "porthole-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }

    /// Writes `contents` to `name` in the directory and returns the file's path.
    package func write(_ name: String, _ contents: String) throws -> String {
        let file = "\(self.path)/\(name)"
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// Runs `body` and returns the `ConfigurationError` it throws, recording an issue if it throws none.
package func configurationError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation)
    -> ConfigurationError?
{
    do {
        try body()
        Issue.record("expected a ConfigurationError", sourceLocation: sourceLocation)
    } catch let error as ConfigurationError {
        return error
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The field named by the `.invalid` error `body` throws.
package func invalidField(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    guard case .invalid(let field, _)? = configurationError(body, sourceLocation: sourceLocation) else { return nil }
    return field
}

/// `Tests/Fuzz`, where the fuzz targets' entry files, corpus and crash reproducers are.
package let fuzzDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

/// Replays every committed input of `target` (Tests/Fuzz/corpus/TARGET and Tests/Fuzz/crashes/TARGET) through the
/// harness the libFuzzer executable runs, without the sanitizer build: a crash found once stays fixed.
package func expectFuzzTargetReplays(_ target: FuzzTarget, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let replay = try target.replay(from: fuzzDirectory)
    #expect(replay.hasEntryFile, "missing \(replay.entryFile.path)", sourceLocation: sourceLocation)
    #expect(!replay.corpus.isEmpty, "no corpus in \(fuzzDirectory.path)/corpus/\(target.name)",
            sourceLocation: sourceLocation)
    for finding in replay.findings {
        Issue.record(Comment(rawValue: finding), sourceLocation: sourceLocation)
    }
}
