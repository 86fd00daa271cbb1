import Testing

@testable import Tunnel

/// The frame layer and the message layer of `WebSocketStateMachine`, each input also fed in random pieces.
@Suite struct WebSocketStateMachineTests {
    typealias S = WebSocketTestSupport
    typealias Action = WebSocketStateMachine.Action

    // MARK: Messages and fragmentation

    @Test func singleFrameTextAndBinary() {
        #expect(S.feed(S.client(.text, "Hello")) == [.text("Hello")])
        #expect(S.feed(S.client(.binary, [0, 1, 255])) == [.binary([0, 1, 255])])
        #expect(S.feed(S.client(.text, [])) == [.text("")])
    }

    @Test func rfcExampleFrames() {
        // RFC 6455 §5.7: an unmasked "Hello" from a server, a masked one from a client, a fragmented one.
        #expect(S.feed([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F], role: .client) == [.text("Hello")])
        #expect(S.feed([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]) == [.text("Hello")])
        #expect(S.feed([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F], role: .client) == [.text("Hello")])
        #expect(S.client(.text, "Hello") == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    }

    @Test func fragmentedMessagesAreJoined() {
        let text = S.client(.text, "Hel", isFinal: false) + S.client(.continuation, "l", isFinal: false)
            + S.client(.continuation, "o")
        #expect(S.feed(text) == [.text("Hello")])
        let binary = S.client(.binary, [1, 2], isFinal: false) + S.client(.continuation, [], isFinal: false)
            + S.client(.continuation, [3])
        #expect(S.feed(binary + S.client(.text, "next")) == [.binary([1, 2, 3]), .text("next")])
    }

    @Test func controlFramesBetweenFragments() {
        let bytes = S.client(.text, "fra", isFinal: false) + S.client(.ping, "p1")
            + S.client(.continuation, "gme", isFinal: false) + S.client(.pong, "p2") + S.client(.ping, [])
            + S.client(.continuation, "nted")
        #expect(S.feed(bytes) == [
            .write(S.server(.pong, Array("p1".utf8))), .pong(Array("p2".utf8)), .write(S.server(.pong, [])),
            .text("fragmented"),
        ])
    }

    @Test func closeBetweenFragmentsEndsTheConnection() {
        let bytes = S.client(.binary, [1], isFinal: false) + S.client(.close, S.closePayload(1000))
        #expect(S.feed(bytes) == [S.serverClose(.normalClosure), .peerClosed(code: .normalClosure, reason: ""),
                                  .closeTransport])
    }

    @Test func fragmentationErrors() {
        #expect(S.failure(.protocolError, S.feed(S.client(.continuation, "x"))))
        #expect(S.failure(.protocolError, S.feed(S.client(.text, "a", isFinal: false) + S.client(.text, "b"))))
        #expect(S.failure(.protocolError, S.feed(S.client(.text, "a", isFinal: false) + S.client(.binary, [1]))))
        #expect(S.failure(.protocolError, S.feed(S.raw(0x09, length7: 0))))  // ping without FIN
        #expect(S.failure(.protocolError, S.feed(S.raw(0x08, length7: 2, payload: [3, 232]))))
    }

    // MARK: Frame header

    @Test func reservedBitsAndOpcodesAreRefused() {
        for first: UInt8 in [0xC1, 0xA1, 0x91, 0xF1] {
            #expect(S.failure(.protocolError, S.feed(S.raw(first, length7: 0))))
        }
        for opcode: UInt8 in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            #expect(S.failure(.protocolError, S.feed(S.raw(0x80 | opcode, length7: 0))))
        }
    }

    @Test func lengthEncodings() {
        for count in [0, 125, 126, 127, 65535, 65536, 70000] {
            let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0) }
            #expect(S.feed(S.client(.binary, payload), splits: 3) == [.binary(payload)])
            #expect(S.feed(S.server(.binary, payload), role: .client, splits: 3) == [.binary(payload)])
        }
        #expect(S.client(.binary, [UInt8](repeating: 0, count: 126)).prefix(4) == [0x82, 0xFE, 0x00, 0x7E])
        #expect(S.server(.binary, [UInt8](repeating: 0, count: 65536)).prefix(10)
                == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    @Test func nonMinimalLengthsAreRefused() {
        #expect(S.failure(.protocolError, S.feed(S.raw(0x82, length7: 126, extended: [0, 125]))))
        #expect(S.failure(.protocolError, S.feed(S.raw(0x82, length7: 127, extended: [0, 0, 0, 0, 0, 0, 0xFF, 0xFF]))))
        #expect(S.failure(.protocolError, S.feed(S.raw(0x82, length7: 127, extended: [0x80, 0, 0, 0, 0, 0, 0, 0]))))
    }

    @Test func oversizedFramesAndMessagesAreRefusedWith1009() {
        let limits = WebSocketStateMachine.Limits(maximumFrameBytes: 1000, maximumMessageBytes: 1500)
        // Refused from the header alone: no payload is needed.
        let header = Array(S.client(.binary, [UInt8](repeating: 7, count: 1001)).prefix(8))
        let actions = S.feed(header, limits: limits)
        #expect(S.failure(.messageTooBig, actions))
        let huge = S.raw(0x82, length7: 127, extended: [0x7F] + [UInt8](repeating: 0xFF, count: 7))
        #expect(S.failure(.messageTooBig, S.feed(huge)))
        let fragments = S.client(.binary, [UInt8](repeating: 1, count: 1000), isFinal: false)
            + S.client(.continuation, [UInt8](repeating: 2, count: 501))
        #expect(S.failure(.messageTooBig, S.feed(fragments, limits: limits, splits: 5)))
        let exact = S.client(.binary, [UInt8](repeating: 1, count: 1000), isFinal: false)
            + S.client(.continuation, [UInt8](repeating: 2, count: 500))
        #expect(S.feed(exact, limits: limits, splits: 5).count == 1)
        #expect(S.failure(.protocolError, S.feed(S.raw(0x89, length7: 126, extended: [0, 126]))))
    }

    // MARK: Masking

    @Test func masking() {
        // A server requires masked frames; a client refuses them.
        #expect(S.failure(.protocolError, S.feed(S.server(.text, Array("hi".utf8)))))
        var client = S.machine(.client)
        let actions = client.receive(S.client(.text, "hi"))
        #expect(actions.count == 3 && actions[1] == .failed(.protocolError("masked frame from a server")))
        let close = WebSocketFrame.encode(.close, payload: S.closePayload(1002), maskingKey: 0xA1B2_C3D4)
        #expect(actions[0] == .write(close))
        // A client masks with its key; a server never masks.
        var sender = S.machine(.client)
        #expect(sender.sendText("Hello") == [.write(WebSocketFrame.encode(.text, payload: Array("Hello".utf8),
                                                                          maskingKey: 0xA1B2_C3D4))])
        var server = S.machine(.server)
        guard case .write(let bytes) = server.sendBinary([9, 8, 7]).first else { Issue.record(); return }
        #expect(bytes == [0x82, 0x03, 9, 8, 7])
        // Each end reads what the other writes.
        var receiver = S.machine(.server)
        guard case .write(let masked) = sender.sendBinary(Array(0..<200)).first else { Issue.record(); return }
        #expect(masked[1] & 0x80 != 0)
        #expect(receiver.receive(masked) == [.binary(Array(0..<200))])
    }

    @Test func clientMaskingKeysAreDrawnPerFrame() {
        var client = WebSocketStateMachine(role: .client)
        var keys = Set<[UInt8]>()
        for _ in 0..<20 {
            guard case .write(let bytes) = client.sendText("x").first else { Issue.record(); return }
            keys.insert(Array(bytes[2..<6]))
        }
        #expect(keys.count > 15)
    }

    // MARK: UTF-8

    @Test func utf8SplitAcrossFragmentsIsValid() {
        let text = "héllo €uro 𝄞 end"
        let bytes = Array(text.utf8)
        for cut1 in 1..<bytes.count - 1 {
            for cut2 in [cut1 + 1, bytes.count - 1] where cut2 > cut1 && cut2 < bytes.count {
                var machine = S.machine()
                let actions = machine.receive(
                    S.client(.text, Array(bytes[..<cut1]), isFinal: false)
                        + S.client(.continuation, Array(bytes[cut1..<cut2]), isFinal: false)
                        + S.client(.continuation, Array(bytes[cut2...])))
                #expect(actions == [.text(text)], "cuts \(cut1), \(cut2)")
            }
        }
    }

    @Test func invalidUTF8IsRefusedWith1007() {
        let invalid: [[UInt8]] = [
            [0xC0, 0x80],                // overlong NUL
            [0xE0, 0x80, 0x80],          // overlong
            [0xED, 0xA0, 0x80],          // surrogate U+D800
            [0xF4, 0x90, 0x80, 0x80],    // above U+10FFFF
            [0xF5], [0xFF], [0x80],
            Array("ok".utf8) + [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80],
        ]
        for bytes in invalid {
            #expect(S.failure(.invalidPayload, S.feed(S.client(.text, bytes))), "\(bytes)")
            // Split between fragments, the error is found in the fragment that holds it, before the message ends.
            let cut = bytes.count / 2
            let first = S.client(.text, Array(bytes[..<cut]), isFinal: false)
                + S.client(.continuation, Array(bytes[cut...]), isFinal: false)
            #expect(S.failure(.invalidPayload, S.feed(first)), "\(bytes)")
        }
        // A message that ends inside a character.
        #expect(S.failure(.invalidPayload, S.feed(S.client(.text, [0x61, 0xE2, 0x82]))))
        let unfinished = S.client(.text, [0xE2], isFinal: false) + S.client(.continuation, [0x82])
        #expect(S.failure(.invalidPayload, S.feed(unfinished)))
        // Binary messages are not checked.
        #expect(S.feed(S.client(.binary, [0xFF, 0xC0])) == [.binary([0xFF, 0xC0])])
    }

    @Test func invalidUTF8FailsBeforeTheFrameEnds() {
        var machine = S.machine()
        let frame = S.client(.text, [0x61, 0xFF] + [UInt8](repeating: 0x61, count: 100))
        let actions = machine.receive(frame.prefix(8))
        #expect(S.failure(.invalidPayload, actions))
    }

    @Test func validatorAgreesWithTheStandardLibrary() {
        var random = HTTP1FuzzRandom(seed: 0x0007_F8F8)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...6, using: &random)
            let bytes = (0..<count).map { _ in interesting.randomElement(using: &random)! }
            var validator = UTF8Validator()
            let ours = validator.validate(bytes) && validator.isComplete
            #expect(ours == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }

    // MARK: Close

    @Test func peerCloseIsAnsweredWithItsCode() {
        #expect(S.feed(S.client(.close, S.closePayload(1001, Array("bye".utf8)))) == [
            S.serverClose(.goingAway), .peerClosed(code: .goingAway, reason: "bye"), .closeTransport,
        ])
        #expect(S.feed(S.client(.close, [])) == [.write([0x88, 0x00]), .peerClosed(code: nil, reason: ""),
                                                 .closeTransport])
        var machine = S.machine()
        _ = machine.receive(S.client(.close, S.closePayload(3000)))
        #expect(machine.state == .closed)
        #expect(machine.receive(S.client(.text, "late")) == [])
        #expect(machine.sendText("late") == [])
    }

    @Test func closeCodes() {
        let valid: [UInt16] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
        for code in valid {
            let actions = S.feed(S.client(.close, S.closePayload(code)), splits: 3)
            #expect(actions[1] == .peerClosed(code: WebSocketCloseCode(rawValue: code), reason: ""), "\(code)")
        }
        let invalid: [UInt16] = [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
        for code in invalid {
            #expect(S.failure(.protocolError, S.feed(S.client(.close, S.closePayload(code)), splits: 3)), "\(code)")
        }
        #expect(S.failure(.protocolError, S.feed(S.client(.close, [3]))))
        #expect(S.failure(.invalidPayload, S.feed(S.client(.close, S.closePayload(1000, [0xC3, 0x28])))))
    }

    @Test func closingHandshakeStartedHere() {
        var machine = S.machine()
        #expect(machine.close(code: .goingAway, reason: "restart") == [S.serverClose(.goingAway, "restart")])
        #expect(machine.state == .closeSent && !machine.isOpen)
        #expect(machine.sendText("no") == [] && machine.close() == [])
        // Data the peer sent before it saw our close still arrives; its pings are not answered any more.
        #expect(machine.receive(S.client(.text, "in flight") + S.client(.ping, [])) == [.text("in flight")])
        #expect(machine.receive(S.client(.close, S.closePayload(1001)))
                == [.peerClosed(code: .goingAway, reason: ""), .closeTransport])
        #expect(machine.state == .closed)
    }

    @Test func failureAfterCloseSentWritesNothing() {
        var machine = S.machine()
        _ = machine.close()
        #expect(machine.receive(S.raw(0xF1, length7: 0))
                == [.failed(.protocolError("reserved bits set without an extension")), .closeTransport])
    }

    @Test func closeReasonIsCutOnACharacterBoundary() {
        let payload = WebSocketFrame.closePayload(code: .normalClosure, reason: String(repeating: "é", count: 100))
        #expect(payload.count == 124)
        #expect(String(validating: payload[2...], as: UTF8.self) != nil)
        #expect(WebSocketFrame.closePayload(code: nil, reason: "ignored") == [])
    }

    // MARK: A conversation

    @Test func clientAndServerTalk() {
        var client = WebSocketStateMachine(role: .client)
        var server = WebSocketStateMachine(role: .server)
        func deliver(_ actions: [Action], to machine: inout WebSocketStateMachine) -> [Action] {
            actions.flatMap { action -> [Action] in
                if case .write(let bytes) = action { return machine.receive(bytes) }
                return []
            }
        }
        #expect(deliver(client.sendText("ls -l\r"), to: &server) == [.text("ls -l\r")])
        let output = server.sendBinary(KubernetesChannel.encode(.stdout, [0x24]))
        #expect(deliver(output, to: &client) == [.binary([1, 0x24])])
        let ping = client.sendPing([1, 2])
        let pong = deliver(ping, to: &server)
        #expect(deliver(pong, to: &client) == [.pong([1, 2])])
        let close = deliver(client.close(), to: &server)
        #expect(close.dropFirst() == [.peerClosed(code: .normalClosure, reason: ""), .closeTransport])
        #expect(deliver(Array(close.prefix(1)), to: &client) == [.peerClosed(code: .normalClosure, reason: ""),
                                                                 .closeTransport])
        #expect(client.state == .closed && server.state == .closed)
    }
}
