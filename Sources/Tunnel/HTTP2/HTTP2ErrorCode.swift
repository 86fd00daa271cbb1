import CNGHTTP2

/// HTTP/2 error codes (RFC 9113 section 7) the modules above `Tunnel` send and read in RST_STREAM, named in Swift
/// so that nghttp2 stays inside `Tunnel`.
package enum HTTP2ErrorCode {
    /// The stream failed for a reason of the sender's own (the backend broke, an internal fault).
    package static let internalError = NGHTTP2_INTERNAL_ERROR.rawValue
    /// The stream was refused before any of it was processed, so it is safe to retry.
    package static let refusedStream = NGHTTP2_REFUSED_STREAM.rawValue
    /// The stream is no longer wanted (a debug session ended under it).
    package static let cancel = NGHTTP2_CANCEL.rawValue
}
