import CNGHTTP2
import Foundation

/// Which end of an HTTP/2 connection a session plays. On the tunnel the controller is the client.
package enum HTTP2Role: Sendable {
    case client, server
}

/// What happened on the connection, recorded by the nghttp2 callbacks and acted on by the owner afterwards.
package enum HTTP2Event: Equatable, Sendable {
    /// A complete header block: a request (server), a response or trailers (client).
    case headers(streamID: Int32, headers: [HTTPField], endStream: Bool)
    /// Body bytes. The owner must call `consume(streamID:count:)` once they were written onward.
    case data(streamID: Int32, bytes: [UInt8])
    /// The peer will send no more on this stream.
    case endStream(streamID: Int32)
    /// The stream is gone; `errorCode` is 0 after a clean finish, else the RST_STREAM or GOAWAY code.
    case streamClosed(streamID: Int32, errorCode: UInt32)
    /// Outbound body bytes that left the stream's queue for the wire.
    case drained(streamID: Int32, count: Int)
    /// A PING we sent came back.
    case pingAcknowledged(sentAt: UInt64)
    /// The peer is going away; streams above `lastStreamID` were not processed.
    case goAway(lastStreamID: Int32, errorCode: UInt32)
    /// A header block decoded to more than `HTTP2Settings.maxHeaderListSize` bytes; its fields were dropped as
    /// they arrived, so a compressed bomb never expands in memory. The owner answers 431 or resets the stream.
    case headerListTooLarge(streamID: Int32)
    /// We sent GOAWAY (asked for with `goAway`, or on nghttp2's own initiative: a flood guard, a protocol error).
    case goAwaySent(errorCode: UInt32)
}

/// One header field as it crosses HTTP/2: lowercase name.
package struct HTTPField: Equatable, Sendable {
    package var name: String
    package var value: String

    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Settings a session announces at start.
package struct HTTP2Settings: Sendable {
    /// The per-stream receive window: how many bytes one stream may have in flight towards us.
    package var streamWindow: Int32 = 1 << 20
    /// The connection receive window, shared by all streams.
    package var connectionWindow: Int32 = Int32.max
    package var maxConcurrentStreams: UInt32 = 100_000
    /// The largest decoded header list (RFC 9113 §6.5.2: names, values and 32 bytes a field) accepted on a stream;
    /// announced as SETTINGS_MAX_HEADER_LIST_SIZE and enforced while HPACK decodes.
    package var maxHeaderListSize: UInt32 = 64 * 1024
    /// The largest frame payload the peer may send us (SETTINGS_MAX_FRAME_SIZE, 16 KiB to 16 MiB - 1).
    package var maxFrameSize: UInt32 = 16 * 1024
    /// Allow RFC 8441 extended CONNECT (WebSocket over HTTP/2).
    package var enableConnectProtocol = false
    /// Validate HTTP semantics (header names, pseudo-headers, content-length). Off only between our own peers.
    package var validateHTTPMessaging = true
    /// nghttp2's rapid-reset guard (CVE-2023-44487): GOAWAY once the peer resets more than `burst` streams
    /// plus `perSecond` a second. Its default (1,000 and 33/s) suits a connection from one client; a tunnel end
    /// sees the sum of every user's cancellations, which the controller budgets per user instead.
    package var streamResetBurst: UInt64 = 1000
    package var streamResetsPerSecond: UInt64 = 33

    package init() {}
}

/// Failure of an nghttp2 call.
package struct HTTP2Error: Error, Equatable, Sendable, CustomStringConvertible {
    package let call: String
    package let code: Int

    package init(call: String, code: Int) {
        self.call = call
        self.code = code
    }

    package var description: String {
        "\(self.call): \(String(cString: nghttp2_strerror(Int32(self.code))))"
    }
}

/// A sans-I/O HTTP/2 endpoint over nghttp2: feed it bytes, take its events and its bytes to send.
///
/// Automatic WINDOW_UPDATE is off: received body bytes are acknowledged only through `consume`, after the owner
/// wrote them to the next hop, so a slow reader stalls only its own stream.
package final class HTTP2Session {
    /// nghttp2_session *, owned.
    let session: OpaquePointer
    package let role: HTTP2Role

    /// Recorded by callbacks during `receive` and `send`; handed out and cleared by them.
    var events: [HTTP2Event] = []
    /// Header fields of header blocks still arriving, by stream.
    var pendingHeaders: [Int32: [HTTPField]] = [:]
    /// Decoded bytes of each header block still arriving, counted as RFC 9113 §6.5.2 does.
    var pendingHeaderBytes: [Int32: Int] = [:]
    /// Streams whose header block went over `headerListLimit`: the rest of the block is dropped as it decodes.
    var oversizedHeaderBlocks: Set<Int32> = []
    /// `HTTP2Settings.maxHeaderListSize`.
    let headerListLimit: Int
    /// Outbound bodies, by stream.
    var outbound: [Int32: OutboundBody] = [:]
    /// Bytes received per stream and not yet consumed, so a dropped stream can give the connection window back.
    var unconsumed: [Int32: Int] = [:]

    /// A stream's queued outbound body.
    struct OutboundBody {
        var queue = ByteQueue()
        var isEnded = false
        var isDeferred = false
    }

    package init(role: HTTP2Role, settings: HTTP2Settings = HTTP2Settings()) throws {
        self.role = role
        self.headerListLimit = Int(settings.maxHeaderListSize)
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.installCallbacks(callbacks!)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_no_http_messaging(option, settings.validateHTTPMessaging ? 0 : 1)
        // A value with surrounding white space (`authorization: Bearer `) reaches us, as over HTTP/1.1, so the
        // user gets a reason instead of a bare RST_STREAM; control characters are still refused.
        nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 256 * 1024)
        nghttp2_option_set_stream_reset_rate_limit(option, settings.streamResetBurst, settings.streamResetsPerSecond)

        // The owner (self) must exist before the session so the session can be a `let`; user_data is set after.
        var created: OpaquePointer?
        let rc: Int32
        switch role {
        case .client: rc = nghttp2_session_client_new2(&created, callbacks, nil, option)
        case .server: rc = nghttp2_session_server_new2(&created, callbacks, nil, option)
        }
        guard rc == 0, let created else { throw HTTP2Error(call: "nghttp2_session_new", code: Int(rc)) }
        self.session = created
        nghttp2_session_set_user_data(created, Unmanaged.passUnretained(self).toOpaque())

        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                                   value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                                   value: UInt32(settings.streamWindow)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                                   value: settings.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue),
                                   value: settings.maxFrameSize),
        ]
        if role == .client {
            // Nothing here handles pushed streams: refuse PUSH_PROMISE instead of surfacing streams never opened.
            entries.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0))
        }
        if settings.enableConnectProtocol, role == .server {
            entries.append(nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue), value: 1))
        }
        try Self.check("nghttp2_submit_settings",
                       nghttp2_submit_settings(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count))
        try Self.check("nghttp2_session_set_local_window_size",
                       nghttp2_session_set_local_window_size(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                                                             settings.connectionWindow))
    }

    deinit {
        nghttp2_session_del(self.session)
    }

    static func check(_ call: String, _ rc: Int32) throws {
        if rc < 0 { throw HTTP2Error(call: call, code: Int(rc)) }
    }

    /// Feeds received bytes and returns what they caused.
    package func receive(_ bytes: UnsafeRawBufferPointer) throws -> [HTTP2Event] {
        if bytes.count > 0 {
            let rc = nghttp2_session_mem_recv(
                self.session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
            if rc < 0 { throw HTTP2Error(call: "nghttp2_session_mem_recv", code: rc) }
        }
        return self.takeEvents()
    }

    /// Serializes pending frames into `output`, up to about `limit` bytes, and returns the events that caused
    /// (body bytes drained, streams closed by our own reset).
    package func send(into output: inout [UInt8], limit: Int = 1 << 20) throws -> [HTTP2Event] {
        while output.count < limit {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(self.session, &data)
            if n < 0 { throw HTTP2Error(call: "nghttp2_session_mem_send", code: n) }
            if n == 0 { break }
            output.append(contentsOf: UnsafeBufferPointer(start: data, count: n))
        }
        return self.takeEvents()
    }

    private func takeEvents() -> [HTTP2Event] {
        let events = self.events
        self.events.removeAll(keepingCapacity: true)
        for case .streamClosed(let streamID, _) in events {
            self.outbound[streamID] = nil
            if let left = self.unconsumed.removeValue(forKey: streamID), left > 0 {
                nghttp2_session_consume_connection(self.session, left)
            }
        }
        return events
    }

    /// Whether the session has more to send or expects more to read; both false means the connection is done.
    package var isAlive: Bool {
        nghttp2_session_want_read(self.session) != 0 || nghttp2_session_want_write(self.session) != 0
    }

    /// Opens a stream with a request. With `hasBody` the stream stays open for `sendData` and `endStream`.
    package func submitRequest(_ headers: [HTTPField], hasBody: Bool) throws -> Int32 {
        let streamID = withNameValues(headers) { nvs, count in
            if hasBody {
                var provider = Self.dataProvider()
                return nghttp2_submit_request(self.session, nil, nvs, count, &provider, nil)
            }
            return nghttp2_submit_request(self.session, nil, nvs, count, nil, nil)
        }
        if streamID < 0 { throw HTTP2Error(call: "nghttp2_submit_request", code: Int(streamID)) }
        if hasBody { self.outbound[streamID] = OutboundBody() }
        return streamID
    }

    /// Answers a stream. With `hasBody` the stream stays open for `sendData` and `endStream`. A stream that is
    /// already closed (the peer reset it while the answer was being prepared) is not answered.
    package func submitResponse(streamID: Int32, _ headers: [HTTPField], hasBody: Bool) throws {
        // Its `.streamClosed` has been handed out: a body registered now would never be framed nor freed.
        // (nghttp2 may keep a closed stream's record for priorities; its state says it is closed.)
        guard let stream = nghttp2_session_find_stream(self.session, streamID),
            nghttp2_stream_get_state(stream) != NGHTTP2_STREAM_STATE_CLOSED
        else { return }
        let rc = withNameValues(headers) { nvs, count in
            if hasBody {
                var provider = Self.dataProvider()
                return nghttp2_submit_response(self.session, streamID, nvs, count, &provider)
            }
            return nghttp2_submit_response(self.session, streamID, nvs, count, nil)
        }
        try Self.check("nghttp2_submit_response", rc)
        if hasBody { self.outbound[streamID] = OutboundBody() }
    }

    /// Queues body bytes on a stream opened with a body.
    package func sendData(streamID: Int32, _ bytes: [UInt8]) {
        guard !bytes.isEmpty, self.outbound[streamID] != nil else { return }
        self.outbound[streamID]!.queue.append(bytes)
        self.resumeIfDeferred(streamID)
    }

    /// Ends the body of a stream: END_STREAM goes out after the queued bytes.
    package func endStream(streamID: Int32) {
        guard self.outbound[streamID] != nil else { return }
        self.outbound[streamID]!.isEnded = true
        self.resumeIfDeferred(streamID)
    }

    /// Bytes queued on a stream and not yet framed.
    package func queuedByteCount(streamID: Int32) -> Int {
        self.outbound[streamID]?.queue.count ?? 0
    }

    private func resumeIfDeferred(_ streamID: Int32) {
        if self.outbound[streamID]!.isDeferred {
            self.outbound[streamID]!.isDeferred = false
            nghttp2_session_resume_data(self.session, streamID)
        }
    }

    /// Acknowledges `count` received body bytes of a stream: they were written onward, so the peer may send more.
    package func consume(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        if let left = self.unconsumed[streamID] {
            self.unconsumed[streamID] = left - count
            nghttp2_session_consume(self.session, streamID, count)
        } else {
            // The stream is gone and its remainder was already returned to the connection window.
        }
    }

    /// Resets a stream; the peer sees RST_STREAM with `errorCode`.
    package func reset(streamID: Int32, errorCode: UInt32 = NGHTTP2_CANCEL.rawValue) {
        nghttp2_submit_rst_stream(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
        self.outbound[streamID] = nil
    }

    /// Sends a PING carrying `payload` (a send time), echoed back as `.pingAcknowledged`.
    package func ping(payload: UInt64) {
        var opaque = payload.bigEndian
        withUnsafeBytes(of: &opaque) { bytes in
            _ = nghttp2_submit_ping(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue),
                                    bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Tells the peer we are going away after the streams it already opened.
    package func goAway(errorCode: UInt32 = NGHTTP2_NO_ERROR.rawValue) {
        let last = nghttp2_session_get_last_proc_stream_id(self.session)
        nghttp2_submit_goaway(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
    }

    /// The highest stream ID the peer opened that this side processed, for a GOAWAY.
    package var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(self.session) }

    /// Streams currently open in nghttp2's view, for picking the least busy session.
    package var remoteWindow: Int32 { nghttp2_session_get_remote_window_size(self.session) }

    private static func dataProvider() -> nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.read_callback = readOutboundBody
        return provider
    }

    /// Copies up to `length` queued bytes of `streamID` into `buffer` for a DATA frame (called from C).
    func fillDataFrame(streamID: Int32, buffer: UnsafeMutablePointer<UInt8>, length: Int,
                       flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard self.outbound[streamID] != nil else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let n = self.outbound[streamID]!.queue.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
        if n > 0 { self.events.append(.drained(streamID: streamID, count: n)) }
        if self.outbound[streamID]!.queue.isEmpty {
            if self.outbound[streamID]!.isEnded {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            } else if n == 0 {
                self.outbound[streamID]!.isDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        return n
    }

    private func withNameValues<R>(_ headers: [HTTPField], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var storage = [UInt8]()
        storage.reserveCapacity(headers.reduce(1) { $0 + $1.name.utf8.count + $1.value.utf8.count })
        var ranges: [(Int, Int, Int, Int)] = []
        ranges.reserveCapacity(headers.count)
        for field in headers {
            let nameStart = storage.count
            storage.append(contentsOf: field.name.asciiLowercased().utf8)
            let valueStart = storage.count
            storage.append(contentsOf: field.value.utf8)
            ranges.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
        }
        storage.append(0)
        return storage.withUnsafeMutableBufferPointer { raw in
            let base = raw.baseAddress!
            let nvs = ranges.map { range in
                nghttp2_nv(name: base + range.0, value: base + range.2, namelen: range.1, valuelen: range.3,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nvs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
