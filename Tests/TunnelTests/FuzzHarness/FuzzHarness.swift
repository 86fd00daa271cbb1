import Foundation

/// The one-input logic of every libFuzzer target, compiled twice: into the fuzz executables with the
/// `Tests/Fuzz/<target>.swift` entry points (see `Tests/Fuzz/build.sh`), and into the unit tests, which replay the
/// committed corpus and crashes through the same functions.
///
/// A harness returns normally for any input the code under test handles correctly (refusing it included) and throws
/// a `FuzzFinding` when a property it checks does not hold; a crash in the code under test is a finding too.
enum FuzzHarness {
    /// One target: its name (the folder under `Tests/Fuzz/corpus`) and its one-input function.
    struct Target: Sendable {
        let name: String
        let run: @Sendable ([UInt8]) throws(FuzzFinding) -> Void
    }

    /// Every target, by the name used for its executable, corpus and crash folders.
    static let targets: [Target] = [
        Target(name: "http1", run: HTTP1FuzzHarness.run),
        Target(name: "kubeconfig", run: KubeconfigFuzzHarness.run),
        Target(name: "service-token", run: ServiceTokenFuzzHarness.run),
        Target(name: "jose", run: JOSEFuzzHarness.run),
        Target(name: "config", run: ConfigFuzzHarness.run),
        Target(name: "http2-server", run: { (input) throws(FuzzFinding) in try HTTP2FuzzHarness.run(input, .server) }),
        Target(name: "http2-client", run: { (input) throws(FuzzFinding) in try HTTP2FuzzHarness.run(input, .client) }),
    ]

    /// The body of `LLVMFuzzerTestOneInput`: runs `name` on the bytes and traps on a finding, so libFuzzer saves
    /// the input as a crash.
    static func fuzz(_ name: String, _ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        guard let target = Self.targets.first(where: { $0.name == name }) else {
            preconditionFailure("no fuzz target named \(name)")
        }
        let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            try target.run(input)
        } catch {
            fatalError("fuzz target \(name): \(error)")
        }
        return 0
    }
}

/// A property a harness checks did not hold for an input.
struct FuzzFinding: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }

    /// Throws a finding unless `condition` holds.
    static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFinding) {
        if !condition { throw FuzzFinding(message()) }
    }
}

/// Reads control values off the front of a fuzz input, then hands over the rest; missing bytes read as zero so
/// every input is usable.
struct FuzzInputReader {
    private(set) var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
    }

    mutating func byte() -> UInt8 {
        self.bytes.popFirst() ?? 0
    }

    /// Everything not read yet.
    var rest: [UInt8] { Array(self.bytes) }
}
