import Foundation
import Synchronization

/// The reverse-HTTP/2 tunnel's own vocabulary: paths, headers and the hello exchange.
///
/// The controller is the HTTP/2 client; every user request is one stream carrying the original method, path and
/// end-to-end headers plus the `porthole-*` headers below.
package enum TunnelProtocol {
    package static let version = 1
    package static let alpn = "h2"

    /// The controller's first request on a new tunnel.
    package static let helloPath = "/.porthole/v1/hello"

    /// `TYPE/NAME` of the service a stream is for.
    package static let serviceHeader = "porthole-service"
    /// The request id both ends log.
    package static let requestIDHeader = "porthole-request-id"
    /// The authenticated user, for the agent's audit log.
    package static let userHeader = "porthole-user"
    /// The gateway identity the controller verified: its username (once) and groups (one field each). Users cannot
    /// send them: the controller drops every `porthole-*` header a user sends. The agent turns them into
    /// `Impersonate-User`/`Impersonate-Group` only for services with `impersonate: true`.
    package static let identityUserHeader = "porthole-identity-user"
    package static let identityGroupHeader = "porthole-identity-group"
    /// Set when the user asked for an HTTP/1.1 upgrade: the original `Upgrade` value.
    package static let upgradeHeader = "porthole-upgrade"
    /// On a response: the backend's real status when HTTP/2 cannot carry it (101).
    package static let statusHeader = "porthole-status"
    /// On a response: the error came from Porthole (agent), not from the backend.
    package static let errorHeader = "porthole-error"
    /// On the hello request: the controller's instance id.
    package static let instanceHeader = "porthole-instance"
    /// On the hello request: how many controller replicas serve, so that an agent reaching them through one
    /// load-balanced name keeps dialling until it holds a tunnel to each. Absent from older controllers.
    package static let replicasHeader = "porthole-replicas"
    /// The largest replica count an agent believes; anything above is ignored as nonsense.
    package static let maxReplicaCount = 1000

    /// The replica count of a `porthole-replicas` value: a whole number from 1 to `maxReplicaCount`, else nil.
    package static func replicaCount(_ value: String?) -> Int? {
        guard let value, let count = Int(value), count >= 1, count <= self.maxReplicaCount else { return nil }
        return count
    }

    /// SETTINGS_MAX_FRAME_SIZE both tunnel ends announce: a bulk stream moves in 64 KiB DATA frames, a quarter of
    /// the frames (and of the per-frame work at both ends) that the 16 KiB default would take.
    package static let maxFrameSize: UInt32 = 64 * 1024

    /// The largest header list a tunnel end accepts: the controller's largest user header section
    /// (`maxHeaderBytes` may be up to 16 MiB) plus room for the `porthole-*` headers. Bounded, unlike nghttp2's
    /// default, so no peer can make a tunnel end expand an HPACK bomb.
    package static let maxHeaderListSize: UInt32 = (16 << 20) + (64 << 10)

    /// The HTTP/2 settings of both tunnel ends.
    ///
    /// The rapid-reset guard is sized for a multiplexer: every user's cancellations cross the tunnel as resets,
    /// so counting them against the tunnel would let any user take it down for everyone. The controller limits
    /// cancellations per user (`CancellationBudget`) before they reach the tunnel.
    package static func settings(streamWindow: Int, maxHeaderListSize: UInt32 = Self.maxHeaderListSize)
        -> HTTP2Settings
    {
        var settings = HTTP2Settings()
        settings.streamWindow = Int32(streamWindow)
        settings.validateHTTPMessaging = false
        settings.maxFrameSize = self.maxFrameSize
        settings.maxHeaderListSize = maxHeaderListSize
        settings.streamResetBurst = UInt64(Int32.max)
        settings.streamResetsPerSecond = UInt64(Int32.max)
        return settings
    }

    /// Whether a tunnel stream is the controller's own hello rather than a user request. User requests always
    /// carry `porthole-service` (the controller sets it and strips any `porthole-*` header a user sends), so a
    /// user's path, even `/.porthole/v1/hello`, never reaches the tunnel protocol.
    package static func isHello(_ headers: [HTTPField]) -> Bool {
        var path: String?
        for field in headers {
            if field.name == self.serviceHeader { return false }
            if field.name == ":path" { path = field.value }
        }
        return path == self.helloPath
    }

    /// The forwarding headers the controller adds for a user connecting from `peerHost`.
    package static func forwardingHeaders(peerHost: String) -> [HTTPField] {
        let node = peerHost.contains(":") ? "\"[\(peerHost)]\"" : peerHost
        return [
            HTTPField("x-forwarded-for", peerHost), HTTPField("x-forwarded-proto", "https"),
            HTTPField("forwarded", "for=\(node);proto=https"),
        ]
    }
}

/// What the agent answers to the hello.
package struct AgentHello: Codable, Sendable, Equatable {
    package var name: String
    package var protocolVersion: Int
    package var agentVersion: String
    package var annotations: [String: String]
    package var services: [AdvertisedService]

    package init(name: String, protocolVersion: Int, agentVersion: String, annotations: [String: String],
                 services: [AdvertisedService]) {
        self.name = name
        self.protocolVersion = protocolVersion
        self.agentVersion = agentVersion
        self.annotations = annotations
        self.services = services
    }
}

/// A service as the agent advertises it: no URL, no credentials.
package struct AdvertisedService: Codable, Sendable, Equatable, Hashable {
    package var type: String
    package var name: String
    package var annotations: [String: String]

    package init(type: String, name: String, annotations: [String: String]) {
        self.type = type
        self.name = name
        self.annotations = annotations
    }
}

/// Short random identifiers for requests and sessions.
package enum RandomID {
    /// `bytes` bytes from the system's cryptographic generator, as lowercase hex: for identifiers that must not
    /// be guessed (token IDs) or that are made rarely.
    package static func make(bytes: Int = 8) -> String {
        var generator = SystemRandomNumberGenerator()
        return self.hex(bytes: bytes) { generator.next() }
    }

    private static let requestKey: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    private static let requestCounter = Atomic<UInt64>(0)

    /// A 16-hex-digit request ID without a system call: SplitMix64 of a process-wide counter under a random key
    /// drawn once at start. Unique within the process for 2^64 requests and not sequential to the eye; not for
    /// anything that must resist guessing.
    package static func request() -> String {
        let index = self.requestCounter.wrappingAdd(1, ordering: .relaxed).newValue
        var z = (index &* 0x9E37_79B9_7F4A_7C15) ^ self.requestKey
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return self.hex(bytes: 8) { z }
    }

    private static func hex(bytes: Int, _ next: () -> UInt64) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes * 2)
        var word: UInt64 = 0
        for index in 0..<bytes {
            if index % 8 == 0 { word = next() }
            let byte = Int(word & 0xff)
            word >>= 8
            text.append(Hex.digits[byte >> 4])
            text.append(Hex.digits[byte & 0xf])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
