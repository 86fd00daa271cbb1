import Synchronization

/// A Prometheus gauge family: one value per combination of label values that can go up and down.
///
/// For a value that already lives elsewhere (a connection count), prefer
/// `MetricsRegistry.gaugeFunction(_:help:_:)`, which reads it at scrape time.
package final class Gauge: Sendable {
    /// Metric name, e.g. `porthole_streams_active`.
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

    /// Sets the series with these label values to `value`.
    package func set(_ value: Double, labels: [String] = []) {
        precondition(labels.count == self.labelNames.count, "\(self.name) takes labels \(self.labelNames)")
        self.values.withLock { $0[labels] = value }
    }

    /// Adds `delta` (may be negative) to the series with these label values, creating it at 0 first.
    package func add(_ delta: Double, labels: [String] = []) {
        precondition(labels.count == self.labelNames.count, "\(self.name) takes labels \(self.labelNames)")
        self.values.withLock { $0[labels, default: 0] += delta }
    }

    /// The current value of one series; 0 if it was never set.
    package func value(labels: [String] = []) -> Double {
        self.values.withLock { $0[labels] ?? 0 }
    }

    /// Drops one series, e.g. when the agent it describes disconnects.
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

/// A gauge whose value is read from a closure at scrape time, so nothing has to be kept in step.
final class GaugeFunction: Sendable {
    let name: String
    let help: String
    let read: @Sendable () -> Double

    init(name: String, help: String, read: @escaping @Sendable () -> Double) {
        self.name = name
        self.help = help
        self.read = read
    }

    func render(into text: inout String) {
        PrometheusText.appendSample(&text, name: self.name, labelNames: [], labelValues: [], value: self.read())
    }
}
