import Dispatch
import Foundation
import Glibc
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher dashboard`: serves the web dashboard over the store until SIGINT or SIGTERM.
struct DashboardCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "dashboard",
        abstract: "Serve the web dashboard (delivery log, details, endpoint health).",
        options: [
            OptionSpec(name: "listen", value: "HOST:PORT", help: "Where to listen (default: the config's dashboard.listen, else 127.0.0.1:8089)."),
        ] + StoreSelection.options,
        discussion: """
            Listening anywhere but loopback needs a token: dashboard.token in the config, or
            $DISPATCHER_DASHBOARD_TOKEN. Requests then carry it as a bearer header, or sign in
            once through the login form (an HttpOnly, SameSite=Strict cookie).
            """)

    let selection: StoreSelection
    let settings: DashboardSettings

    init(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        selection = try StoreSelection(arguments)
        let configured = selection.configuration?.dashboard
        let environmentToken = ProcessInfo.processInfo.environment["DISPATCHER_DASHBOARD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let listen = arguments.value("listen") ?? configured?.listen ?? DashboardSettings.defaultListen
        do {
            var settings = try DashboardSettings(listen: listen, token: configured?.token ?? environmentToken)
            settings.hostNames = configured?.hostNames ?? []
            self.settings = settings
        } catch let error as DispatcherError {
            throw UsageError("\(error)")
        }
    }

    func run() throws {
        let store = try selection.openStore()
        let limits = selection.configuration?.metrics ?? MetricsSettings()
        let exporter = MetricsExporter(store: store, maxEndpointLabels: limits.maxEndpointLabels, maxTenantLabels: limits.maxTenantLabels)
        // Test sends go out with the config's delivery settings (its destination guard), or the defaults.
        let delivery = selection.configuration?.serviceConfiguration(logger: .silent) ?? DeliveryServiceConfiguration(logger: .silent)
        let dashboard = try Dashboard(store: store, settings: settings, metrics: exporter,
                                      tester: EndpointTester(store: store, configuration: delivery),
                                      rules: selection.configuration?.endpointRules ?? EndpointRules(), portal: selection.configuration?.portal)
        Console.error("dispatcher \(DispatcherVersion.current) dashboard on \(dashboard.url) (\(store.location))\n")
        Console.waitForTermination()
        dashboard.stop()
    }
}
