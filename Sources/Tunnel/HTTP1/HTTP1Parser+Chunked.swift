extension HTTP1Parser {
    /// Longest chunk-size line (extensions included) accepted, so extensions cannot make the parser buffer forever.
    static let maxChunkLineBytes = 4096

    /// `chunk-size [ chunk-ext ] CRLF`; a size of zero starts the trailer section.
    mutating func chunkSizeStep() throws(HTTP1Error) -> Step {
        guard let length = try self.scanLine(limit: Self.maxChunkLineBytes, tooLong: .malformedChunk) else {
            return .needMore
        }
        let size = try Self.parseChunkSize(self.buffer[self.readIndex..<(self.readIndex + length - 2)])
        self.readIndex += length
        self.state = size == 0 ? .trailers(byteCount: 0, fieldCount: 0) : .chunkData(remaining: size)
        return .progress
    }

    mutating func chunkDataStep(remaining: Int) -> Step {
        guard let bytes = self.takeBody(upTo: remaining) else { return .needMore }
        self.state = bytes.count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - bytes.count)
        return .event(.body(bytes))
    }

    /// The CRLF after chunk data; anything else means the size lied.
    mutating func chunkDataEndStep() throws(HTTP1Error) -> Step {
        guard self.bufferedByteCount >= 1 else { return .needMore }
        guard self.buffer[self.readIndex] == ASCII.carriageReturn else { throw .malformedChunk }
        guard self.bufferedByteCount >= 2 else { return .needMore }
        guard self.buffer[self.readIndex + 1] == ASCII.lineFeed else { throw .malformedChunk }
        self.readIndex += 2
        self.state = .chunkSize
        return .progress
    }

    /// One trailer field, checked like a header field and dropped, or the empty line ending the message. The trailer
    /// section has the header section's limits.
    mutating func trailerStep(byteCount: Int, fieldCount: Int) throws(HTTP1Error) -> Step {
        let limit = self.maxHeaderBytes - byteCount
        guard let length = try self.scanLine(limit: limit, tooLong: .headerTooLarge(limit: self.maxHeaderBytes)) else {
            return .needMore
        }
        if length == 2 {
            self.readIndex += 2
            self.state = .endOfMessage
            return .progress
        }
        _ = try Self.parseField(self.buffer[self.readIndex..<(self.readIndex + length - 2)])
        guard fieldCount < self.maxHeaderCount else { throw .tooManyHeaders }
        self.readIndex += length
        self.state = .trailers(byteCount: byteCount + length, fieldCount: fieldCount + 1)
        return .progress
    }

    /// Hex digits, then nothing or `BWS ";" chunk-ext` (ignored, but free of control characters).
    static func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTP1Error) -> Int {
        var size = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = ASCII.hexValue(line[index]) {
            let (times16, overflow1) = size.multipliedReportingOverflow(by: 16)
            let (sum, overflow2) = times16.addingReportingOverflow(digit)
            guard !overflow1 && !overflow2 else { throw .malformedChunk }
            size = sum
            index += 1
        }
        guard index > line.startIndex else { throw .malformedChunk }
        var extensions = line[index...]
        guard !extensions.isEmpty else { return size }
        while let first = extensions.first, ASCII.isWhitespace(first) { extensions.removeFirst() }
        guard extensions.first == ASCII.semicolon, extensions.allSatisfy(ASCII.isFieldValue) else {
            throw .malformedChunk
        }
        return size
    }
}
