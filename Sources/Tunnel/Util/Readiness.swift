import Synchronization

/// A thread-safe flag for `/readyz`.
package final class Readiness: Sendable {
    private let value = Mutex(false)

    package init() {}

    package func set(_ ready: Bool) {
        self.value.withLock { $0 = ready }
    }

    package func withLock<R>(_ body: (inout Bool) -> R) -> R {
        self.value.withLock { body(&$0) }
    }

    package var isReady: Bool { self.value.withLock { $0 } }
}
