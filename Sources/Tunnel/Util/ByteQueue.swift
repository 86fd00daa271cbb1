/// A FIFO of bytes kept as the chunks they arrived in, so appending and draining never copy the whole queue.
package struct ByteQueue: Sendable {
    private var chunks: [[UInt8]] = []
    private var head = 0
    private var offset = 0

    /// The number of bytes queued.
    package private(set) var count = 0

    package init() {}

    package var isEmpty: Bool { self.count == 0 }

    package mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        self.chunks.append(bytes)
        self.count += bytes.count
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        self.append(Array(bytes))
    }

    /// Copies up to `destination.count` bytes into `destination`, removes them, and returns how many.
    package mutating func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < destination.count, self.head < self.chunks.count {
            let chunk = self.chunks[self.head]
            let take = min(chunk.count - self.offset, destination.count - written)
            chunk.withUnsafeBytes { source in
                let start = source.baseAddress! + self.offset
                (destination.baseAddress! + written).copyMemory(from: start, byteCount: take)
            }
            written += take
            self.offset += take
            if self.offset == chunk.count {
                self.head += 1
                self.offset = 0
            }
        }
        self.count -= written
        self.compactIfWorthIt()
        return written
    }

    /// Calls `body` with the first contiguous run of queued bytes; `body` returns how many it used.
    package mutating func withFirstChunk(_ body: (UnsafeRawBufferPointer) -> Int) -> Int {
        guard self.head < self.chunks.count else { return 0 }
        let used = self.chunks[self.head].withUnsafeBytes { chunk in
            body(UnsafeRawBufferPointer(rebasing: chunk[self.offset...]))
        }
        self.discard(used)
        return used
    }

    /// Removes `amount` bytes from the front.
    package mutating func discard(_ amount: Int) {
        precondition(amount <= self.count, "discarding more than is queued")
        var left = amount
        while left > 0 {
            let available = self.chunks[self.head].count - self.offset
            if left >= available {
                left -= available
                self.head += 1
                self.offset = 0
            } else {
                self.offset += left
                left = 0
            }
        }
        self.count -= amount
        self.compactIfWorthIt()
    }

    /// Removes and returns everything queued, as one array.
    package mutating func removeAll() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(self.count)
        while self.head < self.chunks.count {
            out.append(contentsOf: self.chunks[self.head][self.offset...])
            self.head += 1
            self.offset = 0
        }
        self.chunks.removeAll(keepingCapacity: true)
        self.head = 0
        self.count = 0
        return out
    }

    private mutating func compactIfWorthIt() {
        if self.head == self.chunks.count {
            self.chunks.removeAll(keepingCapacity: true)
            self.head = 0
        } else if self.head >= 64 {
            self.chunks.removeFirst(self.head)
            self.head = 0
        }
    }
}
