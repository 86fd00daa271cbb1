import Synchronization

/// Holds a process's metrics and renders them in the Prometheus text exposition format 0.0.4.
///
/// Executables use `MetricsRegistry.shared` and serve `render()` on `/metrics`; components take the registry
/// as a parameter (defaulting to `.shared`) so tests can pass a fresh one. Register each family once at
/// start-up and keep the returned `Counter`, `Gauge` or `Histogram`: registering again with the same name,
/// type and labels returns the same family, anything else is a programming error.
package final class MetricsRegistry: Sendable {
    /// The process-wide registry the executables serve.
    package static let shared = MetricsRegistry()

    /// `Content-Type` of `render()`'s output.
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    enum Family: Sendable {
        case counter(Counter)
        case gauge(Gauge)
        case histogram(Histogram)
        case gaugeFunction(GaugeFunction)
    }

    private let families = Mutex<[String: Family]>([:])

    /// An empty registry.
    package init() {}

    /// The counter family `name` with `labels`, created on first use.
    package func counter(_ name: String, help: String, labels: [String] = []) -> Counter {
        Self.checkNames(name, labels)
        return self.families.withLock { families in
            switch families[name] {
            case nil:
                let counter = Counter(name: name, help: help, labelNames: labels)
                families[name] = .counter(counter)
                return counter
            case .counter(let counter)? where counter.labelNames == labels:
                return counter
            default:
                preconditionFailure("metric \(name) is already registered with another type or labels")
            }
        }
    }

    /// The gauge family `name` with `labels`, created on first use.
    package func gauge(_ name: String, help: String, labels: [String] = []) -> Gauge {
        Self.checkNames(name, labels)
        return self.families.withLock { families in
            switch families[name] {
            case nil:
                let gauge = Gauge(name: name, help: help, labelNames: labels)
                families[name] = .gauge(gauge)
                return gauge
            case .gauge(let gauge)? where gauge.labelNames == labels:
                return gauge
            default:
                preconditionFailure("metric \(name) is already registered with another type or labels")
            }
        }
    }

    /// The histogram family `name` with `labels` and bucket upper bounds (`+Inf` is added), created on first use.
    package func histogram(
        _ name: String, help: String, labels: [String] = [], buckets: [Double] = Histogram.defaultLatencyBuckets
    ) -> Histogram {
        Self.checkNames(name, labels)
        return self.families.withLock { families in
            switch families[name] {
            case nil:
                let histogram = Histogram(name: name, help: help, labelNames: labels, buckets: buckets)
                families[name] = .histogram(histogram)
                return histogram
            case .histogram(let histogram)? where histogram.labelNames == labels && histogram.buckets == buckets:
                return histogram
            default:
                preconditionFailure("metric \(name) is already registered with another type, labels or buckets")
            }
        }
    }

    /// A gauge without labels whose value `read` returns at each scrape; registering the name again replaces
    /// the closure. `read` runs with no registry lock held and may take the caller's own locks.
    package func gaugeFunction(_ name: String, help: String, _ read: @escaping @Sendable () -> Double) {
        Self.checkNames(name, [])
        self.families.withLock { families in
            switch families[name] {
            case nil, .gaugeFunction?:
                families[name] = .gaugeFunction(GaugeFunction(name: name, help: help, read: read))
            default:
                preconditionFailure("metric \(name) is already registered with another type")
            }
        }
    }

    private static func checkNames(_ name: String, _ labels: [String]) {
        precondition(PrometheusText.isMetricName(name), "invalid metric name \(name)")
        precondition(labels.allSatisfy(PrometheusText.isLabelName), "invalid label names \(labels) for \(name)")
        precondition(Set(labels).count == labels.count, "duplicate label names \(labels) for \(name)")
    }

    /// Every family in name order, series in label-value order: `# HELP`, `# TYPE`, then samples.
    package func render() -> String {
        let families = self.families.withLock { $0 }
        var text = ""
        for name in families.keys.sorted() {
            switch families[name]! {
            case .counter(let counter):
                PrometheusText.appendHeader(&text, name: name, help: counter.help, type: "counter")
                counter.render(into: &text)
            case .gauge(let gauge):
                PrometheusText.appendHeader(&text, name: name, help: gauge.help, type: "gauge")
                gauge.render(into: &text)
            case .histogram(let histogram):
                PrometheusText.appendHeader(&text, name: name, help: histogram.help, type: "histogram")
                histogram.render(into: &text)
            case .gaugeFunction(let function):
                PrometheusText.appendHeader(&text, name: name, help: function.help, type: "gauge")
                function.render(into: &text)
            }
        }
        return text
    }
}
