/// Why an HTTP/1.1 message could not be parsed; the parser is dead afterwards.
///
/// `description` is written for the peer: it is safe to send back as the body of a 400.
package enum HTTP1Error: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request line or status line does not have the RFC 9112 shape.
    case malformedStartLine
    /// A field line is not `token ":" OWS value OWS`, or its value holds a control character.
    case malformedHeader
    /// The header section (or the trailer section) is longer than `limit` bytes.
    case headerTooLarge(limit: Int)
    /// The header section (or the trailer section) has more fields than allowed.
    case tooManyHeaders
    /// `Content-Length` is not a list of decimal digits that fits in an `Int`.
    case invalidContentLength
    /// `Transfer-Encoding` together with `Content-Length`, or `Content-Length` values that differ.
    case conflictingLengths
    /// A `Transfer-Encoding` this parser cannot frame (not ending in a single `chunked`, or in HTTP/1.0).
    case unsupportedTransferEncoding
    /// A chunk-size line or the CRLF after chunk data is malformed, or a chunk size overflows.
    case malformedChunk
    /// The version is not `HTTP/1.x` (in a request: not `HTTP/1.0` or `HTTP/1.1`).
    case invalidVersion
    /// A line ends in LF without CR; only CRLF is accepted.
    case bareLineFeed
    /// A CR that is not followed by LF.
    case bareCarriageReturn
    /// The input ended in the middle of a message.
    case truncatedMessage

    /// The reason in a few words, fit for the body of a 400.
    package var description: String {
        switch self {
        case .malformedStartLine: "malformed request or status line"
        case .malformedHeader: "malformed header field"
        case .headerTooLarge(let limit): "header section larger than \(limit) bytes"
        case .tooManyHeaders: "too many header fields"
        case .invalidContentLength: "invalid Content-Length"
        case .conflictingLengths: "conflicting Content-Length and Transfer-Encoding"
        case .unsupportedTransferEncoding: "unsupported Transfer-Encoding"
        case .malformedChunk: "malformed chunked encoding"
        case .invalidVersion: "unsupported HTTP version"
        case .bareLineFeed: "line ending without CR (bare LF)"
        case .bareCarriageReturn: "CR not followed by LF"
        case .truncatedMessage: "message truncated by end of stream"
        }
    }
}
