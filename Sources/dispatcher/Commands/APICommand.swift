import Dispatch
import DispatcherConfig
import DispatcherIngest
import DispatcherModel
import DispatcherStore
import Foundation
import Glibc

/// `dispatcher api`: serves the HTTP ingest API over the store until SIGINT or SIGTERM.
struct APICommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "api",
        abstract: "Serve the HTTP ingest API (POST /v1/events) for producers on other hosts.",
        options: [
            OptionSpec(name: "listen", value: "HOST:PORT", help: "Where to listen (default: the config's api.listen, else 127.0.0.1:8090)."),
        ] + StoreSelection.options,
        discussion: """
            Every request needs an API key (dispatcher api-keys create), as Authorization: Bearer.
            A 202 means the event is committed. serve hosts the same API when the config has an api block.
            """)

    let selection: StoreSelection
    let settings: APISettings

    init(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        selection = try StoreSelection(arguments)
        let configured = selection.configuration?.api
        do {
            settings = try APISettings(listen: arguments.value("listen") ?? configured?.listen ?? APISettings.defaultListen,
                                       maxBatch: configured?.maxBatch ?? 1_000)
        } catch let error as DispatcherError {
            throw UsageError("--listen: \(error)")
        }
    }

    func run() throws {
        let store = try selection.openStore()
        try selection.syncConfiguration(into: store)
        let server = try IngestServer(store: store, settings: settings)
        Console.error("dispatcher \(DispatcherVersion.current) ingest API on http://\(APISettings(host: settings.host, port: server.port).listen)/v1/events (\(store.location))\n")
        Console.waitForTermination()
        server.stop()
    }
}
