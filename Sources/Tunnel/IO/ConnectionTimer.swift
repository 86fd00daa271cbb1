import Dispatch

/// One re-armable deadline on a connection's queue: a single timer source per connection, moved as the
/// connection passes from phase to phase, rather than one per phase.
///
/// The handler runs on `queue`; it should check that its deadline really passed (a timer moved just before it
/// fired may still deliver the old one). Call `cancel` when the connection closes.
package final class ConnectionTimer {
    private let queue: DispatchQueue
    private let source: DispatchSourceTimer
    private var isCancelled = false

    /// An unarmed timer; `handler` runs on `queue` each time an armed deadline passes.
    package init(queue: DispatchQueue, handler: @escaping () -> Void) {
        self.queue = queue
        self.source = DispatchSource.makeTimerSource(queue: queue)
        // Only ever called on `queue`, which confines what the handler touches.
        nonisolated(unsafe) let handler = handler
        self.source.setEventHandler { handler() }
        self.source.schedule(deadline: .distantFuture)
        self.source.resume()
    }

    /// Fires once at `uptimeNanoseconds` (monotonic, as `DispatchTime`); replaces any earlier deadline.
    package func arm(at uptimeNanoseconds: UInt64) {
        dispatchPrecondition(condition: .onQueue(self.queue))
        guard !self.isCancelled else { return }
        self.source.schedule(deadline: DispatchTime(uptimeNanoseconds: uptimeNanoseconds),
                             leeway: .milliseconds(50))
    }

    /// Fires no more until armed again.
    package func disarm() {
        dispatchPrecondition(condition: .onQueue(self.queue))
        guard !self.isCancelled else { return }
        self.source.schedule(deadline: .distantFuture)
    }

    /// Releases the timer for good.
    package func cancel() {
        guard !self.isCancelled else { return }
        self.isCancelled = true
        self.source.cancel()
    }

    deinit {
        self.source.cancel()
    }
}

// Confined to `queue`, like the connection that owns it.
extension ConnectionTimer: @unchecked Sendable {}
