import Foundation

#if canImport(Controller)
    @testable import Controller  // the fuzz build compiles the controller's configuration into its one module, Tunnel
#endif
@testable import Tunnel

/// The controller's `--config` JSON file. Input: the file's bytes.
///
/// Properties (`ConfigurationFuzzCheck`): every refusal is a `ConfigurationError`; a file that decodes, written
/// back out with `JSONEncoder`, decodes to the same value and validates the same way.
enum ControllerConfigFuzzHarness {
    static let target = FuzzTarget("controller-config", run: Self.run)

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        try ConfigurationFuzzCheck.check(ControllerConfiguration.self, Data(input)) { try $0.validate() }
    }
}
