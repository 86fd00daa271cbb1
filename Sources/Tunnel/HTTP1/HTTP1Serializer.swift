/// Writes HTTP/1.1 message heads and chunked framing.
///
/// The start line always says `HTTP/1.1` whatever the head's `version`: an intermediary sends its own version
/// (RFC 9110 §6.2). Fields whose name is not a token or whose value holds CR, LF or NUL are left out rather than
/// allowed to split the message; a reason phrase with control characters is replaced by the standard one.
package enum HTTP1Serializer {
    /// `METHOD target HTTP/1.1`, the header fields, and the blank line.
    package static func requestHead(_ head: HTTPRequestHead) -> [UInt8] {
        var bytes: [UInt8] = []
        let startLineSize = head.method.utf8.count + head.target.utf8.count + 11
        bytes.reserveCapacity(startLineSize + self.estimatedSize(of: head.headers))
        bytes.append(contentsOf: head.method.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: head.target.utf8)
        bytes.append(contentsOf: " HTTP/1.1\r\n".utf8)
        self.appendFields(head.headers, to: &bytes)
        return bytes
    }

    /// `HTTP/1.1 status reason`, the header fields, and the blank line; an empty reason takes the standard phrase.
    package static func responseHead(_ head: HTTPResponseHead) -> [UInt8] {
        let isUsable = !head.reason.isEmpty && head.reason.utf8.allSatisfy(HTTP1Parser.ASCII.isFieldValue)
        let reason = isUsable ? head.reason : self.reasonPhrase(for: head.status)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(self.estimatedSize(of: head.headers) + reason.utf8.count + 15)
        bytes.append(contentsOf: "HTTP/1.1 ".utf8)
        bytes.append(contentsOf: String(head.status).utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: reason.utf8)
        bytes.append(contentsOf: "\r\n".utf8)
        self.appendFields(head.headers, to: &bytes)
        return bytes
    }

    /// One chunk: hex size, CRLF, the data, CRLF. Empty input gives empty output, never the last chunk.
    package static func chunk(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        let size = String(bytes.count, radix: 16)
        var framed: [UInt8] = []
        framed.reserveCapacity(size.utf8.count + bytes.count + 4)
        framed.append(contentsOf: size.utf8)
        framed.append(contentsOf: "\r\n".utf8)
        framed.append(contentsOf: bytes)
        framed.append(contentsOf: "\r\n".utf8)
        return framed
    }

    /// One chunk: hex size, CRLF, the data, CRLF. Empty input gives empty output, never the last chunk.
    package static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { self.chunk($0) }
    }

    /// The zero-size chunk and empty trailer section that end a chunked body.
    package static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// The standard reason phrase of a status code (RFC 9110 §15), or `""` for codes it does not define.
    package static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 103: "Early Hints"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 511: "Network Authentication Required"
        default: ""
        }
    }

    static func appendFields(_ headers: HTTPHeaders, to bytes: inout [UInt8]) {
        for field in headers where self.isSafe(field) {
            bytes.append(contentsOf: field.name.utf8)
            bytes.append(contentsOf: ": ".utf8)
            bytes.append(contentsOf: field.value.utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        bytes.append(contentsOf: "\r\n".utf8)
    }

    /// Whether a field can be written without changing the message's framing.
    static func isSafe(_ field: (name: String, value: String)) -> Bool {
        let ascii = HTTP1Parser.ASCII.self
        return !field.name.isEmpty && field.name.utf8.allSatisfy(ascii.isToken)
            && !field.value.utf8.contains { $0 == 0 || $0 == ascii.carriageReturn || $0 == ascii.lineFeed }
    }

    static func estimatedSize(of headers: HTTPHeaders) -> Int {
        headers.reduce(2) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }
}
