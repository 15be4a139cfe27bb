import Dispatch
import Foundation
import Glibc
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherIngest
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher serve`: syncs the config's endpoints into the store and runs the worker pool
/// until SIGINT or SIGTERM, then stops gracefully and exits 0.
struct ServeCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "serve",
        abstract: "Deliver queued events to their endpoints until interrupted.",
        options: StoreSelection.options + [
            OptionSpec(name: "workers", value: "N", help: "Concurrent deliveries; overrides the config's workers."),
            OptionSpec(name: "verbose", value: nil, help: "Log every attempt, not only failures."),
            OptionSpec(name: "log-format", value: "FORMAT", help: "text (the default) or json: one JSON object a line; overrides the config's log_format."),
            OptionSpec(name: "exit-when-idle", value: nil, help: "Stop (exit 0) once no delivery is pending or in flight: batch jobs, benchmarks."),
        ],
        discussion: """
            On SIGINT or SIGTERM it stops claiming, lets attempts in flight finish and be recorded,
            hands unstarted deliveries back to the queue, and exits 0.
            """)

    let selection: StoreSelection
    let workers: Int?
    let verbose: Bool
    let logFormat: DispatcherLogger.Format?
    let exitWhenIdle: Bool

    init(_ arguments: ParsedArguments) throws {
        selection = try StoreSelection(arguments, requireConfig: true)
        workers = try arguments.integer("workers", in: 1...20_000)
        verbose = arguments.flag("verbose")
        if let format = arguments.value("log-format") {
            guard let parsed = DispatcherLogger.Format(rawValue: format) else { throw UsageError("--log-format must be text or json") }
            logFormat = parsed
        } else {
            logFormat = nil
        }
        exitWhenIdle = arguments.flag("exit-when-idle")
    }

    func run() throws {
        try selection.configuration?.checkEnvironment()
        let store = try selection.openStore()
        try selection.syncConfiguration(into: store)
        let logger = DispatcherLogger.standardError(minimumLevel: verbose ? .debug : .info,
                                                    format: logFormat ?? selection.configuration?.logFormat ?? .text)
        var configuration = selection.configuration?.serviceConfiguration(logger: logger)
            ?? DeliveryServiceConfiguration(logger: logger)
        if let workers { configuration.concurrentRequests = workers }
        // Each request in flight holds a socket; main raised the soft limit to the hard one.
        var descriptors = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &descriptors) == 0,
           UInt64(configuration.concurrentRequests) + 256 > UInt64(descriptors.rlim_cur) {
            logger.log(.warning, "\(configuration.concurrentRequests) workers need as many sockets, and this process may open \(descriptors.rlim_cur) files; "
                       + "raise the limit (ulimit -n, LimitNOFILE=) or requests will fail to connect")
        }
        let service = DeliveryService(store: store, configuration: configuration)
        let housekeeping = Housekeeping(store: store, settings: Housekeeping.Settings(
            statsIntervalSeconds: selection.configuration?.statsIntervalSeconds ?? 60,
            retentionDays: selection.configuration?.retentionDays), logger: logger)
        housekeeping.start()
        // The dashboard reads through its own connection, so a long page query never holds
        // the workers' connection.
        // One exporter for /metrics on both listeners: the store's figures and this service's counters.
        let metricsSettings = selection.configuration?.metrics
        let exporter = MetricsExporter(store: store, service: service.metrics,
                                       maxTenantLabels: metricsSettings?.maxTenantLabels ?? MetricsSettings().maxTenantLabels)
        let metrics = try metricsSettings.map { settings in try MetricsServer(exporter: exporter, settings: settings) }
        if let metrics { logger.log(.info, "metrics on \(metrics.url)") }
        let dashboard = try selection.configuration?.dashboard.map { settings in
            try Dashboard(store: try selection.openStore(), settings: settings, metrics: exporter,
                          tester: EndpointTester(store: store, configuration: configuration),
                          rules: selection.configuration?.endpointRules ?? EndpointRules(), portal: selection.configuration?.portal)
        }
        if let dashboard { logger.log(.info, "dashboard on \(dashboard.url)") }
        let api = try selection.configuration?.api.map { settings in
            try IngestServer(store: try selection.openStore(), settings: settings)
        }
        if let api, let settings = selection.configuration?.api {
            logger.log(.info, "ingest API on http://\(APISettings(host: settings.host, port: api.port).listen)/v1/events")
        }

        let signalQueue = DispatchQueue(label: "dispatcher.signals")
        let sources = [SIGINT, SIGTERM].map { signalNumber -> DispatchSourceSignal in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
            source.setEventHandler {
                logger.log(.info, "received \(signalNumber == SIGINT ? "SIGINT" : "SIGTERM"); stopping")
                service.stop()
            }
            source.resume()
            return source
        }
        let endpointCount = selection.configuration?.endpoints.count ?? 0
        logger.log(.info, "dispatcher \(DispatcherVersion.current) serving \(store.location) (\(endpointCount) configured endpoints)")
        if exitWhenIdle {
            DispatchQueue(label: "dispatcher.idle-watch").async {
                while (try? store.hasUnfinishedDeliveries()) != false { Thread.sleep(forTimeInterval: 0.05) }
                logger.log(.info, "no deliveries left; stopping")
                service.stop()
            }
        }
        try service.run()
        dashboard?.stop()
        metrics?.stop()
        api?.stop()
        housekeeping.stop()
        sources.forEach { $0.cancel() }
    }
}
