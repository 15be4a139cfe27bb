import Foundation

/// The numbers `dispatcher stats` and serve's summary line report.
package struct DeliveryStats: Sendable, Equatable {
    package var generatedAt: Date
    package var windowSeconds: Double
    /// Delivery counts by status, overall, per tenant and per endpoint.
    package var byStatus: [String: Int] = [:]
    /// `byStatus` counts only the queue (pending and delivering), as in `serve`'s stats line:
    /// counting the finished ones reads every delivery kept.
    package var queueOnly = false
    package var byTenant: [String: [String: Int]] = [:]
    package var byEndpoint: [String: [String: Int]] = [:]
    package var oldestPending: Date?
    /// Attempts started within the window, and how many succeeded.
    package var recentAttempts = 0
    package var recentSucceeded = 0
    /// The window's latency percentiles, to within `LatencyHistogram`'s 4.4 % buckets.
    package var latencyP50Milliseconds: Double?
    package var latencyP99Milliseconds: Double?
    /// Every endpoint with its health; in `queueOnly` stats only the ones the summary line
    /// names (disabled, or with an open circuit), so serve's line every minute does not read and
    /// decode 10,000 endpoints to name a few.
    package var endpoints: [EndpointStatus] = []

    package var successRate: Double? { recentAttempts == 0 ? nil : Double(recentSucceeded) / Double(recentAttempts) }

    /// One line for logs and the top of `dispatcher stats`:
    /// `pending=3 delivering=1 succeeded=120 failed=2 cancelled=0 | last 1h: 125 attempts, 97.6% ok, p50 3.1 ms, p99 40.2 ms | oldest pending 12s`.
    package var summaryLine: String {
        let statuses = queueOnly ? [DeliveryStatus.pending, .delivering] : DeliveryStatus.allCases
        var line = statuses.map { "\($0.rawValue)=\(byStatus[$0.rawValue] ?? 0)" }.joined(separator: " ")
        let window = windowSeconds >= 3_600 ? "\(Int(windowSeconds / 3_600))h" : "\(Int(windowSeconds))s"
        line += " | last \(window): \(recentAttempts) attempts"
        if let successRate { line += String(format: ", %.1f%% ok", successRate * 100) }
        if let p50 = latencyP50Milliseconds, let p99 = latencyP99Milliseconds { line += String(format: ", p50 %.1f ms, p99 %.1f ms", p50, p99) }
        if let oldestPending { line += " | oldest pending \(Int(generatedAt.timeIntervalSince(oldestPending)))s" }
        let open = endpoints.filter { $0.isCircuitOpen(at: generatedAt) }.map(\.endpoint.id)
        if !open.isEmpty { line += " | circuit open: " + Self.naming(open) }
        let disabled = endpoints.filter { !$0.endpoint.enabled }.map(\.endpoint.id)
        if !disabled.isEmpty { line += " | disabled: " + Self.naming(disabled) }
        return line
    }

    /// Endpoints a line names at most, per list: when a shared receiver goes down, thousands of
    /// circuits open at once, and a line naming them all would run to tens of kilobytes a minute.
    package static let namedEndpointsPerList = 10

    private static func naming(_ ids: [String]) -> String {
        let named = ids.prefix(namedEndpointsPerList).joined(separator: ",")
        return ids.count > namedEndpointsPerList ? named + " and \(ids.count - namedEndpointsPerList) more" : named
    }

    package init(generatedAt: Date, windowSeconds: Double, byStatus: [String: Int] = [:], byTenant: [String: [String: Int]] = [:], byEndpoint: [String: [String: Int]] = [:], oldestPending: Date? = nil, latencyP50Milliseconds: Double? = nil, latencyP99Milliseconds: Double? = nil, endpoints: [EndpointStatus] = []) {
        self.generatedAt = generatedAt
        self.windowSeconds = windowSeconds
        self.byStatus = byStatus
        self.byTenant = byTenant
        self.byEndpoint = byEndpoint
        self.oldestPending = oldestPending
        self.latencyP50Milliseconds = latencyP50Milliseconds
        self.latencyP99Milliseconds = latencyP99Milliseconds
        self.endpoints = endpoints
    }
}
