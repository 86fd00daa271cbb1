import Dispatch
import Foundation
import Synchronization

/// Turns POSIX signals into awaitable events (the default action of each watched signal is disabled).
package final class SignalWatcher {
    private let sources: [DispatchSourceSignal]
    private let state = Mutex<(pending: [Int32], waiters: [CheckedContinuation<Int32, Never>])>(([], []))
    private static let queue = DispatchQueue(label: "porthole.signals")

    package init(signals: [Int32]) {
        var sources: [DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: Self.queue)
            sources.append(source)
        }
        self.sources = sources
        for (source, number) in zip(sources, signals) {
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
        }
    }

    private func deliver(_ number: Int32) {
        let waiter: CheckedContinuation<Int32, Never>? = self.state.withLock { state in
            if state.waiters.isEmpty {
                state.pending.append(number)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: number)
    }

    /// The next signal received.
    package func next() async -> Int32 {
        await withCheckedContinuation { continuation in
            let ready: Int32? = self.state.withLock { state in
                if !state.pending.isEmpty { return state.pending.removeFirst() }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

// `sources` never change after init; everything else is behind the mutex.
extension SignalWatcher: @unchecked Sendable {}
