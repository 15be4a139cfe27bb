import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// Where the dispatcher's own operational messages go. Messages never contain secrets: they
/// name deliveries and endpoints, not headers or bodies.
public struct DispatcherLogger: Sendable {
    public enum Level: String, Sendable, Comparable {
        case debug, info, warning, error

        /// A switch, not a dictionary: every attempt's log call compares levels, and a
        /// dictionary literal here was built (two allocations) on each comparison.
        private var rank: Int {
            switch self {
            case .debug: return 0
            case .info: return 1
            case .warning: return 2
            case .error: return 3
            }
        }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    /// How `standardError` writes a message.
    public enum Format: String, Sendable {
        /// `2026-11-22T10:00:00.123Z info message`, for people.
        case text
        /// One JSON object a line, `{"time", "level", "message", ...fields}`, for log pipelines.
        case json
    }

    /// A message's fields by name (`delivery`, `event`, `endpoint`, `attempt`, `status`,
    /// `duration_ms`, `error_kind`), in the order given.
    public typealias Fields = [(String, JSONValue)]

    private let minimumLevel: Level
    private let sink: @Sendable (Level, String, Fields) -> Void

    /// A logger whose sink gets each message and its fields.
    public init(minimumLevel: Level = .info, structuredSink: @escaping @Sendable (Level, String, Fields) -> Void) {
        self.minimumLevel = minimumLevel
        self.sink = structuredSink
    }

    /// A logger whose sink gets the message alone (the fields repeat what it says).
    public init(minimumLevel: Level = .info, sink: @escaping @Sendable (Level, String) -> Void) {
        self.init(minimumLevel: minimumLevel) { level, message, _ in sink(level, message) }
    }

    /// One line per message on standard error, as text or as JSON.
    public static func standardError(minimumLevel: Level = .info, format: Format = .text) -> DispatcherLogger {
        DispatcherLogger(minimumLevel: minimumLevel) { level, message, fields in
            FileHandle.standardError.write(Data(line(level, message, fields, format: format, at: Date()).utf8))
        }
    }

    /// A message as `standardError` writes it, newline included.
    static func line(_ level: Level, _ message: String, _ fields: Fields, format: Format, at time: Date) -> String {
        switch format {
        case .text:
            return "\(Clock.iso8601(time)) \(level.rawValue) \(message)\n"
        case .json:
            let members: Fields = [("time", .string(Clock.iso8601(time))), ("level", .string(level.rawValue)), ("message", .string(message))]
            return JSONValue.object(members + fields.filter { key, _ in !["time", "level", "message"].contains(key) }).text + "\n"
        }
    }

    public static let silent = DispatcherLogger(minimumLevel: .error) { _, _ in }

    public func log(_ level: Level, _ message: @autoclosure () -> String, _ fields: @autoclosure () -> Fields = []) {
        guard level >= minimumLevel else { return }
        sink(level, message(), fields())
    }
}

extension DispatcherLogger.Fields {
    /// The fields of an attempt's log line.
    static func attempt(_ attempt: Attempt, of job: ClaimedDelivery) -> DispatcherLogger.Fields {
        var fields: DispatcherLogger.Fields = [
            ("delivery", .integer(job.deliveryID)), ("event", .string(job.eventID)), ("endpoint", .string(job.endpointID)),
            ("tenant", .string(job.tenantID)), ("attempt", .integer(Int64(attempt.number))),
            ("duration_ms", .number(Double(attempt.durationMicroseconds) / 1000)),
        ]
        if let status = attempt.responseStatus { fields.append(("status", .integer(Int64(status)))) }
        if let kind = attempt.errorKind { fields.append(("error_kind", .string(kind.rawValue))) }
        fields.append(("verdict", .string(attempt.verdict.storedName)))
        return fields
    }
}
