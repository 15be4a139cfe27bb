import DispatcherIngest
import DispatcherModel
import DispatcherStore
import Foundation

/// `dispatcher api-keys create|list|revoke`: the ingest API's credentials.
struct APIKeysCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "api-keys",
        abstract: "Create, list or revoke keys for the HTTP ingest API.",
        positionals: "create | list | revoke ID",
        options: [
            OptionSpec(name: "name", value: "NAME", help: "create: what the key is for (shown by list)."),
            OptionSpec(name: "tenant", value: "ID", help: "create: limit the key to this tenant (repeatable); default every tenant.", repeatable: true),
            OptionSpec(name: "json", value: nil, help: "list: one JSON object per key."),
        ] + StoreSelection.options,
        discussion: """
            create prints the key once; only its SHA-256 is stored, so a lost key is revoked and
            replaced, never recovered. A revoked key stops working within 5 seconds.
            """)

    enum Action {
        case create(name: String, tenants: [String]?)
        case list
        case revoke(String)
    }

    let action: Action
    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        selection = try StoreSelection(arguments)
        json = arguments.flag("json")
        switch arguments.positionals.first {
        case "create":
            guard let name = arguments.value("name"), !name.isEmpty else { throw UsageError("create needs --name") }
            let tenants = arguments.allValues("tenant")
            action = .create(name: name, tenants: tenants.isEmpty ? nil : tenants)
        case "list":
            action = .list
        case "revoke":
            guard arguments.positionals.count == 2 else { throw UsageError("revoke needs the key's id (api-keys list shows it)") }
            action = .revoke(arguments.positionals[1])
        default:
            throw UsageError("give create, list or revoke")
        }
    }

    func run() throws {
        let store = try selection.openStore()
        switch action {
        case .create(let name, let tenants):
            for tenant in tenants ?? [] where try !store.tenants().contains(where: { $0.id == tenant }) {
                throw DispatcherError.unknownTenant(tenant)
            }
            let (record, key) = try APIKeys.create(name: name, tenants: tenants, in: store)
            Console.error("API key \(record.id) (\(name)) for \(tenants?.joined(separator: ", ") ?? "every tenant"); it is shown only now:\n")
            Console.out("\(key)\n")
        case .list:
            let keys = try store.apiKeys()
            if json {
                Console.out(json: keys.map { key in
                    JSONValue.object([
                        ("id", .string(key.id)), ("name", .string(key.name)),
                        ("tenants", key.tenants.map { .array($0.map(JSONValue.string)) } ?? .null),
                        ("created_at", .string(Clock.iso8601(key.createdAt))), ("revoked_at", .string(key.revokedAt.map(Clock.iso8601))),
                    ]).text + "\n"
                }.joined())
                return
            }
            var table = Table(["ID", "NAME", "TENANTS", "CREATED", "REVOKED"])
            for key in keys {
                table.add(["\(key.id)", "\(key.name)", "\(key.tenants?.joined(separator: ",") ?? "*")",
                           "\(Clock.iso8601(key.createdAt))", "\(key.revokedAt.map(Clock.iso8601) ?? "-")"])
            }
            Console.out(table.render())
        case .revoke(let id):
            guard try store.revokeAPIKey(id: id) else { throw DispatcherError.notFound("an unrevoked API key '\(id)'") }
            Console.out("revoked API key \(id)\n")
        }
    }
}
