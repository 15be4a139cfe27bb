import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// `dispatcher portal-link --tenant T [--ttl 1h] [--role viewer|admin]`: a signed, expiring
/// link into one tenant's portal, for a customer's developer.
struct PortalLinkCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "portal-link",
        abstract: "Print a signed, expiring link that opens one tenant's portal in the dashboard.",
        positionals: "",
        options: [
            OptionSpec(name: "tenant", value: "ID", help: "The tenant whose portal the link opens."),
            OptionSpec(name: "ttl", value: "DURATION", help: "How long the link can be opened (default 1h, at most 7d)."),
            OptionSpec(name: "role", value: "ROLE", help: "admin (the default: endpoints, secrets, redeliver, tokens) or viewer (log and catalog)."),
        ] + StoreSelection.options,
        discussion: """
            Needs the config's portal section (portal.key signs links; portal.base_url is where tenants
            open them, else the dashboard's listen address). Opening the link starts a session of
            portal.session_hours. Nothing is stored: changing portal.key revokes every link and session.
            A producer service mints the same links with the library's PortalKey.
            """)

    let tenant: String
    let ttl: Double
    let role: PortalRole
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError("portal-link takes options only") }
        guard let tenant = arguments.value("tenant") else { throw UsageError("portal-link needs --tenant") }
        self.tenant = tenant
        let ttlText = arguments.value("ttl") ?? "1h"
        guard let ttl = TimeExpression.seconds(ttlText), ttl > 0, ttl <= 7 * 86_400 else {
            throw UsageError("--ttl '\(ttlText)' must be a duration such as 15m, 1h or 2d, at most 7d")
        }
        self.ttl = ttl
        guard let role = PortalRole(rawValue: arguments.value("role") ?? "admin") else { throw UsageError("--role must be admin or viewer") }
        self.role = role
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        guard let configuration = selection.configuration else { throw UsageError("portal-link needs --config (its portal section holds the key)") }
        guard let portal = configuration.portal else {
            throw DispatcherError.invalidConfiguration(path: "portal", message: "add a portal section with a key (at least 32 characters or env:NAME) to make links")
        }
        let store = try selection.openStore()
        try selection.syncConfiguration(into: store)
        guard try store.tenants().contains(where: { $0.id == tenant }) else { throw DispatcherError.unknownTenant(tenant) }
        let base = portal.baseURL ?? configuration.dashboard.map { "http://\($0.listen)" } ?? "http://\(DashboardSettings.defaultListen)"
        let link = try portal.resolvedKey().link(tenant: tenant, role: role, ttl: ttl, baseURL: base)
        Console.error("portal link for \(tenant) (\(role.rawValue)), valid for \(JSONReader.format(ttl / 60)) min:\n")
        Console.out("\(link)\n")
    }
}
