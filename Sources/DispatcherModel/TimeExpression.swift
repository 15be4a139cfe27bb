import Foundation

/// How people write a point in time for a filter, on the command line and in the dashboard:
/// a duration back from now (`90s`, `15m`, `2h`, `7d`, `1w`) or an ISO-8601 date
/// (`2026-11-22`) or date-time (`2026-11-22T10:00:00Z`).
package enum TimeExpression {
    package static let help = "a duration (30s, 15m, 2h, 7d) or an ISO-8601 time (2026-11-22T10:00:00Z)"

    package static func parse(_ text: String, now: Date = Date()) -> Date? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let seconds = seconds(text) { return now.addingTimeInterval(-seconds) }
        let withTime = ISO8601DateFormatter()
        withTime.formatOptions = [.withInternetDateTime]
        if let date = withTime.date(from: text) { return date }
        withTime.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withTime.date(from: text) { return date }
        let dateOnly = ISO8601DateFormatter()
        dateOnly.formatOptions = [.withFullDate]
        return dateOnly.date(from: text)
    }

    /// A duration (`90s`, `15m`, `24h`, `7d`, `1w`) in seconds, or nil.
    package static func seconds(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard let unit = text.last, let amount = Double(text.dropLast()), amount >= 0, amount.isFinite else { return nil }
        return ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800][unit].map { amount * $0 }
    }
}
