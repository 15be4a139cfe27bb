import Foundation
import Synchronization

/// The Prometheus text exposition format (0.0.4), written by hand: per family a `# HELP` and a
/// `# TYPE` line, then its samples. Label values are escaped here and nowhere else.
package struct PrometheusText {
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    package enum Kind: String {
        case counter, gauge, histogram
    }

    package private(set) var text = ""

    package init() {}

    package mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        let escapedHelp = help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
        text += "# HELP \(name) \(escapedHelp)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    package mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + Self.format(value) + "\n"
    }

    package mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int) {
        sample(name, labels, Double(value))
    }

    /// `_bucket` samples (cumulative, ending in `+Inf`), `_sum` and `_count`.
    package mutating func histogram(_ name: String, _ labels: [(String, String)] = [], _ histogram: Histogram) {
        var cumulative = 0
        for (bound, count) in zip(histogram.bounds, histogram.buckets) {
            cumulative += count
            sample(name + "_bucket", labels + [("le", Self.format(bound))], cumulative)
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], histogram.count)
        sample(name + "_sum", labels, histogram.sum)
        sample(name + "_count", labels, histogram.count)
    }

    /// Backslash, double quote and line feed escaped, as the format asks; any other byte is
    /// UTF-8 text a label value may hold.
    static func escape(_ value: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Whole numbers without a fraction (counts read as counts), others in Swift's shortest
    /// round-tripping form; `+Inf`, `-Inf` and `NaN` as the format spells them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// Counts of observations at or under each bound (not yet cumulative), their sum and count.
package struct Histogram: Sendable, Equatable {
    package let bounds: [Double]
    package private(set) var buckets: [Int]
    package private(set) var count = 0
    package private(set) var sum = 0.0

    package init(bounds: [Double]) {
        self.bounds = bounds
        buckets = Array(repeating: 0, count: bounds.count)
    }

    package mutating func observe(_ value: Double) {
        count += 1
        sum += value
        if let index = bounds.firstIndex(where: { value <= $0 }) { buckets[index] += 1 }
    }

    /// Receivers answer in milliseconds to the longest timeout.
    package static let attemptSeconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// A store-loop cycle or a commit: well under a millisecond to a slow disk's hundreds.
    package static let storeSeconds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
}

/// Label values drawn from a set that grows with the customers (endpoint ids, tenants, event
/// types): the first `limit` values seen keep their own label for the life of the process, and
/// every later one is reported as `(other)`, which no id can be. A family therefore has at most
/// `limit + 1` series per other label, however many endpoints there are.
package final class BoundedLabels: Sendable {
    package static let overflow = "(other)"
    package let limit: Int
    private let known = Mutex<Set<String>>([])

    package init(limit: Int) {
        self.limit = max(0, limit)
    }

    package func value(for id: String) -> String {
        known.withLock { known in
            if known.contains(id) { return id }
            guard known.count < limit else { return Self.overflow }
            known.insert(id)
            return id
        }
    }
}
