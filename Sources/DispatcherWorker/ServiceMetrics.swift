import DispatcherDelivery
import DispatcherModel
import Foundation
import Synchronization

/// What one `DeliveryService` counts of its own work since it started: attempts by endpoint,
/// outcome and error kind, their latency, store-loop cycles and commits, token fetches.
/// Prometheus takes counters that restart with the process in its stride (`rate()` sees the reset).
///
/// Updated once per store-loop cycle under one lock, with the results that cycle recorded, so
/// the cost is a few dictionary updates per attempt and nothing on the transfer loop.
package final class ServiceMetrics: Sendable {
    /// Shared with the exporter's per-endpoint gauges, so an endpoint keeps one label everywhere.
    package let endpointLabels: BoundedLabels
    private let tokens: TokenCache
    private let state = Mutex(State())

    private struct AttemptKey: Hashable {
        var endpoint: String
        var outcome: String
        var errorKind: String
    }

    private struct State {
        var attempts: [AttemptKey: Int] = [:]
        var completed: [String: Int] = ["succeeded": 0, "failed": 0]
        var latency: [String: Histogram] = [:]
        var cycles = Histogram(bounds: Histogram.storeSeconds)
        var commits = Histogram(bounds: Histogram.storeSeconds)
    }

    package init(endpointLabels: BoundedLabels, tokens: TokenCache) {
        self.endpointLabels = endpointLabels
        self.tokens = tokens
    }

    /// One store-loop cycle that committed: the attempts it recorded, how long it took and its commit.
    package func recordCycle(_ results: [AttemptResult], cycleSeconds: Double, commitSeconds: Double) {
        // The labels only: a copy of each attempt would retain all its strings and arrays.
        let labels = results.map { endpointLabels.value(for: $0.endpointID) }
        state.withLock { state in
            state.cycles.observe(cycleSeconds)
            state.commits.observe(commitSeconds)
            for result in results where !result.keepsLease {
                switch result.attempt.verdict {
                case .succeeded: state.completed["succeeded", default: 0] += 1
                case .failed: state.completed["failed", default: 0] += 1
                case .retryScheduled: break
                }
            }
            for (index, endpoint) in labels.enumerated() {
                let errorKind = results[index].attempt.errorKind
                let key = AttemptKey(endpoint: endpoint, outcome: errorKind == nil ? "succeeded" : "failed",
                                     errorKind: errorKind?.rawValue ?? "none")
                state.attempts[key, default: 0] += 1
                state.latency[endpoint, default: Histogram(bounds: Histogram.attemptSeconds)]
                    .observe(Double(results[index].attempt.durationMicroseconds) / 1_000_000)
            }
        }
    }

    package func write(to text: inout PrometheusText) {
        let snapshot = state.withLock { $0 }
        text.family("dispatcher_attempts_total", .counter,
                    "HTTP attempts this process made, by endpoint, outcome (succeeded: the success rule accepted the response) and error kind.")
        for (key, count) in snapshot.attempts.sorted(by: { ($0.key.endpoint, $0.key.outcome, $0.key.errorKind) < ($1.key.endpoint, $1.key.outcome, $1.key.errorKind) }) {
            text.sample("dispatcher_attempts_total", [("endpoint", key.endpoint), ("outcome", key.outcome), ("error_kind", key.errorKind)], count)
        }
        text.family("dispatcher_deliveries_completed_total", .counter,
                    "Deliveries this process finished for good, by status: succeeded, or failed once the retry policy gave up.")
        for (status, count) in snapshot.completed.sorted(by: { $0.key < $1.key }) {
            text.sample("dispatcher_deliveries_completed_total", [("status", status)], count)
        }
        text.family("dispatcher_attempt_duration_seconds", .histogram, "How long attempts took, request sent to response read, by endpoint.")
        for (endpoint, histogram) in snapshot.latency.sorted(by: { $0.key < $1.key }) {
            text.histogram("dispatcher_attempt_duration_seconds", [("endpoint", endpoint)], histogram)
        }
        text.family("dispatcher_store_cycle_seconds", .histogram,
                    "Store-loop cycles that recorded results and claimed work in one transaction: their whole time.")
        text.histogram("dispatcher_store_cycle_seconds", [], snapshot.cycles)
        text.family("dispatcher_store_commit_seconds", .histogram, "The COMMIT of each store-loop cycle.")
        text.histogram("dispatcher_store_commit_seconds", [], snapshot.commits)
        let fetches = tokens.fetchCounts
        text.family("dispatcher_token_fetches_total", .counter, "OAuth 2.0 client-credentials token requests, by outcome.")
        text.sample("dispatcher_token_fetches_total", [("outcome", "succeeded")], fetches.succeeded)
        text.sample("dispatcher_token_fetches_total", [("outcome", "failed")], fetches.failed)
    }
}
