import Foundation

#if canImport(Agent)
    @testable import Agent  // the fuzz build compiles Agent's configuration files into its one module, Tunnel
#endif
@testable import Tunnel

/// The agent's JSON configuration files: its services file and its `--config` file. Input: a control byte
/// choosing the file (bit 0 clear: services file, set: agent configuration), then the file's bytes. The
/// controller's `--config` file is the `controller-config` target, in ControllerTests.
///
/// Properties (`ConfigurationFuzzCheck`): every refusal is a `ConfigurationError`; a file that decodes, written
/// back out with `JSONEncoder`, decodes to the same value and validates the same way.
enum ConfigFuzzHarness {
    static let target = FuzzTarget("config", run: Self.run)

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        var reader = FuzzInputReader(input)
        let control = reader.byte()
        let data = Data(reader.rest)
        if control & 1 == 0 {
            try ConfigurationFuzzCheck.check(ServicesFile.self, data) { try $0.validate() }
        } else {
            try ConfigurationFuzzCheck.check(AgentConfiguration.self, data) { try $0.validate() }
        }
    }
}
