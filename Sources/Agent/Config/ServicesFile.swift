import Foundation
import Tunnel

/// The agent's services file: `{"services": [ServiceDefinition]}`.
package struct ServicesFile: Codable, Sendable, Equatable {
    /// The services, in file order.
    package var services: [ServiceDefinition]

    /// A file's contents.
    package init(services: [ServiceDefinition]) {
        self.services = services
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case services }

    /// Decodes `{"services": [...]}`; a missing list is empty (which `validate` refuses), unknown fields are an
    /// error.
    package init(from decoder: any Decoder) throws {
        try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.services = try container.decodeIfPresent([ServiceDefinition].self, forKey: .services) ?? []
    }

    /// Reads, resolves relative paths against the file's directory, and validates the file at `path`.
    ///
    /// - Throws: `ConfigurationError.unreadableFile`, `.syntax` (line and column), or `.malformedFile` (types,
    ///   unknown fields, values) naming the file, the entry and the field, e.g. `services.json: services[2].url: …`.
    package static func load(path: String) throws -> ServicesFile {
        let file = try ConfigurationFile.read(ServicesFile.self, path: path)
        let directory = ConfigurationFile.directory(of: path)
        let resolved = ServicesFile(services: file.services.map { $0.resolvingPaths(relativeTo: directory) })
        try resolved.validate(path: path)
        return resolved
    }

    /// Decodes and validates JSON `data`; `path` only names the source in errors. Paths stay as written.
    package static func decode(_ data: Data, path: String = "services file") throws -> ServicesFile {
        let file = try ConfigurationFile.decode(ServicesFile.self, from: data, path: path)
        try file.validate(path: path)
        return file
    }

    /// `validate()`, with the file named in the error.
    func validate(path: String) throws {
        do {
            try self.validate()
        } catch ConfigurationError.invalid(let field, let reason) {
            throw ConfigurationError.malformedFile(path: path, reason: "\(field): \(reason)")
        }
    }

    /// Checks that there is at least one service, every service, and that no two share a type and name.
    package func validate() throws {
        // An agent without services holds a tunnel that can serve nothing: almost surely the wrong file.
        guard !self.services.isEmpty else {
            throw ConfigurationError.invalid(
                field: "services", reason: "no services: list at least one (see docs/configuration.md)")
        }
        var seen: [String: Int] = [:]
        for (index, service) in self.services.enumerated() {
            try service.validate(field: "services[\(index)]")
            let key = "\(service.type)/\(service.name)"
            if let first = seen[key] {
                throw ConfigurationError.invalid(
                    field: "services[\(index)].name",
                    reason: "\(service.type) service \"\(service.name)\" is already defined by services[\(first)]")
            }
            seen[key] = index
        }
    }
}
