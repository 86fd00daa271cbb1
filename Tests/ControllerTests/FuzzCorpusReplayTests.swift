import Foundation
import Testing

import Tunnel

/// Replays every committed input of this test target's fuzz targets (Tests/Fuzz/corpus/TARGET and
/// Tests/Fuzz/crashes/TARGET) through the same harness functions the libFuzzer executables run, without the
/// sanitizer build: a crash found once stays fixed. (`FuzzTarget.replay`, in Tunnel, is shared by the three
/// test targets.)
@Suite struct FuzzCorpusReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")
    static let targets: [FuzzTarget] = [ServiceTokenFuzzHarness.target, ControllerConfigFuzzHarness.target]

    @Test(arguments: Self.targets.map(\.name))
    func replaysCorpusAndCrashes(target name: String) throws {
        let target = try #require(Self.targets.first { $0.name == name })
        let replay = try target.replay(from: Self.fuzzDirectory)
        #expect(replay.hasEntryFile, "missing \(replay.entryFile.path)")
        #expect(!replay.corpus.isEmpty, "no corpus in \(Self.fuzzDirectory.path)/corpus/\(name)")
        for finding in replay.findings {
            Issue.record(Comment(rawValue: finding))
        }
    }
}
