/// A binding's limits on debug sessions: how long, how often renewed, who approves, which images, which
/// security profile. Parsed and validated with the policy; debug sessions enforce them.
struct DebugLimits: Sendable, Equatable, Codable {
    /// Session length when the request does not say.
    var defaultDurationSeconds: Int
    /// Longest session, and longest remaining time after an extension.
    var maxDurationSeconds: Int
    /// How many times a session may be extended.
    var maxRenewals: Int
    /// Whether an extension needs an approver, as creation does when `approval.required`.
    var renewalNeedsApproval: Bool
    /// Whether someone else must approve a session before it starts.
    var approval: ApprovalRule
    /// Which images a debug container may run.
    var images: ImageRule
    /// The securityContext a debug container gets, at most; the namespace's PodSecurity level may lower it.
    var securityProfile: SecurityProfile
    /// Whether a debug container may share a target container's process namespace.
    var allowTargetContainer: Bool
    /// Whether terminal input is recorded too (output and resizes always are).
    var recordInput: Bool
    /// Whether the owner may let others join the session's terminal.
    var allowSharing: Bool

    /// `defaultDurationSeconds` when not given: 15 minutes, or the maximum if that is shorter.
    static let standardDefaultDurationSeconds = 900
    /// `maxDurationSeconds` when not given: one hour.
    static let standardMaxDurationSeconds = 3600
    /// No session may be allowed longer than a week; a longer one is a typo.
    static let longestDurationSeconds = 7 * 24 * 3600

    /// Limits with every field at its default: 15 minutes, at most an hour, three renewals, no approval, no image
    /// allowed, the restricted profile.
    init() {
        self.defaultDurationSeconds = Self.standardDefaultDurationSeconds
        self.maxDurationSeconds = Self.standardMaxDurationSeconds
        self.maxRenewals = 3
        self.renewalNeedsApproval = false
        self.approval = ApprovalRule()
        self.images = ImageRule()
        self.securityProfile = .restricted
        self.allowTargetContainer = true
        self.recordInput = false
        self.allowSharing = false
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case defaultDurationSeconds, maxDurationSeconds, maxRenewals, renewalNeedsApproval, approval, images
        case securityProfile, allowTargetContainer, recordInput, allowSharing
    }

    /// Decodes a binding's `debug` object; every field is optional, unknown fields are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = DebugLimits()
        self.maxDurationSeconds = try container.decodeIfPresent(Int.self, forKey: .maxDurationSeconds)
            ?? defaults.maxDurationSeconds
        self.defaultDurationSeconds = try container.decodeIfPresent(Int.self, forKey: .defaultDurationSeconds)
            ?? min(defaults.defaultDurationSeconds, self.maxDurationSeconds)
        self.maxRenewals = try container.decodeIfPresent(Int.self, forKey: .maxRenewals) ?? defaults.maxRenewals
        self.renewalNeedsApproval = try container.decodeIfPresent(Bool.self, forKey: .renewalNeedsApproval)
            ?? defaults.renewalNeedsApproval
        self.approval = try container.decodeIfPresent(ApprovalRule.self, forKey: .approval) ?? defaults.approval
        self.images = try container.decodeIfPresent(ImageRule.self, forKey: .images) ?? defaults.images
        self.securityProfile = try container.decodeIfPresent(SecurityProfile.self, forKey: .securityProfile)
            ?? defaults.securityProfile
        self.allowTargetContainer = try container.decodeIfPresent(Bool.self, forKey: .allowTargetContainer)
            ?? defaults.allowTargetContainer
        self.recordInput = try container.decodeIfPresent(Bool.self, forKey: .recordInput) ?? defaults.recordInput
        self.allowSharing = try container.decodeIfPresent(Bool.self, forKey: .allowSharing) ?? defaults.allowSharing
    }

    /// Checks durations, renewals, approval and images; `field` (e.g. `bindings[2].debug`) prefixes errors.
    func validate(field: String) throws(PolicyFile.Invalid) {
        for (name, value) in [("maxDurationSeconds", self.maxDurationSeconds),
                              ("defaultDurationSeconds", self.defaultDurationSeconds)]
        where value <= 0 || value > Self.longestDurationSeconds {
            throw PolicyFile.Invalid(
                field: "\(field).\(name)", reason: "must be between 1 and \(Self.longestDurationSeconds), got \(value)")
        }
        guard self.defaultDurationSeconds <= self.maxDurationSeconds else {
            throw PolicyFile.Invalid(
                field: "\(field).defaultDurationSeconds",
                reason: "must be at most maxDurationSeconds (\(self.maxDurationSeconds)), got "
                    + "\(self.defaultDurationSeconds)")
        }
        guard self.maxRenewals >= 0 else {
            throw PolicyFile.Invalid(
                field: "\(field).maxRenewals", reason: "must be 0 or more, got \(self.maxRenewals)")
        }
        try self.approval.validate(field: "\(field).approval")
        if self.renewalNeedsApproval, self.approval.approverGroups.isEmpty {
            throw PolicyFile.Invalid(
                field: "\(field).renewalNeedsApproval", reason: "needs approval.approverGroups to name who approves")
        }
        try self.images.validate(field: "\(field).images")
    }
}

/// Who must approve a debug session before it starts.
struct ApprovalRule: Sendable, Equatable, Codable {
    /// Whether a session waits in `PendingApproval` until someone approves it.
    var required: Bool
    /// Groups whose members may approve (never their own requests).
    var approverGroups: [String]
    /// How long a request waits for approval before it expires.
    var pendingExpirySeconds: Int

    /// No approval; pending requests (if renewals need approval) expire after an hour.
    init(required: Bool = false, approverGroups: [String] = [], pendingExpirySeconds: Int = 3600) {
        self.required = required
        self.approverGroups = approverGroups
        self.pendingExpirySeconds = pendingExpirySeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case required, approverGroups, pendingExpirySeconds }

    /// Decodes `approval`; every field is optional, unknown fields are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.required = try container.decodeIfPresent(Bool.self, forKey: .required) ?? false
        self.approverGroups = try container.decodeIfPresent([String].self, forKey: .approverGroups) ?? []
        self.pendingExpirySeconds = try container.decodeIfPresent(Int.self, forKey: .pendingExpirySeconds) ?? 3600
    }

    func validate(field: String) throws(PolicyFile.Invalid) {
        if self.required, self.approverGroups.isEmpty {
            throw PolicyFile.Invalid(
                field: "\(field).approverGroups", reason: "must name at least one group when approval is required")
        }
        try PolicyFile.checkGroupNames(self.approverGroups, field: "\(field).approverGroups")
        guard self.pendingExpirySeconds > 0, self.pendingExpirySeconds <= DebugLimits.longestDurationSeconds else {
            throw PolicyFile.Invalid(
                field: "\(field).pendingExpirySeconds",
                reason: "must be between 1 and \(DebugLimits.longestDurationSeconds), got \(self.pendingExpirySeconds)")
        }
    }
}

/// The securityContext profile of a debug container, named after the Pod Security Standards levels.
enum SecurityProfile: String, Sendable, Equatable, Codable, CaseIterable, Comparable {
    /// Non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp.
    case restricted
    /// What the baseline level admits: root allowed, default capabilities.
    case baseline
    /// Anything, including privileged containers.
    case privileged

    static func < (lhs: SecurityProfile, rhs: SecurityProfile) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }

    /// Decodes a profile name; the error lists the known ones.
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let profile = SecurityProfile(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(name)\" is not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = profile
    }
}
