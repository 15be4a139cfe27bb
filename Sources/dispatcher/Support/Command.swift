import Foundation
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
        OptionSpec(name: "db", value: "FILE", help: "SQLite database file; overrides the config's database."),
    ]

    let configuration: DispatcherConfiguration?
    let databasePath: String

    init(_ arguments: ParsedArguments, requireConfig: Bool = false) throws {
        let environmentConfig = ProcessInfo.processInfo.environment["DISPATCHER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = arguments.value("config") ?? environmentConfig {
            configuration = try DispatcherConfiguration.load(path: path)
        } else if requireConfig && arguments.value("db") == nil {
            throw UsageError("give --config FILE (or set DISPATCHER_CONFIG), or --db FILE")
        } else {
            configuration = nil
        }
        databasePath = arguments.value("db") ?? configuration?.database ?? "dispatcher.sqlite"
    }

    func openStore() throws -> SQLiteStore {
        try SQLiteStore(path: databasePath, options: configuration?.storeOptions ?? StoreOptions())
    }

    /// Writes the config's tenants and endpoints into the store (idempotent).
    func syncConfiguration(into store: SQLiteStore) throws {
        guard let configuration else { return }
        try store.upsert(tenants: configuration.tenants, endpoints: configuration.endpoints)
    }
}

/// Standard output and error, unbuffered enough for pipes and tests.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
