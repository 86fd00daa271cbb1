import Dispatch
import Foundation

/// A fixed set of serial queues that connection queues target, one per core, so thousands of connections share
/// a few threads the way event loops do.
package final class EventLoops: Sendable {
    package static let shared = EventLoops(count: max(1, ProcessInfo.processInfo.activeProcessorCount))

    private let loops: [DispatchQueue]
    private let next = AtomicCounter()

    package init(count: Int) {
        self.loops = (0..<count).map { DispatchQueue(label: "porthole.loop.\($0)") }
    }

    /// A new serial queue for one connection, on the next loop in turn.
    package func makeConnectionQueue(label: String) -> DispatchQueue {
        let index = self.next.increment() % self.loops.count
        return DispatchQueue(label: label, target: self.loops[index])
    }
}

/// A thread-safe counter.
package final class AtomicCounter: Sendable {
    private let value = Mutex(0)

    package init() {}

    /// Adds one and returns the value before.
    package func increment() -> Int {
        self.value.withLock { value in
            defer { value &+= 1 }
            return value
        }
    }
}

import Synchronization
