import Foundation
import WebhookDispatcher

/// `dispatcher enqueue`: stores one event in the outbox and prints its id.
struct EnqueueCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "enqueue",
        abstract: "Put one event into the outbox and print its id.",
        options: [
            OptionSpec(name: "tenant", value: "ID", help: "The tenant the event belongs to (required)."),
            OptionSpec(name: "type", value: "TYPE", help: "The event type, e.g. checkin.outcome (required)."),
            OptionSpec(name: "id", value: "UUID", help: "The event id (idempotency key); generated when absent."),
            OptionSpec(name: "data", value: "JSON", help: "The body: JSON text, or @FILE; read from stdin when absent."),
            OptionSpec(name: "allow-custom-type", value: nil, help: "Accept a verification.* key the verification seed does not document."),
        ] + StoreSelection.options,
        discussion: """
            The body is sent to receivers byte for byte; it must be a JSON object. Bodies of the seed
            event types (checkin.outcome, visit.*, onboarding.status_changed, watchlist.updated,
            verification.*) must match their documented format exactly; other types pass as any
            JSON object. A check-in outcome or visit event keeps the id its body carries as the event id.
            Enqueuing an id that is already stored stores nothing and says so on stderr (exit 0).
            """)

    let selection: StoreSelection
    let tenant: String
    let type: String
    let id: UUID?
    let data: String?
    let allowCustomType: Bool

    init(_ arguments: ParsedArguments) throws {
        guard let tenant = arguments.value("tenant") else { throw UsageError("--tenant is required") }
        guard let type = arguments.value("type") else { throw UsageError("--type is required") }
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        if let text = arguments.value("id") {
            guard let id = UUID(uuidString: text) else { throw UsageError("--id '\(text)' is not a UUID") }
            self.id = id
        } else {
            self.id = nil
        }
        self.tenant = tenant
        self.type = type
        self.data = arguments.value("data")
        allowCustomType = arguments.flag("allow-custom-type")
        selection = try StoreSelection(arguments)
    }

    func readBody() throws -> [UInt8] {
        guard let data else { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
        guard data.hasPrefix("@") else { return Array(data.utf8) }
        let path = String(data.dropFirst())
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw UsageError("cannot read --data file '\(path)'")
        }
        return Array(contents)
    }

    func run() throws {
        let body = try readBody()
        let bodyID = try EventFamily.validate(body: body, type: type, allowCustomKey: allowCustomType)
        if let id, let bodyID, id != bodyID {
            throw UsageError("--id \(id.uuidString.lowercased()) differs from the id in the body (\(bodyID.uuidString.lowercased())); leave --id out")
        }
        let store = try selection.openStore()
        try selection.syncConfiguration(into: store)
        let result = try store.enqueue(NewEvent(tenantID: tenant, type: type, body: body, id: id ?? bodyID))
        if result.isDuplicate {
            Console.error("event \(result.eventID) was already stored; nothing new was enqueued\n")
        } else if result.deliveryCount == 0 {
            Console.error("warning: no enabled endpoint of tenant '\(tenant)' accepts '\(type)'; the event is stored but goes nowhere\n")
        }
        Console.out(result.eventID + "\n")
    }
}
