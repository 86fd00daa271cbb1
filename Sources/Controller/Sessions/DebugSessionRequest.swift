import Foundation

/// A request to start a debug session, as the REST API receives it:
/// `{cluster, namespace, pod, image, targetContainer?, command?, duration?, reason, profile?}`.
struct DebugSessionRequest: Sendable, Equatable, Codable {
    /// The agent name.
    var cluster: String
    var namespace: String
    var pod: String
    var image: String
    /// A container of the pod whose process namespace the debug container shares.
    var targetContainer: String?
    /// The debug container's command; absent runs the image's entrypoint.
    var command: [String]?
    /// How long; absent takes the binding's default.
    var duration: DebugDuration?
    /// Why; required, written to the audit trail and shown to approvers.
    var reason: String
    /// A weaker profile than the binding's, e.g. `restricted` in a namespace that refuses more.
    var profile: SecurityProfile?

    init(cluster: String, namespace: String, pod: String, image: String, targetContainer: String? = nil,
         command: [String]? = nil, duration: DebugDuration? = nil, reason: String, profile: SecurityProfile? = nil) {
        self.cluster = cluster
        self.namespace = namespace
        self.pod = pod
        self.image = image
        self.targetContainer = targetContainer
        self.command = command
        self.duration = duration
        self.reason = reason
        self.profile = profile
    }

    /// The longest reason, in characters.
    static let maxReasonLength = 1000
    /// The most command arguments, and the most UTF-8 bytes they hold together.
    static let maxCommandArguments = 64
    static let maxCommandBytes = 16384

    /// Decodes a request body; the error names the field.
    static func decode(_ body: [UInt8]) throws(DebugSessionError) -> DebugSessionRequest {
        do {
            return try JSONDecoder().decode(DebugSessionRequest.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, _) {
            throw DebugSessionError(.invalid, "field \(key.stringValue) is required")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw DebugSessionError(.invalid, "field \(Self.path(context.codingPath)) has the wrong type")
        } catch let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.isEmpty ? "body" : "field \(Self.path(context.codingPath))"
            throw DebugSessionError(.invalid, "\(field): \(context.debugDescription)")
        } catch {
            throw DebugSessionError(.invalid, "body is not a JSON object")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    /// Checks the request against what `decision` allowed (`debug` on the namespace) and the namespace's
    /// PodSecurity `enforce` label; returns what the session will be.
    ///
    /// Checks, in order: the decision; names; the reason; the duration (default and maximum); the image
    /// (`ImageRule.check`); the target container; the command; the profile (`ProfileChoice`).
    func validate(decision: PolicyDecision, namespaceEnforceLevel: String?)
        throws(DebugSessionError) -> ValidatedDebugSessionRequest
    {
        guard decision.isAllowed, let limits = decision.debugLimits else {
            throw DebugSessionError(.forbidden, decision.reason)
        }
        if let problem = KubernetesName.problem(cluster: self.cluster) {
            throw DebugSessionError(.invalid, "cluster \(problem)")
        }
        if let problem = KubernetesName.labelProblem(self.namespace) {
            throw DebugSessionError(.invalid, "namespace \(problem)")
        }
        if let problem = KubernetesName.subdomainProblem(self.pod) {
            throw DebugSessionError(.invalid, "pod \(problem)")
        }
        let reason = self.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw DebugSessionError(.invalid, "a reason is required") }
        guard reason.count <= Self.maxReasonLength else {
            throw DebugSessionError(.invalid, "the reason is longer than \(Self.maxReasonLength) characters")
        }
        guard !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" })
        else { throw DebugSessionError(.invalid, "the reason has control characters") }

        let seconds = self.duration?.seconds ?? limits.defaultDurationSeconds
        guard seconds > 0 else { throw DebugSessionError(.invalid, "duration must be positive, got \(seconds)s") }
        guard seconds <= limits.maxDurationSeconds else {
            throw DebugSessionError(
                .limit, "duration \(DebugDuration.text(seconds)) is longer than the maximum "
                    + "\(DebugDuration.text(limits.maxDurationSeconds))")
        }

        let matchedImage: String
        switch limits.images.check(self.image) {
        case .allowed(let entry): matchedImage = entry
        case .denied(let why): throw DebugSessionError(.limit, why)
        }

        if let target = self.targetContainer {
            guard limits.allowTargetContainer else {
                throw DebugSessionError(.limit, "the policy does not allow a target container here")
            }
            if let problem = KubernetesName.labelProblem(target) {
                throw DebugSessionError(.invalid, "targetContainer \(problem)")
            }
            if target.hasPrefix(DebugSession.containerPrefix) {
                throw DebugSessionError(.invalid, "targetContainer must not be another debug container")
            }
        }

        if let command = self.command {
            guard !command.isEmpty else {
                throw DebugSessionError(.invalid, "command must not be empty; leave it out for the image's entrypoint")
            }
            guard command.count <= Self.maxCommandArguments,
                  command.reduce(0, { $0 + $1.utf8.count }) <= Self.maxCommandBytes
            else {
                throw DebugSessionError(
                    .invalid, "command is longer than \(Self.maxCommandArguments) arguments or "
                        + "\(Self.maxCommandBytes) bytes")
            }
            guard !command.contains(where: { $0.utf8.contains(0) }) else {
                throw DebugSessionError(.invalid, "command has a NUL character")
            }
        }

        let profile: SecurityProfile
        switch ProfileChoice.for(
            namespaceEnforceLevel: namespaceEnforceLevel, allowedByBinding: limits.securityProfile,
            requested: self.profile, namespace: self.namespace)
        {
        case .use(let chosen): profile = chosen
        case .refused(let why): throw DebugSessionError(.limit, why)
        }

        let binding: String
        switch decision.rule {
        case .binding(let index, let rule): binding = rule.name ?? "bindings[\(index)]"
        case .admin(let group): binding = "admin group \(group)"
        case nil: binding = ""
        }
        return ValidatedDebugSessionRequest(
            cluster: self.cluster, namespace: self.namespace, pod: self.pod, image: self.image,
            targetContainer: self.targetContainer, command: self.command, durationSeconds: seconds, reason: reason,
            profile: profile, limits: limits, binding: binding, matchedImageEntry: matchedImage)
    }
}

/// A request that passed `DebugSessionRequest.validate`: the duration resolved, the profile chosen, the limits
/// that apply.
struct ValidatedDebugSessionRequest: Sendable, Equatable {
    var cluster: String
    var namespace: String
    var pod: String
    var image: String
    var targetContainer: String?
    var command: [String]?
    var durationSeconds: Int
    /// Trimmed.
    var reason: String
    var profile: SecurityProfile
    var limits: DebugLimits
    /// The label of the binding that allowed it.
    var binding: String
    /// The allow-list entry that admitted the image, for the audit line.
    var matchedImageEntry: String
}

/// A session length: a number of seconds, or a string such as `"90s"`, `"15m"`, `"1h30m"`.
struct DebugDuration: Sendable, Equatable, Codable {
    var seconds: Int

    init(seconds: Int) { self.seconds = seconds }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Int.self) {
            self.seconds = seconds
            return
        }
        let text = try container.decode(String.self)
        guard let seconds = Self.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\"\(text)\" is not a duration (seconds, or like 90s, 15m, 1h30m)")
        }
        self.seconds = seconds
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.seconds)
    }

    /// `"1h30m"` → 5400; nil unless the text is one or more `<digits><h|m|s>` (or bare digits), each unit once,
    /// in that order, below a year.
    static func parse(_ text: String) -> Int? {
        if let seconds = Int(text), seconds >= 0 { return seconds }
        var total = 0
        var digits = ""
        var lastUnit = 0
        for character in text {
            if character.isASCII, character.isNumber {
                digits.append(character)
                guard digits.count <= 8 else { return nil }
                continue
            }
            let units: [Character: (Int, Int)] = ["h": (1, 3600), "m": (2, 60), "s": (3, 1)]
            guard let (order, size) = units[character], order > lastUnit, let value = Int(digits) else { return nil }
            total += value * size
            lastUnit = order
            digits = ""
        }
        guard digits.isEmpty, lastUnit > 0, total < 366 * 86400 else { return nil }
        return total
    }

    /// `5400` → `1h30m`, for messages.
    static func text(_ seconds: Int) -> String {
        let (hours, minutes, rest) = (seconds / 3600, seconds % 3600 / 60, seconds % 60)
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 { text += "\(minutes)m" }
        if rest > 0 || text.isEmpty { text += "\(rest)s" }
        return text
    }
}

/// Kubernetes name rules (`k8s.io/apimachinery/pkg/util/validation`), for what a session names.
enum KubernetesName {
    /// Why `name` is not a DNS-1123 label (namespaces, containers), or nil.
    static func labelProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 63 else { return "must be 1 to 63 characters, got \"\(name)\"" }
        return self.dnsProblem(name, allowsDots: false)
    }

    /// Why `name` is not a DNS-1123 subdomain (pods), or nil.
    static func subdomainProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 253 else { return "must be 1 to 253 characters, got \"\(name)\"" }
        return self.dnsProblem(name, allowsDots: true)
    }

    /// Why `name` cannot be an agent name in a path, or nil.
    static func problem(cluster name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 253,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        else { return "must be 1 to 253 letters, digits, '.', '_' or '-', got \"\(name)\"" }
        return nil
    }

    private static func dnsProblem(_ name: String, allowsDots: Bool) -> String? {
        let parts = allowsDots ? name.split(separator: ".", omittingEmptySubsequences: false) : [Substring(name)]
        for part in parts {
            let isValid = !part.isEmpty && part.utf8.count <= 63
                && part.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
                && part.utf8.first != 0x2d && part.utf8.last != 0x2d
            if !isValid {
                return "\"\(name)\" must be lowercase letters, digits and '-'\(allowsDots ? " and '.'" : ""), "
                    + "starting and ending with a letter or digit"
            }
        }
        return nil
    }
}
