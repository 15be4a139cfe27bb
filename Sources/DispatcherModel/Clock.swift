import Foundation

/// Time as the dispatcher stores and prints it.
package enum Clock {
    /// The store's unit: integer milliseconds since the Unix epoch, UTC.
    package static func nowMilliseconds() -> Int64 { milliseconds(Date()) }
    package static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    package static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    /// `2026-11-22T10:00:00.123Z`: every time in JSON output and logs.
    package static func iso8601(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
