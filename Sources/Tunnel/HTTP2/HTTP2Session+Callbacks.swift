import CNGHTTP2

// C callbacks: named functions with nghttp2's exact signatures. They only record events on the owning session;
// the owner acts on them after nghttp2_session_mem_recv / mem_send return, so nothing re-enters nghttp2.

extension HTTP2Session {
    static func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunkReceived)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSent)
        nghttp2_session_callbacks_set_data_source_read_length_callback(callbacks, dataFrameLength)
    }
}

private func owner(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session? {
    guard let userData else { return nil }
    return Unmanaged<HTTP2Session>.fromOpaque(userData).takeUnretainedValue()
}

/// DATA frames as large as the peer allows (its SETTINGS_MAX_FRAME_SIZE) and the windows permit; without this
/// nghttp2 stops at 16 KiB even when the peer, like our own tunnel ends, accepts more.
private func dataFrameLength(
    _ session: OpaquePointer?, _ frameType: UInt8, _ streamID: Int32, _ sessionWindow: Int32, _ streamWindow: Int32,
    _ remoteMaxFrameSize: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int {
    max(1, min(Int(remoteMaxFrameSize), Int(sessionWindow), Int(streamWindow)))
}

private func onBeginHeaders(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, let owner = owner(userData) else { return 0 }
    var fields: [HTTPField] = []
    fields.reserveCapacity(16)  // a typical request or response: no regrowing while its fields arrive
    owner.pendingHeaders[frame.pointee.hd.stream_id] = fields
    owner.pendingHeaderBytes[frame.pointee.hd.stream_id] = 0
    if owner.unconsumed[frame.pointee.hd.stream_id] == nil {
        owner.unconsumed[frame.pointee.hd.stream_id] = 0
    }
    return 0
}

private func onHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?, _ nameLength: Int, _ value: UnsafePointer<UInt8>?, _ valueLength: Int,
    _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, let name, let value, let owner = owner(userData) else { return 0 }
    let streamID = frame.pointee.hd.stream_id
    if owner.oversizedHeaderBlocks.contains(streamID) { return 0 }
    let size = (owner.pendingHeaderBytes[streamID] ?? 0) + nameLength + valueLength + 32
    guard size <= owner.headerListLimit else {
        // Stop accumulating at once: what HPACK expands from a few bytes on the wire must not reach memory.
        owner.oversizedHeaderBlocks.insert(streamID)
        owner.pendingHeaders[streamID] = nil
        owner.pendingHeaderBytes[streamID] = nil
        return 0
    }
    owner.pendingHeaderBytes[streamID] = size
    let field = HTTPField(
        String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
        String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self))
    owner.pendingHeaders[streamID, default: []].append(field)
    return 0
}

private func onFrameReceived(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, let owner = owner(userData) else { return 0 }
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
        owner.pendingHeaderBytes[header.stream_id] = nil
        if owner.oversizedHeaderBlocks.remove(header.stream_id) != nil {
            owner.pendingHeaders[header.stream_id] = nil
            owner.events.append(.headerListTooLarge(streamID: header.stream_id))
            return 0
        }
        let fields = owner.pendingHeaders.removeValue(forKey: header.stream_id) ?? []
        owner.events.append(.headers(streamID: header.stream_id, headers: fields, endStream: endStream))
    case NGHTTP2_DATA.rawValue:
        if endStream { owner.events.append(.endStream(streamID: header.stream_id)) }
    case NGHTTP2_PING.rawValue:
        if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
            var opaque = frame.pointee.ping.opaque_data
            let sent = withUnsafeBytes(of: &opaque) { $0.loadUnaligned(as: UInt64.self) }
            owner.events.append(.pingAcknowledged(sentAt: UInt64(bigEndian: sent)))
        }
    case NGHTTP2_GOAWAY.rawValue:
        owner.events.append(.goAway(lastStreamID: frame.pointee.goaway.last_stream_id,
                                    errorCode: frame.pointee.goaway.error_code))
    default:
        break
    }
    return 0
}

/// Records the one sent frame an owner needs to hear of: our own GOAWAY, whoever decided it.
private func onFrameSent(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, let owner = owner(userData) else { return 0 }
    if UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue {
        owner.events.append(.goAwaySent(errorCode: frame.pointee.goaway.error_code))
    }
    return 0
}

private func onDataChunkReceived(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let data, let owner = owner(userData) else { return 0 }
    if let left = owner.unconsumed[streamID] {
        owner.unconsumed[streamID] = left + length
        owner.events.append(.data(streamID: streamID, bytes: Array(UnsafeBufferPointer(start: data, count: length))))
    } else {
        // Not a stream we track: give the window back at once.
        nghttp2_session_consume_connection(session, length)
    }
    return 0
}

private func onStreamClose(
    _ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let owner = owner(userData) else { return 0 }
    owner.pendingHeaders[streamID] = nil
    owner.pendingHeaderBytes[streamID] = nil
    owner.oversizedHeaderBlocks.remove(streamID)
    owner.events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
    return 0
}

/// nghttp2_data_source_read_callback: fills a DATA frame from the stream's queue.
func readOutboundBody(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let buffer, let flags, let owner = owner(userData) else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    return owner.fillDataFrame(streamID: streamID, buffer: buffer, length: length, flags: flags)
}
