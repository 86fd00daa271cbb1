/// A Prometheus counter family: one monotonically increasing value per combination of label values.
///
/// Obtain one from `MetricsRegistry.counter(_:help:labels:)` once, keep it, and call `increment` on the hot
/// path: one lock and one dictionary lookup.
package final class Counter: Sendable {
    /// Metric name, e.g. `porthole_requests_total`.
    package var name: String { self.series.name }
    /// The `# HELP` text.
    package let help: String
    /// Label names; every call passes values in this order.
    package var labelNames: [String] { self.series.labelNames }
    private let series: LabeledSeries

    init(name: String, help: String, labelNames: [String]) {
        self.help = help
        self.series = LabeledSeries(name: name, labelNames: labelNames)
    }

    /// Adds `amount` (not negative) to the series with these label values, creating it at 0 first.
    package func increment(labels: [String] = [], by amount: Double = 1) {
        precondition(amount >= 0, "\(self.name): a counter cannot decrease")
        self.series.update(labels) { $0 += amount }
    }

    /// The current value of one series; 0 if it was never incremented.
    package func value(labels: [String] = []) -> Double {
        self.series.value(labels: labels)
    }

    /// Drops one series, e.g. when the agent it describes is gone for good.
    package func remove(labels: [String]) {
        self.series.remove(labels: labels)
    }

    func render(into text: inout String) {
        self.series.render(into: &text)
    }
}
