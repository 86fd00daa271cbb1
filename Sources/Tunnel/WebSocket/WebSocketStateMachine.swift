/// One WebSocket connection after the opening handshake (RFC 6455 §5–7), sans I/O: the owner feeds it the bytes
/// it read and the messages it wants to send, and carries out the returned actions in order.
///
/// The same machine serves both ends: `.server` (the controller facing a browser) requires every incoming frame
/// masked and never masks its own; `.client` (the controller speaking to an API server's attach) masks every frame
/// it sends and refuses masked frames. No extensions are negotiated, so the RSV bits must be 0.
package struct WebSocketStateMachine {
    /// Which end of the connection this is.
    package enum Role: Sendable, Equatable {
        case server
        case client
    }

    /// How much one peer may make this end hold.
    package struct Limits: Sendable, Equatable {
        /// The largest frame payload accepted; a larger frame fails the connection with 1009.
        package var maximumFrameBytes: Int
        /// The largest message (all fragments together) accepted; a larger one fails the connection with 1009.
        package var maximumMessageBytes: Int

        package init(maximumFrameBytes: Int = 1 << 20, maximumMessageBytes: Int = 4 << 20) {
            precondition(maximumFrameBytes >= WebSocketFrame.maximumControlPayload && maximumMessageBytes >= 0)
            self.maximumFrameBytes = maximumFrameBytes
            self.maximumMessageBytes = maximumMessageBytes
        }
    }

    /// What the owner does, in order.
    package enum Action: Equatable, Sendable {
        /// Write these bytes to the peer.
        case write([UInt8])
        /// A complete text message, validated as UTF-8.
        case text(String)
        /// A complete binary message.
        case binary([UInt8])
        /// A pong arrived (an answer to `ping`, or unsolicited); pings are answered by the machine itself.
        case pong([UInt8])
        /// The peer sent a close frame: its code (nil when it sent none, 1005 in the RFC's terms) and reason.
        /// When this end had not closed yet, the answering close frame is in a `.write` just before.
        case peerClosed(code: WebSocketCloseCode?, reason: String)
        /// The peer broke the protocol; the close frame with `error.closeCode` is in a `.write` just before
        /// (unless this end had already sent its close).
        case failed(WebSocketProtocolError)
        /// Close the transport: the closing handshake is over, or the connection failed. A client may first wait
        /// a moment for the server to close the TCP connection (RFC 6455 §7.1.1); nothing more will be written.
        case closeTransport
    }

    /// Where the closing handshake stands.
    package enum State: Sendable, Equatable {
        /// Messages flow both ways.
        case open
        /// This end sent its close frame and waits for the peer's; incoming messages are still delivered.
        case closeSent
        /// Both close frames crossed, or the connection failed: nothing more is read or written.
        case closed
    }

    /// A frame whose header has been read and whose payload is arriving.
    private struct FrameInProgress {
        let opcode: WebSocketOpcode
        let isFinal: Bool
        /// The masking key's bytes, or nil for an unmasked frame.
        let maskingKey: [UInt8]?
        var remaining: Int
        /// How many payload bytes were read so far: the position in the masking key.
        var offset = 0
    }

    package let role: Role
    package let limits: Limits
    package private(set) var state: State = .open

    /// Draws the masking key of each frame a client sends (RFC 6455 §5.3 wants it unpredictable).
    private let makeMaskingKey: @Sendable () -> UInt32
    /// The header bytes of the next frame, until it is complete (at most 14).
    private var headerBuffer: [UInt8] = []
    private var frame: FrameInProgress?
    /// The opcode of the fragmented message in progress (text or binary), nil between messages.
    private var messageOpcode: WebSocketOpcode?
    private var messageBuffer: [UInt8] = []
    private var controlBuffer: [UInt8] = []
    private var messageValidator = UTF8Validator()

    /// A machine for one end. `makeMaskingKey` exists for tests; the default draws from the system's generator.
    package init(
        role: Role, limits: Limits = Limits(),
        makeMaskingKey: @escaping @Sendable () -> UInt32 = { UInt32.random(in: UInt32.min...UInt32.max) }
    ) {
        self.role = role
        self.limits = limits
        self.makeMaskingKey = makeMaskingKey
    }

    /// Whether messages may still be sent: this end has not sent its close frame.
    package var isOpen: Bool { self.state == .open }

    // MARK: Sending

    /// A text message as one frame; nothing once this end has closed.
    package mutating func sendText(_ text: String) -> [Action] {
        self.send(.text, payload: Array(text.utf8))
    }

    /// A binary message as one frame; nothing once this end has closed.
    package mutating func sendBinary(_ bytes: [UInt8]) -> [Action] {
        self.send(.binary, payload: bytes)
    }

    /// A ping with at most 125 bytes of payload; the peer's pong comes back as `.pong`.
    package mutating func sendPing(_ payload: [UInt8] = []) -> [Action] {
        precondition(payload.count <= WebSocketFrame.maximumControlPayload, "a ping carries at most 125 bytes")
        return self.send(.ping, payload: payload)
    }

    /// Starts the closing handshake (a code valid on the wire, or nil for none); the peer's close completes it.
    package mutating func close(code: WebSocketCloseCode? = .normalClosure, reason: String = "") -> [Action] {
        precondition(code?.isValidOnTheWire ?? true, "close code \(code!) may not be sent")
        guard self.state == .open else { return [] }
        let actions = self.send(.close, payload: WebSocketFrame.closePayload(code: code, reason: reason))
        self.state = .closeSent
        return actions
    }

    private mutating func send(_ opcode: WebSocketOpcode, payload: [UInt8]) -> [Action] {
        guard self.state == .open else { return [] }
        return [.write(self.encode(opcode, payload))]
    }

    private func encode(_ opcode: WebSocketOpcode, _ payload: [UInt8]) -> [UInt8] {
        WebSocketFrame.encode(opcode, payload: payload, maskingKey: self.role == .client ? self.makeMaskingKey() : nil)
    }

    // MARK: Receiving

    /// Reads bytes from the peer, however they were split, and returns what to do about them.
    package mutating func receive(_ bytes: some Collection<UInt8>) -> [Action] {
        var actions: [Action] = []
        var index = bytes.startIndex
        while index != bytes.endIndex && self.state != .closed {
            if var frame = self.frame {
                let count = min(frame.remaining, bytes.distance(from: index, to: bytes.endIndex))
                let end = bytes.index(index, offsetBy: count)
                var chunk = Array(bytes[index..<end])
                index = end
                if let key = frame.maskingKey {
                    for position in chunk.indices { chunk[position] ^= key[(frame.offset + position) & 3] }
                }
                frame.offset += count
                frame.remaining -= count
                self.frame = frame
                if let error = self.acceptPayload(chunk, of: frame) {
                    self.fail(error, into: &actions)
                    break
                }
                if frame.remaining == 0 {
                    self.frame = nil
                    self.finish(frame, into: &actions)
                }
            } else {
                self.headerBuffer.append(bytes[index])
                index = bytes.index(after: index)
                switch self.parseHeader() {
                case .needMore:
                    continue
                case .failure(let error):
                    self.fail(error, into: &actions)
                case .frame(let frame):
                    self.headerBuffer.removeAll(keepingCapacity: true)
                    if frame.remaining == 0 {
                        self.finish(frame, into: &actions)
                    } else {
                        self.frame = frame
                    }
                }
            }
        }
        return actions
    }

    private enum HeaderParse {
        case needMore
        case failure(WebSocketProtocolError)
        case frame(FrameInProgress)
    }

    /// Reads `headerBuffer` as far as it goes, refusing as early as a byte shows the frame is bad.
    private func parseHeader() -> HeaderParse {
        let header = self.headerBuffer
        guard header.count >= 2 else { return .needMore }
        let isFinal = header[0] & 0x80 != 0
        guard header[0] & 0x70 == 0 else { return .failure(.protocolError("reserved bits set without an extension")) }
        guard let opcode = WebSocketOpcode(rawValue: header[0] & 0x0F) else {
            return .failure(.protocolError("reserved opcode \(header[0] & 0x0F)"))
        }
        let isMasked = header[1] & 0x80 != 0
        switch (self.role, isMasked) {
        case (.server, false): return .failure(.protocolError("unmasked frame from a client"))
        case (.client, true): return .failure(.protocolError("masked frame from a server"))
        default: break
        }
        let shortLength = Int(header[1] & 0x7F)
        if opcode.isControl {
            guard isFinal else { return .failure(.protocolError("fragmented control frame")) }
            guard shortLength <= WebSocketFrame.maximumControlPayload else {
                return .failure(.protocolError("control frame over 125 bytes"))
            }
        } else if opcode == .continuation {
            guard self.messageOpcode != nil else { return .failure(.protocolError("continuation without a message")) }
        } else {
            guard self.messageOpcode == nil else {
                return .failure(.protocolError("new message before the last one's final fragment"))
            }
        }
        let lengthBytes = shortLength == 127 ? 8 : shortLength == 126 ? 2 : 0
        let headerBytes = 2 + lengthBytes + (isMasked ? 4 : 0)
        guard header.count >= 2 + lengthBytes else { return .needMore }
        var length = UInt64(shortLength)
        if lengthBytes > 0 {
            length = header[2..<(2 + lengthBytes)].reduce(0) { $0 << 8 | UInt64($1) }
            if lengthBytes == 2 && length < 126 { return .failure(.protocolError("length not minimally encoded")) }
            if lengthBytes == 8 && length <= UInt64(UInt16.max) {
                return .failure(.protocolError("length not minimally encoded"))
            }
            if length >> 63 != 0 { return .failure(.protocolError("64-bit length with the top bit set")) }
        }
        if length > UInt64(self.limits.maximumFrameBytes) {
            return .failure(.tooBig("frame of \(length) bytes over the limit of \(self.limits.maximumFrameBytes)"))
        }
        if !opcode.isControl && length > UInt64(self.limits.maximumMessageBytes - self.messageBuffer.count) {
            return .failure(.tooBig("message over the limit of \(self.limits.maximumMessageBytes) bytes"))
        }
        guard header.count == headerBytes else { return .needMore }
        let key = isMasked ? Array(header[(headerBytes - 4)...]) : nil
        return .frame(FrameInProgress(opcode: opcode, isFinal: isFinal, maskingKey: key, remaining: Int(length)))
    }

    /// Keeps unmasked payload bytes, validating text as it arrives so invalid UTF-8 fails at once.
    private mutating func acceptPayload(_ chunk: [UInt8], of frame: FrameInProgress) -> WebSocketProtocolError? {
        if frame.opcode.isControl {
            self.controlBuffer.append(contentsOf: chunk)
            return nil
        }
        if (self.messageOpcode ?? frame.opcode) == .text && !self.messageValidator.validate(chunk) {
            return .invalidUTF8("text message is not UTF-8")
        }
        self.messageBuffer.append(contentsOf: chunk)
        return nil
    }

    /// Acts on a frame whose payload is complete.
    private mutating func finish(_ frame: FrameInProgress, into actions: inout [Action]) {
        switch frame.opcode {
        case .ping:
            let payload = self.takeControlPayload()
            if self.state == .open { actions.append(.write(self.encode(.pong, payload))) }
        case .pong:
            actions.append(.pong(self.takeControlPayload()))
        case .close:
            self.receiveClose(self.takeControlPayload(), into: &actions)
        case .text, .binary, .continuation:
            let opcode = self.messageOpcode ?? frame.opcode
            guard frame.isFinal else {
                self.messageOpcode = opcode
                return
            }
            if opcode == .text {
                guard self.messageValidator.isComplete else {
                    return self.fail(.invalidUTF8("text message ends inside a character"), into: &actions)
                }
                actions.append(.text(String(decoding: self.messageBuffer, as: UTF8.self)))
            } else {
                actions.append(.binary(self.messageBuffer))
            }
            self.messageOpcode = nil
            self.messageBuffer = []
            self.messageValidator = UTF8Validator()
        }
    }

    private mutating func takeControlPayload() -> [UInt8] {
        defer { self.controlBuffer.removeAll(keepingCapacity: true) }
        return self.controlBuffer
    }

    /// The peer's close frame: answered with the same code while this end is open, then the transport closes.
    private mutating func receiveClose(_ payload: [UInt8], into actions: inout [Action]) {
        var code: WebSocketCloseCode?
        var reason = ""
        if payload.count == 1 { return self.fail(.protocolError("close frame with a 1-byte payload"), into: &actions) }
        if payload.count >= 2 {
            let received = WebSocketCloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
            guard received.isValidOnTheWire else {
                return self.fail(.protocolError("close code \(received) is not allowed on the wire"), into: &actions)
            }
            var validator = UTF8Validator()
            guard validator.validate(payload[2...]), validator.isComplete else {
                return self.fail(.invalidUTF8("close reason is not UTF-8"), into: &actions)
            }
            code = received
            reason = String(decoding: payload[2...], as: UTF8.self)
        }
        if self.state == .open {
            actions.append(.write(self.encode(.close, WebSocketFrame.closePayload(code: code, reason: ""))))
        }
        self.state = .closed
        actions.append(.peerClosed(code: code, reason: reason))
        actions.append(.closeTransport)
    }

    /// Fails the connection (RFC 6455 §7.1.7): a close frame with the error's code if this end had not sent one.
    private mutating func fail(_ error: WebSocketProtocolError, into actions: inout [Action]) {
        if self.state == .open {
            actions.append(.write(self.encode(.close, WebSocketFrame.closePayload(code: error.closeCode, reason: ""))))
        }
        self.state = .closed
        self.frame = nil
        self.messageBuffer = []
        self.controlBuffer = []
        actions.append(.failed(error))
        actions.append(.closeTransport)
    }
}
