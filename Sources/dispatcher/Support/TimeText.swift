import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// How times and durations are written and read on the command line: ISO-8601 UTC in JSON,
/// relative ("3m ago") in tables, and `15m`/`2h`/`7d` or ISO-8601 in `--since`.
enum TimeText {
    static func iso8601(_ date: Date) -> String { Clock.iso8601(date) }

    /// `--since` values: see `TimeExpression`.
    static func parseSince(_ text: String, now: Date = Date()) throws -> Date {
        guard let date = TimeExpression.parse(text, now: now) else { throw UsageError("'\(text)' is not \(TimeExpression.help)") }
        return date
    }

    /// `4s`, `12m`, `3h`, `2d`.
    static func duration(_ seconds: Double) -> String {
        let seconds = abs(seconds)
        switch seconds {
        case ..<1: return "\(Int(seconds * 1000))ms"
        case ..<90: return "\(Int(seconds))s"
        case ..<(90 * 60): return "\(Int(seconds / 60))m"
        case ..<(36 * 3600): return "\(Int(seconds / 3600))h"
        default: return "\(Int(seconds / 86_400))d"
        }
    }

    /// `3m ago` or `in 5s`, relative to now.
    static func relative(_ date: Date, now: Date = Date()) -> String {
        let delta = date.timeIntervalSince(now)
        if abs(delta) < 1 { return "now" }
        return delta < 0 ? "\(duration(delta)) ago" : "in \(duration(delta))"
    }

    static func milliseconds(microseconds: Int64) -> String {
        String(format: "%.1f ms", Double(microseconds) / 1000)
    }
}
