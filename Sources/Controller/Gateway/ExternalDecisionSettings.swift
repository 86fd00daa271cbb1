import Foundation

/// Where to ask a second opinion (an OPA-style data API) after the policy allows a request, and how long to wait.
struct ExternalDecisionSettings: Sendable, Equatable, Codable {
    /// `http` or `https` URL of the decision, e.g. `http://127.0.0.1:8181/v1/data/porthole/allow`.
    var url: String
    /// How long to wait for the answer before denying.
    var timeoutSeconds: Double

    /// The usual wait: two seconds.
    static let defaultTimeoutSeconds = 2.0

    /// Asks `url`, waiting `timeoutSeconds`.
    init(url: String, timeoutSeconds: Double = Self.defaultTimeoutSeconds) {
        self.url = url
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case url, timeoutSeconds }

    /// Decodes `externalDecision`; `url` is required, unknown fields are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.url = try container.decode(String.self, forKey: .url)
        self.timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
            ?? Self.defaultTimeoutSeconds
    }

    func validate(field: String) throws(PolicyFile.Invalid) {
        guard let components = URLComponents(string: self.url), let scheme = components.scheme?.lowercased(),
            ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty
        else {
            throw PolicyFile.Invalid(
                field: "\(field).url", reason: "\"\(self.url)\" is not an http or https URL with a host")
        }
        guard self.timeoutSeconds.isFinite, self.timeoutSeconds > 0, self.timeoutSeconds <= 60 else {
            throw PolicyFile.Invalid(
                field: "\(field).timeoutSeconds",
                reason: "must be more than 0 and at most 60, got \(self.timeoutSeconds)")
        }
    }
}
