import Foundation

@testable import Tunnel

/// The JSON configuration files: the agent's services file, the controller's and the agent's `--config` files.
/// Input: a control byte choosing the file (0 services, 1 controller, 2 agent), then the file's bytes.
///
/// Properties: every refusal is a `ConfigurationError`; a file that decodes, written back out with
/// `JSONEncoder`, decodes to the same value and validates the same way.
enum ConfigFuzzHarness {
    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        var reader = FuzzInputReader(input)
        let control = reader.byte()
        let data = Data(reader.rest)
        switch control % 3 {
        case 0: try Self.check(ServicesFile.self, data) { try $0.validate() }
        case 1: try Self.check(ControllerConfiguration.self, data) { try $0.validate() }
        default: try Self.check(AgentConfiguration.self, data) { try $0.validate() }
        }
    }

    static func check<File: Codable & Equatable>(
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

    static func outcome(_ body: () throws -> Void) -> Result<Void, any Error> {
        do {
            try body()
            return .success(())
        } catch {
            return .failure(error)
        }
    }
}
