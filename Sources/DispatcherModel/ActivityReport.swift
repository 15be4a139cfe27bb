import Foundation

/// What the attempts of a recent period say: a timeline of successes and failures, and each
/// endpoint's success rate and latency over the last hour and the last day. The dashboard's
/// overview chart and endpoint health both read it.
package struct ActivityReport: Sendable, Equatable {
    package var generatedAt: Date
    /// The timeline's first bucket starts here; it covers up to `generatedAt`.
    package var since: Date
    package var bucketSeconds: Double
    package var buckets: [ActivityBucket]
    /// By endpoint id; endpoints without attempts in the period are absent.
    package var endpoints: [String: EndpointActivity]
}

/// Attempts that started within one bucket of the timeline.
package struct ActivityBucket: Sendable, Equatable {
    package var start: Date
    package var succeeded = 0
    /// Failed attempts, whether a retry followed or not.
    package var failed = 0
}

/// One endpoint's attempts over the last hour and the last day.
package struct EndpointActivity: Sendable, Equatable {
    package var lastHour = AttemptWindow()
    package var lastDay = AttemptWindow()
    /// The newest failed attempt in the period, if any.
    package var lastFailure: AttemptFailure?

    package init(lastFailure: AttemptFailure? = nil) {
        self.lastFailure = lastFailure
    }
}

package struct AttemptFailure: Sendable, Equatable {
    package var at: Date
    package var summary: String
}

/// Counts and a latency histogram for one endpoint over one window.
package struct AttemptWindow: Sendable, Equatable {
    package var attempts = 0
    package var succeeded = 0
    package var latency = LatencyHistogram()

    package var successRate: Double? { attempts == 0 ? nil : Double(succeeded) / Double(attempts) }

    mutating func add(succeeded: Bool, durationMicroseconds: Int64) {
        attempts += 1
        if succeeded { self.succeeded += 1 }
        latency.record(microseconds: durationMicroseconds)
    }
}

/// Latencies in logarithmic buckets, 16 per doubling (each about 4.4 % wide), from 1 µs to
/// about 70 minutes: percentiles of millions of attempts in a few kilobytes, to within 4.4 %.
package struct LatencyHistogram: Sendable, Equatable {
    static let bucketsPerDoubling = 16.0
    static let bucketCount = 32 * 16
    package private(set) var count = 0
    private var counts: [Int] = []

    package init() {}

    package mutating func record(microseconds: Int64) {
        add(1, toBucket: microseconds <= 1 ? 0 : Int(log2(Double(microseconds)) * Self.bucketsPerDoubling))
    }

    /// `count` latencies at once, by the bucket index `record` would give each: a store that
    /// groups on its server sends buckets, not attempts (`bucketSQL`).
    package mutating func add(_ count: Int, toBucket index: Int) {
        if counts.isEmpty { counts = Array(repeating: 0, count: Self.bucketCount) }
        counts[min(max(index, 0), Self.bucketCount - 1)] += count
        self.count += count
    }

    /// `record`'s bucket index of the microseconds in `column`, in PostgreSQL's SQL.
    package static func bucketSQL(_ column: String) -> String {
        "CASE WHEN \(column) <= 1 THEN 0 ELSE floor(ln(\(column)::float8) / ln(2::float8) * \(Int(bucketsPerDoubling)))::int END"
    }

    /// The upper edge of the bucket holding the `fraction` quantile (0.5, 0.99), in milliseconds.
    package func percentileMilliseconds(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((Double(count) * fraction).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in counts.enumerated() {
            seen += bucketCount
            if seen >= rank { return pow(2, Double(index + 1) / Self.bucketsPerDoubling) / 1000 }
        }
        return nil
    }
}

extension ActivityReport {
    /// The start of a 24-bucket hourly timeline ending with the current hour, on hour
    /// boundaries so each bar is one clock hour.
    package static func hourlyTimelineStart(now: Date) -> Date {
        let hour = (now.timeIntervalSince1970 / 3_600).rounded(.down) * 3_600
        return Date(timeIntervalSince1970: hour - 23 * 3_600)
    }

    /// Folds attempts, in any order, into a report; stores feed it one row at a time so a day
    /// of attempts never sits in memory.
    package struct Builder {
        let now: Int64
        let sinceMilliseconds: Int64
        let hourAgo: Int64
        let dayAgo: Int64
        let bucketMilliseconds: Int64
        var buckets: [ActivityBucket]
        var endpoints: [String: EndpointActivity] = [:]

        package init(since: Date, bucketSeconds: Double, now: Date) {
            self.now = Clock.milliseconds(now)
            sinceMilliseconds = Clock.milliseconds(since)
            hourAgo = self.now - 3_600_000
            dayAgo = self.now - 86_400_000
            bucketMilliseconds = max(1, Int64(bucketSeconds * 1000))
            let start = sinceMilliseconds, width = bucketMilliseconds
            let count = Int((self.now - start + width - 1) / width)
            buckets = (0..<max(count, 0)).map { ActivityBucket(start: Clock.date(milliseconds: start + Int64($0) * width)) }
        }

        /// Whether `add` wants a failure's summary for this attempt (it is the newest so far),
        /// so the caller reads the text only then.
        package func wantsFailureSummary(endpointID: String, startedAt: Int64) -> Bool {
            guard let last = endpoints[endpointID]?.lastFailure else { return true }
            return Clock.milliseconds(last.at) <= startedAt
        }

        package mutating func add(endpointID: String, startedAt: Int64, durationMicroseconds: Int64, succeeded: Bool, failureSummary: String?) {
            let index = Int((startedAt - sinceMilliseconds) / bucketMilliseconds)
            if startedAt >= sinceMilliseconds, buckets.indices.contains(index) {
                if succeeded { buckets[index].succeeded += 1 } else { buckets[index].failed += 1 }
            }
            var activity = endpoints[endpointID] ?? EndpointActivity()
            if startedAt >= dayAgo { activity.lastDay.add(succeeded: succeeded, durationMicroseconds: durationMicroseconds) }
            if startedAt >= hourAgo { activity.lastHour.add(succeeded: succeeded, durationMicroseconds: durationMicroseconds) }
            if !succeeded, let failureSummary, wantsFailureSummary(endpointID: endpointID, startedAt: startedAt) {
                activity.lastFailure = AttemptFailure(at: Clock.date(milliseconds: startedAt), summary: failureSummary)
            }
            endpoints[endpointID] = activity
        }

        package func report() -> ActivityReport {
            ActivityReport(generatedAt: Clock.date(milliseconds: now), since: Clock.date(milliseconds: sinceMilliseconds),
                           bucketSeconds: Double(bucketMilliseconds) / 1000, buckets: buckets, endpoints: endpoints)
        }
    }

    /// How a failed attempt reads in one line: `HTTP 503 is not 2xx`, `timeout: Operation timed out…`.
    package static func failureSummary(status: Int?, errorKind: String?, errorMessage: String?) -> String {
        if errorKind == AttemptErrorKind.http.rawValue, let errorMessage { return errorMessage }
        if let errorKind { return errorMessage.map { "\(errorKind): \($0)" } ?? errorKind }
        if let status { return "HTTP \(status)" }
        return "failed"
    }
}
