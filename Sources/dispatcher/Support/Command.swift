import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// A subcommand: its declaration, validation in `init` (usage errors before any work), and `run`.
protocol DispatcherCommand {
    static var spec: CommandSpec { get }
    init(_ arguments: ParsedArguments) throws
    func run() throws
}

/// The options every store-reading command shares, and how they pick the database:
/// `--db`, else the config's `database`, else `dispatcher.sqlite` in the current folder.
/// The config is `--config`, else `$DISPATCHER_CONFIG`, else none.
struct StoreSelection {
    static let options = [
        OptionSpec(name: "config", value: "FILE", help: "Config file (default: $DISPATCHER_CONFIG)."),
        OptionSpec(name: "db", value: "FILE|URL", help: "SQLite file or postgres:// URL; overrides the config's database."),
    ]

    let configuration: DispatcherConfiguration?
    let databaseLocation: String

    init(_ arguments: ParsedArguments, requireConfig: Bool = false) throws {
        let environmentConfig = ProcessInfo.processInfo.environment["DISPATCHER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = arguments.value("config") ?? environmentConfig {
            configuration = try DispatcherConfiguration.load(path: path)
        } else if requireConfig && arguments.value("db") == nil {
            throw UsageError("give --config FILE (or set DISPATCHER_CONFIG), or --db FILE")
        } else {
            configuration = nil
        }
        databaseLocation = arguments.value("db") ?? configuration?.database ?? "dispatcher.sqlite"
    }

    func openStore() throws -> OutboxStore {
        try OutboxStore.open(databaseLocation, options: configuration?.storeOptions ?? StoreOptions())
    }

    /// Writes the config's tenants and endpoints into the store (idempotent).
    func syncConfiguration(into store: OutboxStore) throws {
        guard let configuration else { return }
        try store.upsert(tenants: configuration.tenants, endpoints: configuration.endpoints, actor: .config)
        try store.recordLimits()
    }
}

/// Standard output and error, unbuffered, one whole message at a time: `receive` prints from
/// one thread per connection, and FileHandle is not safe to write from two threads at once.
enum Console {
    private static let lock = NSLock()

    /// Human output: every value in it had its control characters escaped (`TerminalText`).
    static func out(_ text: TerminalText) {
        lock.withLock { FileHandle.standardOutput.write(Data(text.rendered.utf8)) }
    }

    static func error(_ text: TerminalText) {
        lock.withLock { FileHandle.standardError.write(Data(text.rendered.utf8)) }
    }

    /// Machine output (`--json`), exact: JSON escapes control characters in its strings itself.
    static func out(json text: String) {
        lock.withLock { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    /// Blocks until SIGINT or SIGTERM (the servers' way to stop: `dashboard`, `api`).
    static func waitForTermination() {
        let stopped = DispatchSemaphore(value: 0)
        let signalQueue = DispatchQueue(label: "dispatcher.signals")
        let sources = [SIGINT, SIGTERM].map { signalNumber -> DispatchSourceSignal in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
            source.setEventHandler { stopped.signal() }
            source.resume()
            return source
        }
        stopped.wait()
        sources.forEach { $0.cancel() }
    }

    /// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
    static let usesColor: Bool = isatty(STDOUT_FILENO) == 1
        && ProcessInfo.processInfo.environment["NO_COLOR"].map { $0.isEmpty } ?? true
        && ProcessInfo.processInfo.environment["TERM"] != "dumb"

    /// A delivery status, green / red / yellow when colour is on.
    static func status(_ status: DeliveryStatus) -> TerminalText {
        guard usesColor else { return "\(status.rawValue)" }
        let code: String
        switch status {
        case .succeeded: code = "32"
        case .failed: code = "31"
        case .pending, .delivering: code = "33"
        case .cancelled: code = "2"
        }
        return TerminalText(trusted: "\u{1B}[\(code)m\(status.rawValue)\u{1B}[0m")
    }
}
