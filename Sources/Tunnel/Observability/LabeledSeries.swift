import Synchronization

/// The values of one metric family, one per combination of label values: what counters and gauges share.
final class LabeledSeries: Sendable {
    let name: String
    let labelNames: [String]
    private let values: Mutex<[[String]: Double]>

    init(name: String, labelNames: [String]) {
        self.name = name
        self.labelNames = labelNames
        self.values = Mutex(labelNames.isEmpty ? [[]: 0] : [:])
    }

    /// Changes the series with these label values, created at 0 first.
    func update(_ labels: [String], _ change: (inout Double) -> Void) {
        precondition(labels.count == self.labelNames.count, "\(self.name) takes labels \(self.labelNames)")
        self.values.withLock { change(&$0[labels, default: 0]) }
    }

    /// The current value of one series; 0 if it was never changed.
    func value(labels: [String]) -> Double {
        self.values.withLock { $0[labels] ?? 0 }
    }

    func remove(labels: [String]) {
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
