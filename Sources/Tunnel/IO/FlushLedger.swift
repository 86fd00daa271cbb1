/// Matches what was written to a connection with the body bytes inside it, so those bytes are acknowledged to
/// whoever sent them (`nghttp2_session_consume`) only once the kernel has taken them: flow control end to end.
///
/// `Owner` is whatever the acknowledgement goes to, e.g. the tunnel stream of the exchange that wrote.
package struct FlushLedger<Owner: AnyObject> {
    private var entries: [(written: Int, body: Int, owner: Owner?)] = []
    private var head = 0
    private var credit = 0

    package init() {}

    /// Notes a write of `written` bytes to the connection, of which `body` are to be acknowledged to `owner`.
    package mutating func record(written: Int, body: Int, for owner: Owner?) {
        self.entries.append((written, body, owner))
    }

    /// The connection flushed `count` more bytes: calls `acknowledge` for the body bytes of every write now
    /// entirely in the kernel, in order.
    package mutating func flushed(_ count: Int, acknowledge: (Owner, Int) -> Void) {
        self.credit += count
        while self.head < self.entries.count, self.entries[self.head].written <= self.credit {
            let entry = self.entries[self.head]
            self.credit -= entry.written
            self.head += 1
            if entry.body > 0, let owner = entry.owner { acknowledge(owner, entry.body) }
        }
        self.compact()
    }

    /// Forgets every write not yet flushed (the connection closed), acknowledging their body bytes so the
    /// senders' windows are not lost.
    package mutating func removeAll(acknowledge: (Owner, Int) -> Void) {
        for entry in self.entries[self.head...] where entry.body > 0 {
            if let owner = entry.owner { acknowledge(owner, entry.body) }
        }
        self.entries.removeAll()
        self.head = 0
        self.credit = 0
    }

    private mutating func compact() {
        if self.head == self.entries.count {
            self.entries.removeAll(keepingCapacity: true)
            self.head = 0
        } else if self.head > 64 {
            self.entries.removeFirst(self.head)
            self.head = 0
        }
    }
}
