import Testing

@testable import Tunnel

/// Randomized inputs through `WebSocketFuzzEntry.parseUntrusted`, the function a libFuzzer target calls: mutated
/// frame sequences must never crash nor give different actions when split. A failing seed replays with
/// `HTTP1FuzzRandom(seed:)`.
@Suite struct WebSocketFuzzTests {
    typealias S = WebSocketTestSupport

    static let seeds: [[UInt8]] = [
        S.client(.text, "hello"),
        S.client(.text, "hé", isFinal: false) + S.client(.ping, "p") + S.client(.continuation, "llo €"),
        S.client(.binary, [UInt8](repeating: 1, count: 130), isFinal: false) + S.client(.continuation, [2]),
        S.client(.close, S.closePayload(1000, Array("bye".utf8))),
        S.server(.binary, [1, 0x68, 0x69]) + S.server(.pong, []) + S.server(.close, S.closePayload(1001)),
        S.server(.text, [UInt8](repeating: 0x61, count: 250)),
        Array("Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n".utf8)
            + Array("Sec-WebSocket-Version: 13\nSec-WebSocket-Protocol: v4.channel.k8s.io\n".utf8),
        Array("Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n".utf8),
        Array(#"{"status":"Failure","reason":"NonZeroExitCode","#.utf8)
            + Array(#""details":{"causes":[{"reason":"ExitCode","message":"1"}]}}"#.utf8),
    ]

    @Test func mutatedInputsNeverCrash() {
        var random = HTTP1FuzzRandom(seed: 0x0057_EB50_C4E7_0001)
        for _ in 0..<5000 {
            var input = Self.seeds.randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...6, using: &random) where !input.isEmpty {
                let index = Int.random(in: 0..<input.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: input[index] = UInt8.random(in: 0...255, using: &random)
                case 1: input.remove(at: index)
                case 2: input.insert(UInt8.random(in: 0...255, using: &random), at: index)
                default: input[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                }
            }
            WebSocketFuzzEntry.parseUntrusted(input)
        }
        for seed in Self.seeds { WebSocketFuzzEntry.parseUntrusted(seed) }
        WebSocketFuzzEntry.parseUntrusted([])
    }

    @Test func randomBytesNeverCrash() {
        var random = HTTP1FuzzRandom(seed: 0x0057_EB50_C4E7_0002)
        for _ in 0..<3000 {
            WebSocketFuzzEntry.parseUntrusted((0..<Int.random(in: 0...64, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            })
        }
    }
}
