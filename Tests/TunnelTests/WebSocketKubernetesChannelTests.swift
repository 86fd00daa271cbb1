import Testing

@testable import Tunnel

/// The Kubernetes channel protocol helpers: stream ids, resize, v5's close, the error stream's status.
@Suite struct WebSocketKubernetesChannelTests {
    @Test func encodeAndDecode() {
        #expect(KubernetesChannel.encode(.stdin, Array("ls\r".utf8)) == [0, 0x6C, 0x73, 0x0D])
        let decoded = KubernetesChannel.decode([1, 0x68, 0x69])
        #expect(decoded?.channel == .stdout && decoded.map { Array($0.payload) } == [0x68, 0x69])
        #expect(KubernetesChannel.decode([2])?.payload.isEmpty == true)
        #expect(KubernetesChannel.decode([]) == nil)
        #expect(KubernetesChannel.decode([5, 1]) == nil)
        #expect(KubernetesChannel.decode([255, 0])?.channel == .close)
    }

    @Test func resizeAndClose() {
        #expect(KubernetesChannel.resize(width: 120, height: 40) == [4] + Array(#"{"Width":120,"Height":40}"#.utf8))
        #expect(KubernetesChannel.closeStream(.stdin, protocol: .v5) == [255, 0])
        #expect(KubernetesChannel.closeStream(.stdin, protocol: .v4) == nil)
        #expect(KubernetesChannelProtocol.offered == ["v5.channel.k8s.io", "v4.channel.k8s.io"])
    }

    @Test func errorStreamStatus() {
        #expect(KubernetesChannel.exitStatus(fromErrorStream: Array(#"{"metadata":{},"status":"Success"}"#.utf8))
                == .exited(code: 0))
        let nonZero = #"""
            {"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 42",
            "reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}
            """#
        #expect(KubernetesChannel.exitStatus(fromErrorStream: Array(nonZero.utf8)) == .exited(code: 42))
        let gone = #"{"status":"Failure","message":"container not found (\"x\")"}"#
        #expect(KubernetesChannel.exitStatus(fromErrorStream: Array(gone.utf8))
                == .failure(message: #"container not found ("x")"#))
        #expect(KubernetesChannel.exitStatus(fromErrorStream: Array("plain text".utf8))
                == .failure(message: "plain text"))
    }
}
