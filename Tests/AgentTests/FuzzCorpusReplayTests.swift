import Foundation
import TestSupport
import Testing
import Tunnel

/// Replays every committed input of this test target's fuzz targets through the harnesses the libFuzzer
/// executables run (`expectFuzzTargetReplays`, shared by the three test targets in TestSupport).
@Suite struct FuzzCorpusReplayTests {
    static let targets: [FuzzTarget] = [KubeconfigFuzzHarness.target, ConfigFuzzHarness.target]

    @Test(arguments: Self.targets.map(\.name))
    func replaysCorpusAndCrashes(target name: String) throws {
        try expectFuzzTargetReplays(try #require(Self.targets.first { $0.name == name }))
    }
}
