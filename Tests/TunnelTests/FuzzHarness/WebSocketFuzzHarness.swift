@testable import Tunnel

/// The WebSocket codec and handshake checks: `WebSocketFuzzEntry.parseUntrusted`, which reads the bytes as frames
/// (as a server and as a client, whole and split at the point the first byte picks), as handshake header lines and
/// as Kubernetes channel data. Input: the bytes.
///
/// Properties: no crash, and a split input gives the same actions as the whole one (the entry point's own
/// `precondition`s, so libFuzzer keeps the input).
enum WebSocketFuzzHarness {
    static let target = FuzzTarget("websocket", run: Self.run)

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        WebSocketFuzzEntry.parseUntrusted(input)
    }
}
