/// The streams of the Kubernetes channel protocols (`vN.channel.k8s.io`) that `attach` and `exec` speak over
/// WebSocket: every binary message starts with the stream's id, the rest is that stream's bytes.
package enum KubernetesChannel: UInt8, Sendable, Equatable {
    case stdin = 0
    case stdout = 1
    case stderr = 2
    /// The API server's verdict when the process ends: a `metav1.Status` in JSON from v4 on.
    case error = 3
    /// Terminal size changes from the client, as JSON (v3 and later).
    case resize = 4
    /// v5: the payload's one byte names a stream this end will write no more to (stdin's end of file).
    case close = 255

    /// One message for `channel` carrying `payload`.
    package static func encode(_ channel: KubernetesChannel, _ payload: some Collection<UInt8>) -> [UInt8] {
        [channel.rawValue] + payload
    }

    /// A received message's stream and payload; nil for an empty message or an unknown stream id.
    package static func decode(_ message: [UInt8]) -> (channel: KubernetesChannel, payload: ArraySlice<UInt8>)? {
        guard let first = message.first, let channel = KubernetesChannel(rawValue: first) else { return nil }
        return (channel, message[1...])
    }

    /// The resize message: `{"Width":W,"Height":H}` on stream 4 (columns and rows, as `remotecommand` sends).
    package static func resize(width: UInt16, height: UInt16) -> [UInt8] {
        Self.encode(.resize, Array(#"{"Width":\#(width),"Height":\#(height)}"#.utf8))
    }

    /// The message that closes `stream` (v5 only; older protocols have no way to send stdin's end of file).
    package static func closeStream(
        _ stream: KubernetesChannel, protocol version: KubernetesChannelProtocol
    ) -> [UInt8]? {
        guard version.supportsClose else { return nil }
        return Self.encode(.close, [stream.rawValue])
    }

    /// What the error stream's message says about the process (v4 and v5: a `metav1.Status`).
    package static func exitStatus(fromErrorStream payload: some Collection<UInt8>) -> KubernetesExitStatus {
        guard let status = JSONValue.parse(Array(payload))?.object else {
            return .failure(message: String(decoding: payload, as: UTF8.self))
        }
        if status["status"]?.string == "Success" { return .exited(code: 0) }
        if status["reason"]?.string == "NonZeroExitCode",
           let causes = status["details"]?.object?["causes"]?.array,
           let cause = causes.first(where: { $0.object?["reason"]?.string == "ExitCode" }),
           let text = cause.object?["message"]?.string, let code = Int(text) {
            return .exited(code: code)
        }
        return .failure(message: status["message"]?.string ?? String(decoding: payload, as: UTF8.self))
    }
}

/// How a process behind `attach` or `exec` ended, as the error stream reports it.
package enum KubernetesExitStatus: Sendable, Equatable {
    /// The process exited with this code (0 for a `Success` status).
    case exited(code: Int)
    /// The API server reported another failure (the container is gone, the stream broke).
    case failure(message: String)
}

/// The channel protocol versions the controller offers, most preferred first.
package enum KubernetesChannelProtocol: String, Sendable, Equatable, CaseIterable {
    /// v4 plus the close stream (Kubernetes 1.30 and later).
    case v5 = "v5.channel.k8s.io"
    /// Resize and a JSON `metav1.Status` on the error stream (every supported API server).
    case v4 = "v4.channel.k8s.io"

    /// What the controller offers in `Sec-WebSocket-Protocol`: v5, then v4. Older versions are not offered: v3's
    /// error stream is free text, and v1–v2 cannot resize.
    package static let offered: [String] = Self.allCases.map(\.rawValue)

    /// Whether stream 255 (close) exists.
    package var supportsClose: Bool { self == .v5 }
}
