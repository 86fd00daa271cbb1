import Foundation

// What every libFuzzer target shares (Tests/Fuzz/README.md): the harnesses live in three test targets (TunnelTests,
// AgentTests, ControllerTests) and are also compiled, all together, into the fuzz executables; these types are the
// one copy all of them reach. Nothing outside the fuzz harnesses and their replay tests uses them.

/// A property a fuzz harness checks did not hold for an input.
package struct FuzzFinding: Error, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }

    /// Throws a finding unless `condition` holds.
    package static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFinding) {
        if !condition { throw FuzzFinding(message()) }
    }
}

/// Reads control values off the front of a fuzz input, then hands over the rest; missing bytes read as zero so
/// every input is usable.
package struct FuzzInputReader {
    package private(set) var bytes: ArraySlice<UInt8>

    package init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
    }

    package mutating func byte() -> UInt8 {
        self.bytes.popFirst() ?? 0
    }

    /// Everything not read yet.
    package var rest: [UInt8] { Array(self.bytes) }
}

/// One fuzz target: its name (its entry file `Tests/Fuzz/NAME.swift`, its folders `Tests/Fuzz/corpus/NAME` and
/// `Tests/Fuzz/crashes/NAME`) and its one-input function. A harness returns normally for any input the code under
/// test handles correctly (refusing it included) and throws a `FuzzFinding` when a property it checks does not hold.
package struct FuzzTarget: Sendable {
    package let name: String
    package let run: @Sendable ([UInt8]) throws(FuzzFinding) -> Void

    package init(_ name: String, run: @escaping @Sendable ([UInt8]) throws(FuzzFinding) -> Void) {
        self.name = name
        self.run = run
    }

    /// The body of `LLVMFuzzerTestOneInput`: runs the harness on the bytes and traps on a finding, so libFuzzer
    /// saves the input as a crash.
    package func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            try self.run(input)
        } catch {
            fatalError("fuzz target \(self.name): \(error)")
        }
        return 0
    }

    /// What replaying the committed inputs under `fuzzDirectory` (the `Tests/Fuzz` folder) found.
    package struct Replay {
        /// The entry file `Tests/Fuzz/NAME.swift`, whether it exists.
        package var entryFile: URL
        package var hasEntryFile: Bool
        package var corpus: [URL]
        package var crashes: [URL]
        /// One line per input that threw a finding: the file's name and the finding.
        package var findings: [String]
    }

    /// Runs the harness once over every file of `corpus/NAME` and `crashes/NAME` under `fuzzDirectory`, in order of
    /// name, without the sanitizer build: a crash found once stays fixed.
    package func replay(from fuzzDirectory: URL) throws -> Replay {
        func files(_ kind: String) -> [URL] {
            let folder = fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(self.name)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
        }
        let entry = fuzzDirectory.appendingPathComponent("\(self.name).swift")
        var replay = Replay(
            entryFile: entry, hasEntryFile: FileManager.default.fileExists(atPath: entry.path),
            corpus: files("corpus"), crashes: files("crashes"), findings: [])
        for file in replay.corpus + replay.crashes {
            let input = try [UInt8](Data(contentsOf: file))
            do {
                try self.run(input)
            } catch {
                replay.findings.append("\(self.name) \(file.lastPathComponent): \(error)")
            }
        }
        return replay
    }
}

/// The configuration-file property the `config` (agent) and `controller-config` targets check: every refusal is
/// a `ConfigurationError`; a file that decodes, written back out with `JSONEncoder`, decodes to the same value and
/// validates the same way.
package enum ConfigurationFuzzCheck {
    package static func check<File: Codable & Equatable>(
        _ type: File.Type, _ data: Data, validate: (File) throws -> Void
    ) throws(FuzzFinding) {
        let file: File
        do {
            file = try ConfigurationFile.decode(type, from: data, path: "fuzz.json")
        } catch {
            try FuzzFinding.check(error is ConfigurationError, "decoding threw \(error), not a ConfigurationError")
            _ = "\(error)"
            return
        }
        let validation = Self.outcome { try validate(file) }
        if case .failure(let error) = validation {
            try FuzzFinding.check(error is ConfigurationError, "validate threw \(error), not a ConfigurationError")
        }
        let encoded: Data
        do {
            encoded = try JSONEncoder().encode(file)
        } catch {
            throw FuzzFinding("a decoded \(type) does not encode: \(error)")
        }
        let again: File
        do {
            again = try ConfigurationFile.decode(type, from: encoded, path: "fuzz.json")
        } catch {
            throw FuzzFinding("\(type) written back out is refused (\(error)): \(String(decoding: encoded, as: UTF8.self))")
        }
        try FuzzFinding.check(again == file, "\(type) changed through JSON: \(file) became \(again)")
        let validationAgain = Self.outcome { try validate(again) }
        try FuzzFinding.check(
            "\(validation)" == "\(validationAgain)",
            "validation changed through JSON: \(validation) became \(validationAgain)")
    }

    private static func outcome(_ body: () throws -> Void) -> Result<Void, any Error> {
        do {
            try body()
            return .success(())
        } catch {
            return .failure(error)
        }
    }
}
