/// An incremental, sans-I/O HTTP/1.1 parser (RFC 9112) for one direction of one connection.
///
/// Feed bytes as they arrive and pull events with `next()` until it returns `nil`. The result does not depend on
/// how the bytes were split. Choices where RFC 9112 leaves room, made strict because a proxy that is more lenient
/// than the server behind it invites request smuggling:
/// - Lines end in CRLF. A bare LF is `bareLineFeed`, a CR not followed by LF is `bareCarriageReturn`.
/// - Empty lines before a request line are skipped (RFC 9112 §2.2); they count toward `maxHeaderBytes`.
/// - Obsolete line folding, whitespace before the colon and control characters in values are `malformedHeader`.
///   Values that are not valid UTF-8 are decoded with U+FFFD replacements.
/// - Trailer fields are checked like header fields, then dropped; `.end` follows the last chunk.
/// - Interim responses (1xx other than 101) are surfaced as `.responseHead` without `.end`; the final head follows.
/// - A request with `Upgrade` (listed in `Connection`, HTTP/1.1), a `CONNECT`, a 101, and a 2xx answering `CONNECT`
///   end HTTP/1.1 on the connection: the head is returned without `.end`, `isSwitchingProtocols` becomes true,
///   `next()` returns `nil` from then on, and everything after the head (a body included) belongs to the new
///   protocol: take it with `takeRemainingBytes()`. If the upgrade is declined, close the connection.
/// - Responses that cannot have a body (HEAD, 1xx, 204, 304) ignore `Content-Length` and `Transfer-Encoding`.
package struct HTTP1Parser: Sendable {
    /// Which start line to expect.
    package enum Kind: Sendable {
        /// Parse requests (the controller's side of a user connection).
        case request
        /// Parse responses (the agent's side of a backend connection).
        case response
    }

    /// One step of a message, in order: a head, zero or more body pieces, then `.end`.
    package enum Event: Equatable, Sendable {
        /// A complete request head.
        case requestHead(HTTPRequestHead)
        /// A complete response head; 1xx other than 101 are interim and followed by another head.
        case responseHead(HTTPResponseHead)
        /// Decoded body bytes (chunked framing removed), never empty.
        case body([UInt8])
        /// The message is complete.
        case end
    }

    enum State: Sendable {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(byteCount: Int, fieldCount: Int)
        case closeDelimitedBody
        case endOfMessage
        case switched
        case failed(HTTP1Error)
    }

    /// What one pass of the state machine achieved.
    enum Step {
        case event(Event)
        case progress
        case needMore
    }

    /// How the body of a message is delimited.
    enum BodyFraming: Equatable {
        case none
        case length(Int)
        case chunked
        case untilClose
    }

    /// The head being assembled, one line at a time.
    struct PartialHead: Sendable {
        var byteCount = 0
        var hasStartLine = false
        var method = ""
        var target = ""
        var version = ""
        var status = 0
        var reason = ""
        var headers = HTTPHeaders()
        var framing = FramingFields()
    }

    /// What the framing and connection rules need from the header fields, noted from the bytes as lines arrive.
    struct FramingFields: Sendable {
        var hasContentLength = false
        /// `Content-Length` lines or list elements beyond one (`5, 5` or two lines): the head is rewritten to one.
        var hasRepeatedContentLength = false
        var hasTransferEncoding = false
        var hasUpgrade = false
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false

        mutating func note(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
            if ASCII.equalsIgnoringCase(name, "content-length") {
                if self.hasContentLength || value.contains(ASCII.comma) { self.hasRepeatedContentLength = true }
                self.hasContentLength = true
            } else if ASCII.equalsIgnoringCase(name, "transfer-encoding") {
                self.hasTransferEncoding = true
            } else if ASCII.equalsIgnoringCase(name, "upgrade") {
                self.hasUpgrade = true
            } else if ASCII.equalsIgnoringCase(name, "connection") {
                for element in value.split(separator: ASCII.comma) {
                    let option = element.trimmingOptionalWhitespace()
                    if ASCII.equalsIgnoringCase(option, "close") {
                        self.connectionClose = true
                    } else if ASCII.equalsIgnoringCase(option, "keep-alive") {
                        self.connectionKeepAlive = true
                    } else if ASCII.equalsIgnoringCase(option, "upgrade") {
                        self.connectionUpgrade = true
                    }
                }
            }
        }
    }

    let kind: Kind
    let maxHeaderBytes: Int
    let maxHeaderCount: Int
    var buffer: [UInt8] = []
    /// Start of the unconsumed bytes in `buffer`.
    var readIndex = 0
    /// Where the search for the end of the current line resumes, relative to `readIndex`.
    var scanOffset = 0
    var state = State.head
    var partial = PartialHead()
    /// Methods of the requests whose responses are still to come, oldest first.
    var expectedMethods: [String] = []
    var isAtEndOfInput = false

    /// Whether the last message parsed lets the connection carry another one (HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`); false after a close-delimited body or a protocol switch.
    package private(set) var keepAlive = true

    /// A parser expecting requests (`kind: .request`) or responses, with limits on the header section.
    package init(kind: Kind, maxHeaderBytes: Int = 64 * 1024, maxHeaderCount: Int = 200) {
        precondition(maxHeaderBytes > 0 && maxHeaderCount >= 0, "HTTP1Parser limits must be positive")
        self.kind = kind
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
    }

    /// Number of bytes buffered and not yet consumed (for backpressure).
    package var bufferedByteCount: Int { self.buffer.count - self.readIndex }

    /// Whether the head just returned ended HTTP/1.1 on this connection (upgrade, CONNECT, 101): the rest of the
    /// bytes are for the new protocol, see `takeRemainingBytes()`.
    package var isSwitchingProtocols: Bool {
        if case .switched = self.state { return true }
        return false
    }

    /// Appends bytes to the internal buffer.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        precondition(!self.isAtEndOfInput, "HTTP1Parser fed after finish()")
        if case .failed = self.state { return }
        self.compactIfWorthwhile()
        self.buffer.append(contentsOf: bytes)
    }

    /// Appends bytes to the internal buffer.
    package mutating func feed(_ bytes: [UInt8]) {
        precondition(!self.isAtEndOfInput, "HTTP1Parser fed after finish()")
        if case .failed = self.state { return }
        self.compactIfWorthwhile()
        self.buffer.append(contentsOf: bytes)
    }

    /// For a response parser: the method of the request whose response comes next (HEAD and CONNECT change the
    /// framing). Call once per request sent, in order; responses without an expectation are taken to answer a GET.
    package mutating func expectResponse(toMethod method: String) {
        precondition(self.kind == .response, "expectResponse(toMethod:) on a request parser")
        self.expectedMethods.append(method)
    }

    /// The next event, or `nil` when more bytes are needed. Throws on malformed input; the parser is then dead and
    /// throws the same error again.
    package mutating func next() throws -> Event? {
        do {
            return try self.nextEvent()
        } catch {
            self.fail(error)
            throw error
        }
    }

    /// Marks the end of the input (the peer closed) and returns the next event, as `next()` does from then on:
    /// `.end` for a body delimited by the close, `nil` between messages, `truncatedMessage` inside one.
    /// Drain with `next()` until it returns `nil`.
    package mutating func finish() throws -> Event? {
        self.isAtEndOfInput = true
        return try self.next()
    }

    /// After a protocol switch, the bytes already buffered past the head belong to the new protocol: take them.
    /// The parser stops parsing; later feeds are kept for another call.
    package mutating func takeRemainingBytes() -> [UInt8] {
        let remaining = Array(self.buffer[self.readIndex...])
        self.buffer.removeAll()
        self.readIndex = 0
        self.scanOffset = 0
        if case .failed = self.state {} else { self.state = .switched }
        return remaining
    }

    // MARK: - State machine

    mutating func nextEvent() throws(HTTP1Error) -> Event? {
        while true {
            let step: Step
            switch self.state {
            case .failed(let error): throw error
            case .switched: return nil
            case .head: step = try self.headStep()
            case .fixedBody(let remaining):
                if let bytes = self.takeBody(upTo: remaining) {
                    let left = remaining - bytes.count
                    self.state = left == 0 ? .endOfMessage : .fixedBody(remaining: left)
                    step = .event(.body(bytes))
                } else {
                    step = .needMore
                }
            case .closeDelimitedBody:
                step = self.takeBody(upTo: .max).map { .event(.body($0)) } ?? .needMore
            case .endOfMessage:
                self.state = .head
                step = .event(.end)
            case .chunkSize: step = try self.chunkSizeStep()
            case .chunkData(let remaining): step = self.chunkDataStep(remaining: remaining)
            case .chunkDataEnd: step = try self.chunkDataEndStep()
            case .trailers(let byteCount, let fieldCount):
                step = try self.trailerStep(byteCount: byteCount, fieldCount: fieldCount)
            }
            switch step {
            case .event(let event): return event
            case .progress: continue
            case .needMore:
                guard self.isAtEndOfInput else { return nil }
                switch self.state {
                case .head:
                    if self.partial.hasStartLine || self.bufferedByteCount > 0 { throw .truncatedMessage }
                    return nil
                case .closeDelimitedBody: self.state = .endOfMessage
                case .switched: return nil
                default: throw .truncatedMessage
                }
            }
        }
    }

    mutating func fail(_ error: HTTP1Error) {
        self.state = .failed(error)
        self.buffer = []
        self.readIndex = 0
        self.scanOffset = 0
    }

    /// Up to `limit` buffered bytes, consumed; `nil` if none are buffered.
    mutating func takeBody(upTo limit: Int) -> [UInt8]? {
        let count = min(self.bufferedByteCount, limit)
        guard count > 0 else { return nil }
        if self.readIndex == 0 && count == self.buffer.count {
            // The whole buffer is body (the usual case once a response is streaming): hand it over, no copy.
            let bytes = self.buffer
            self.buffer = []
            self.scanOffset = 0
            return bytes
        }
        let bytes = Array(self.buffer[self.readIndex..<(self.readIndex + count)])
        self.readIndex += count
        return bytes
    }

    /// Drops consumed bytes once they are at least half the buffer, so compaction stays amortized O(1) per byte.
    mutating func compactIfWorthwhile() {
        guard self.readIndex > 0 else { return }
        if self.readIndex == self.buffer.count {
            self.buffer.removeAll(keepingCapacity: true)
            self.readIndex = 0
        } else if self.readIndex >= 4096 && self.readIndex * 2 >= self.buffer.count {
            self.buffer.removeSubrange(0..<self.readIndex)
            self.readIndex = 0
        }
    }

    // MARK: - Lines

    /// Outcome of searching the buffer for the end of a line.
    enum LineSearch {
        /// The line, CRLF included, is this many bytes long.
        case found(length: Int)
        /// No line end yet; resume the search at this offset.
        case needMore(resumeAt: Int)
        case tooLong
        case failed(HTTP1Error)
    }

    /// The length (CRLF included) of the line at `readIndex`, or `nil` if it is not complete yet. The search resumes
    /// where the last one stopped, so a line arriving one byte at a time costs O(n) in total.
    mutating func scanLine(limit: Int, tooLong: HTTP1Error) throws(HTTP1Error) -> Int? {
        let start = self.readIndex
        let resume = self.scanOffset
        let search = self.buffer.withUnsafeBufferPointer {
            Self.findLineEnd(in: $0, lineStart: start, resumeAt: resume, limit: limit)
        }
        switch search {
        case .found(let length):
            self.scanOffset = 0
            return length
        case .needMore(let offset):
            self.scanOffset = offset
            return nil
        case .tooLong:
            throw tooLong
        case .failed(let error):
            throw error
        }
    }

    /// Finds the LF ending the line at `lineStart`; every byte at offset `limit` or beyond makes the line too long.
    static func findLineEnd(
        in buffer: UnsafeBufferPointer<UInt8>,
        lineStart: Int,
        resumeAt: Int,
        limit: Int
    ) -> LineSearch {
        var index = lineStart + resumeAt
        while index < buffer.count {
            if index - lineStart >= limit { return .tooLong }
            switch buffer[index] {
            case ASCII.lineFeed:
                guard index > lineStart, buffer[index - 1] == ASCII.carriageReturn else {
                    return .failed(.bareLineFeed)
                }
                return .found(length: index - lineStart + 1)
            case ASCII.carriageReturn:
                guard index + 1 < buffer.count else { return .needMore(resumeAt: index - lineStart) }
                guard buffer[index + 1] == ASCII.lineFeed else { return .failed(.bareCarriageReturn) }
            default:
                break
            }
            index += 1
        }
        return .needMore(resumeAt: index - lineStart)
    }

    // MARK: - Head

    mutating func headStep() throws(HTTP1Error) -> Step {
        let limit = self.maxHeaderBytes - self.partial.byteCount
        guard let length = try self.scanLine(limit: limit, tooLong: .headerTooLarge(limit: self.maxHeaderBytes)) else {
            return .needMore
        }
        let line = self.buffer[self.readIndex..<(self.readIndex + length - 2)]
        self.readIndex += length
        self.partial.byteCount += length
        if line.isEmpty {
            if self.partial.hasStartLine { return .event(try self.completeHead()) }
            guard self.kind == .request else { throw .malformedStartLine }
            return .progress
        }
        if !self.partial.hasStartLine {
            switch self.kind {
            case .request:
                (self.partial.method, self.partial.target, self.partial.version) = try Self.parseRequestLine(line)
            case .response:
                (self.partial.version, self.partial.status, self.partial.reason) = try Self.parseStatusLine(line)
            }
            self.partial.hasStartLine = true
        } else {
            let (name, value) = try Self.parseField(line)
            guard self.partial.headers.count < self.maxHeaderCount else { throw .tooManyHeaders }
            if self.partial.headers.count == 0 { self.partial.headers.reserveCapacity(16) }
            self.partial.framing.note(name: name, value: value)
            self.partial.headers.add(
                name: String(decoding: name, as: UTF8.self),
                value: String(decoding: value, as: UTF8.self)
            )
        }
        return .progress
    }

    /// Turns the assembled head into an event and sets up the body that follows it.
    mutating func completeHead() throws(HTTP1Error) -> Event {
        let partial = self.partial
        self.partial = PartialHead()
        let isHTTP10 = partial.version == "HTTP/1.0"
        let fields = partial.framing
        let keepAlive = !fields.connectionClose && (!isHTTP10 || fields.connectionKeepAlive)
        switch self.kind {
        case .request:
            // RFC 9112 §2.3: a server answers versions it does not implement (HTTP/1.2 included) with an error.
            guard isHTTP10 || partial.version == "HTTP/1.1" else { throw .invalidVersion }
            var head = HTTPRequestHead(
                method: partial.method,
                target: partial.target,
                version: partial.version,
                headers: partial.headers
            )
            let isUpgrade = !isHTTP10 && fields.connectionUpgrade && fields.hasUpgrade
            if isUpgrade || partial.method == "CONNECT" {
                self.switchProtocols()
                return .requestHead(head)
            }
            let framing = try Self.bodyFraming(of: partial.headers, fields, isHTTP10: isHTTP10, kind: .request)
            Self.normaliseContentLength(&head.headers, fields, framing)
            self.beginBody(framing)
            self.keepAlive = keepAlive
            return .requestHead(head)
        case .response:
            var head = HTTPResponseHead(
                status: partial.status,
                reason: partial.reason,
                version: partial.version,
                headers: partial.headers
            )
            let status = partial.status
            if (100..<200).contains(status) && status != 101 {
                return .responseHead(head)
            }
            let method = self.expectedMethods.isEmpty ? "GET" : self.expectedMethods.removeFirst()
            if status == 101 || (method == "CONNECT" && (200..<300).contains(status)) {
                self.switchProtocols()
                return .responseHead(head)
            }
            let framing: BodyFraming = if method == "HEAD" || status == 204 || status == 304 {
                .none
            } else {
                try Self.bodyFraming(of: partial.headers, fields, isHTTP10: isHTTP10, kind: .response)
            }
            Self.normaliseContentLength(&head.headers, fields, framing)
            self.beginBody(framing)
            self.keepAlive = keepAlive && framing != .untilClose
            return .responseHead(head)
        }
    }

    /// Repeated equal `Content-Length` values (`5, 5`, or two lines) become one field, so whoever reads the head
    /// next sees the length the parser framed the body with, not a list it might read differently.
    static func normaliseContentLength(_ headers: inout HTTPHeaders, _ fields: FramingFields, _ framing: BodyFraming) {
        guard fields.hasRepeatedContentLength, case .length(let length) = framing else { return }
        headers.replaceOrAdd(name: "Content-Length", value: "\(length)")
    }

    mutating func switchProtocols() {
        self.state = .switched
        self.keepAlive = false
    }

    mutating func beginBody(_ framing: BodyFraming) {
        switch framing {
        case .none, .length(0): self.state = .endOfMessage
        case .length(let length): self.state = .fixedBody(remaining: length)
        case .chunked: self.state = .chunkSize
        case .untilClose: self.state = .closeDelimitedBody
        }
    }

    /// RFC 9112 §6.3, with `Transfer-Encoding` plus `Content-Length` rejected outright.
    static func bodyFraming(
        of headers: HTTPHeaders,
        _ fields: FramingFields,
        isHTTP10: Bool,
        kind: Kind
    ) throws(HTTP1Error) -> BodyFraming {
        if fields.hasTransferEncoding {
            if fields.hasContentLength { throw .conflictingLengths }
            if isHTTP10 { throw .unsupportedTransferEncoding }
            let codings = headers.tokens("transfer-encoding")
            let chunkedCount = codings.count { $0 == "chunked" }
            if codings.last == "chunked" && chunkedCount == 1 { return .chunked }
            if kind == .response && chunkedCount == 0 && !codings.isEmpty { return .untilClose }
            throw .unsupportedTransferEncoding
        }
        if fields.hasContentLength { return .length(try self.contentLength(of: headers)) }
        return kind == .request ? .none : .untilClose
    }

    /// The one value of every `Content-Length` field and list element (RFC 9110 §8.6 allows `5, 5`).
    static func contentLength(of headers: HTTPHeaders) throws(HTTP1Error) -> Int {
        var length: Int?
        for value in headers[all: "content-length"] {
            for element in value.utf8.split(separator: ASCII.comma, omittingEmptySubsequences: false) {
                let digits = element.trimmingOptionalWhitespace()
                guard !digits.isEmpty else { throw .invalidContentLength }
                var parsed = 0
                for byte in digits {
                    guard ASCII.isDigit(byte) else { throw .invalidContentLength }
                    let (times10, overflow1) = parsed.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - ASCII.zero))
                    guard !overflow1 && !overflow2 else { throw .invalidContentLength }
                    parsed = sum
                }
                if let length, length != parsed { throw .conflictingLengths }
                length = parsed
            }
        }
        guard let length else { throw .invalidContentLength }
        return length
    }

    // MARK: - Line syntax

    /// `method SP request-target SP HTTP-version`: one space each, a token method, a visible-ASCII target.
    static func parseRequestLine(
        _ line: ArraySlice<UInt8>
    ) throws(HTTP1Error) -> (method: String, target: String, version: String) {
        guard let firstSpace = line.firstIndex(of: ASCII.space) else { throw .malformedStartLine }
        let method = line[..<firstSpace]
        guard !method.isEmpty, method.allSatisfy(ASCII.isToken) else { throw .malformedStartLine }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: ASCII.space) else { throw .malformedStartLine }
        let target = rest[..<secondSpace]
        guard !target.isEmpty, target.allSatisfy({ $0 > ASCII.space && $0 < ASCII.delete }) else {
            throw .malformedStartLine
        }
        let version = rest[(secondSpace + 1)...]
        guard !version.contains(ASCII.space) else { throw .malformedStartLine }
        return (
            String(decoding: method, as: UTF8.self),
            String(decoding: target, as: UTF8.self),
            try self.parseVersion(version)
        )
    }

    /// `HTTP-version SP 3DIGIT SP reason-phrase`; the space before an empty reason may be missing.
    static func parseStatusLine(
        _ line: ArraySlice<UInt8>
    ) throws(HTTP1Error) -> (version: String, status: Int, reason: String) {
        let version = try self.parseVersion(line.prefix(8))
        var rest = line.dropFirst(8)
        guard rest.popFirst() == ASCII.space, rest.count >= 3 else { throw .malformedStartLine }
        var status = 0
        for byte in rest.prefix(3) {
            guard ASCII.isDigit(byte) else { throw .malformedStartLine }
            status = status * 10 + Int(byte - ASCII.zero)
        }
        guard status >= 100 else { throw .malformedStartLine }
        rest = rest.dropFirst(3)
        guard rest.isEmpty || rest.popFirst() == ASCII.space else { throw .malformedStartLine }
        guard rest.allSatisfy(ASCII.isFieldValue) else { throw .malformedStartLine }
        return (version, status, String(decoding: rest, as: UTF8.self))
    }

    /// `HTTP/1.<digit>`, case-sensitive; anything else, `HTTP/2.0` included, is `invalidVersion`.
    static func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTP1Error) -> String {
        guard bytes.count == 8, bytes.starts(with: "HTTP/1.".utf8), let minor = bytes.last, ASCII.isDigit(minor)
        else {
            throw .invalidVersion
        }
        switch minor {
        case UInt8(ascii: "1"): return "HTTP/1.1"
        case UInt8(ascii: "0"): return "HTTP/1.0"
        default: return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// `field-name ":" OWS field-value OWS`, the value trimmed; obs-fold and space before the colon are rejected.
    static func parseField(
        _ line: ArraySlice<UInt8>
    ) throws(HTTP1Error) -> (name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        guard let colon = line.firstIndex(of: ASCII.colon) else { throw .malformedHeader }
        let name = line[..<colon]
        guard !name.isEmpty, name.allSatisfy(ASCII.isToken) else { throw .malformedHeader }
        let value = line[(colon + 1)...].trimmingOptionalWhitespace()
        guard value.allSatisfy(ASCII.isFieldValue) else { throw .malformedHeader }
        return (name, value)
    }
}

extension HTTP1Parser {
    /// Byte values and byte classes of HTTP/1.1 syntax.
    enum ASCII {
        static let horizontalTab = UInt8(ascii: "\t")
        static let lineFeed = UInt8(ascii: "\n")
        static let carriageReturn = UInt8(ascii: "\r")
        static let space = UInt8(ascii: " ")
        static let comma = UInt8(ascii: ",")
        static let colon = UInt8(ascii: ":")
        static let semicolon = UInt8(ascii: ";")
        static let zero = UInt8(ascii: "0")
        static let delete: UInt8 = 0x7F

        /// Whether `bytes` spell `lowercase` (lowercase letters and `-` only) in any case.
        static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
            guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
            return lowercase.withUTF8Buffer { expected in
                // Setting 0x20 lowercases letters and leaves `-`; no other byte that can reach here maps onto these.
                zip(bytes, expected).allSatisfy { $0 | 0x20 == $1 }
            }
        }

        /// SP or HTAB, the whitespace of HTTP/1.1 syntax.
        static func isWhitespace(_ byte: UInt8) -> Bool { byte == self.space || byte == self.horizontalTab }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= self.zero && byte <= UInt8(ascii: "9") }

        /// The value of a hexadecimal digit, or `nil`.
        static func hexValue(_ byte: UInt8) -> Int? { Hex.value(byte) }

        /// A `tchar` (RFC 9110 §5.6.2).
        static func isToken(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
                UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                true
            default:
                false
            }
        }

        /// HTAB, SP, visible ASCII or obs-text: what a field value (and a reason phrase) may hold.
        static func isFieldValue(_ byte: UInt8) -> Bool {
            byte == self.horizontalTab || (byte >= self.space && byte != self.delete)
        }
    }
}
