import Synchronization

/// A Prometheus counter family: one monotonically increasing value per combination of label values.
///
/// Obtain one from `MetricsRegistry.counter(_:help:labels:)` once, keep it, and call `increment` on the hot
/// path: one lock and one dictionary lookup.
package final class Counter: Sendable {
    /// Metric name, e.g. `porthole_requests_total`.
    package let name: String
    /// The `# HELP` text.
    package let help: String
    /// Label names; every call passes values in this order.
    package let labelNames: [String]
    private let values: Mutex<[[String]: Double]>

    init(name: String, help: String, labelNames: [String]) {
        self.name = name
        self.help = help
        self.labelNames = labelNames
        self.values = Mutex(labelNames.isEmpty ? [[]: 0] : [:])
    }

    /// Adds `amount` (not negative) to the series with these label values, creating it at 0 first.
    package func increment(labels: [String] = [], by amount: Double = 1) {
        precondition(labels.count == self.labelNames.count, "\(self.name) takes labels \(self.labelNames)")
        precondition(amount >= 0, "\(self.name): a counter cannot decrease")
        self.values.withLock { $0[labels, default: 0] += amount }
    }

    /// The current value of one series; 0 if it was never incremented.
    package func value(labels: [String] = []) -> Double {
        self.values.withLock { $0[labels] ?? 0 }
    }

    /// Drops one series, e.g. when the agent it describes is gone for good.
    package func remove(labels: [String]) {
        _ = self.values.withLock { $0.removeValue(forKey: labels) }
    }

    func render(into text: inout String) {
        let series = self.values.withLock { $0 }
        for labels in series.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            PrometheusText.appendSample(
                &text, name: self.name, labelNames: self.labelNames, labelValues: labels, value: series[labels]!)
        }
    }
}
