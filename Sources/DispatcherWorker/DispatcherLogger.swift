import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// Where the dispatcher's own operational messages go. Messages never contain secrets: they
/// name deliveries and endpoints, not headers or bodies.
public struct DispatcherLogger: Sendable {
    public enum Level: String, Sendable, Comparable {
        case debug, info, warning, error

        private var rank: Int { [.debug: 0, .info: 1, .warning: 2, .error: 3][self] ?? 0 }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    private let minimumLevel: Level
    private let sink: @Sendable (Level, String) -> Void

    public init(minimumLevel: Level = .info, sink: @escaping @Sendable (Level, String) -> Void) {
        self.minimumLevel = minimumLevel
        self.sink = sink
    }

    /// One line per message on standard error: `2026-11-22T10:00:00.123Z info message`.
    public static func standardError(minimumLevel: Level = .info) -> DispatcherLogger {
        DispatcherLogger(minimumLevel: minimumLevel) { level, message in
            let line = "\(Clock.iso8601(Date())) \(level.rawValue) \(message)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    public static let silent = DispatcherLogger(minimumLevel: .error) { _, _ in }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level >= minimumLevel else { return }
        sink(level, message())
    }
}
