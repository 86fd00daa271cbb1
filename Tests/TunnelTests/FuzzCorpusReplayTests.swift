import Foundation
import Testing

/// Replays every committed fuzz input (Tests/Fuzz/corpus and Tests/Fuzz/crashes) through the same harness functions
/// the libFuzzer targets run, without the sanitizer build: a crash found once stays fixed.
@Suite struct FuzzCorpusReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    /// The files of `Tests/Fuzz/KIND/TARGET`, sorted; none if the folder does not exist.
    static func inputs(_ kind: String, _ target: String) -> [URL] {
        let folder = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzHarness.targets.map(\.name))
    func replaysCorpusAndCrashes(target name: String) throws {
        let target = try #require(FuzzHarness.targets.first { $0.name == name })
        let corpus = Self.inputs("corpus", name)
        let crashes = Self.inputs("crashes", name)
        #expect(!corpus.isEmpty, "no corpus in \(Self.fuzzDirectory.path)/corpus/\(name)")
        for file in corpus + crashes {
            let input = try [UInt8](Data(contentsOf: file))
            do {
                try target.run(input)
            } catch {
                Issue.record("\(name) \(file.lastPathComponent): \(error)")
            }
        }
    }

    @Test func everyTargetHasAnEntryPoint() {
        for target in FuzzHarness.targets {
            let entry = Self.fuzzDirectory.appendingPathComponent("\(target.name).swift")
            #expect(FileManager.default.fileExists(atPath: entry.path), "missing \(entry.path)")
        }
    }
}
