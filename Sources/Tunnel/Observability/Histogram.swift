import Synchronization

/// A Prometheus histogram family: per combination of label values, counts of observations at or below each
/// bucket bound, their sum and their count.
package final class Histogram: Sendable {
    /// Request-latency bounds in seconds, from 1 ms to 30 s; a tunnelled request that takes longer is a
    /// long-lived stream and lands in `+Inf`.
    package static let defaultLatencyBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    struct Series {
        /// Observations per bucket, not cumulative; the last slot is above every bound.
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    /// Metric name, e.g. `porthole_request_duration_seconds`.
    package let name: String
    /// The `# HELP` text.
    package let help: String
    /// Label names; every call passes values in this order.
    package let labelNames: [String]
    /// Upper bounds, strictly increasing, without `+Inf`.
    package let buckets: [Double]
    private let series: Mutex<[[String]: Series]>

    init(name: String, help: String, labelNames: [String], buckets: [Double]) {
        precondition(!labelNames.contains("le"), "\(name): \"le\" is reserved for histogram buckets")
        precondition(zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 }, "\(name): buckets must increase")
        precondition(buckets.allSatisfy(\.isFinite), "\(name): +Inf is implicit")
        self.name = name
        self.help = help
        self.labelNames = labelNames
        self.buckets = buckets
        let empty = Series(counts: Array(repeating: 0, count: buckets.count + 1))
        self.series = Mutex(labelNames.isEmpty ? [[]: empty] : [:])
    }

    /// Records one observation (seconds, bytes…) in the series with these label values.
    package func observe(_ value: Double, labels: [String] = []) {
        precondition(labels.count == self.labelNames.count, "\(self.name) takes labels \(self.labelNames)")
        let bucket = self.buckets.firstIndex { value <= $0 } ?? self.buckets.count
        let slots = self.buckets.count + 1
        self.series.withLock { all in
            Self.record(
                value, bucket: bucket, in: &all[labels, default: Series(counts: Array(repeating: 0, count: slots))])
        }
    }

    /// Updates one series in place, so the dictionary entry is looked up once.
    private static func record(_ value: Double, bucket: Int, in series: inout Series) {
        series.counts[bucket] += 1
        series.sum += value
        series.count += 1
    }

    /// Number of observations in one series.
    package func count(labels: [String] = []) -> UInt64 {
        self.series.withLock { $0[labels]?.count ?? 0 }
    }

    /// Sum of observations in one series.
    package func sum(labels: [String] = []) -> Double {
        self.series.withLock { $0[labels]?.sum ?? 0 }
    }

    /// Drops one series.
    package func remove(labels: [String]) {
        _ = self.series.withLock { $0.removeValue(forKey: labels) }
    }

    func render(into text: inout String) {
        let all = self.series.withLock { $0 }
        let bucketLabels = self.labelNames + ["le"]
        let bounds = self.buckets.map(PrometheusText.format) + ["+Inf"]
        for labels in all.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let series = all[labels]!
            var cumulative: UInt64 = 0
            for (index, bound) in bounds.enumerated() {
                cumulative += series.counts[index]
                PrometheusText.appendSample(
                    &text, name: "\(self.name)_bucket", labelNames: bucketLabels, labelValues: labels + [bound],
                    value: Double(cumulative))
            }
            PrometheusText.appendSample(
                &text, name: "\(self.name)_sum", labelNames: self.labelNames, labelValues: labels, value: series.sum)
            PrometheusText.appendSample(
                &text, name: "\(self.name)_count", labelNames: self.labelNames, labelValues: labels,
                value: Double(series.count))
        }
    }
}
