/// A Prometheus gauge family: one value per combination of label values that can go up and down.
///
/// For a value that already lives elsewhere (a connection count), prefer
/// `MetricsRegistry.gaugeFunction(_:help:_:)`, which reads it at scrape time.
package final class Gauge: Sendable {
    /// Metric name, e.g. `porthole_streams_active`.
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

    /// Sets the series with these label values to `value`.
    package func set(_ value: Double, labels: [String] = []) {
        self.series.update(labels) { $0 = value }
    }

    /// Adds `delta` (may be negative) to the series with these label values, creating it at 0 first.
    package func add(_ delta: Double, labels: [String] = []) {
        self.series.update(labels) { $0 += delta }
    }

    /// The current value of one series; 0 if it was never set.
    package func value(labels: [String] = []) -> Double {
        self.series.value(labels: labels)
    }

    /// Drops one series, e.g. when the agent it describes disconnects.
    package func remove(labels: [String]) {
        self.series.remove(labels: labels)
    }

    func render(into text: inout String) {
        self.series.render(into: &text)
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
