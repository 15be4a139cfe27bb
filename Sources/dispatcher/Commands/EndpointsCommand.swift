import Foundation
import WebhookDispatcher

/// `dispatcher endpoints list|enable|disable`: endpoints and their health.
struct EndpointsCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "endpoints",
        abstract: "List endpoints with their health, or enable / disable one.",
        positionals: "list | enable ID | disable ID",
        options: [OptionSpec(name: "json", value: nil, help: "With list: one JSON object per endpoint, secrets shown as ***.")]
            + StoreSelection.options,
        discussion: """
            An endpoint that kept failing for its circuit's disable_after_seconds is disabled by the
            dispatcher, with the reason in `list`; `enable` resumes it with a closed circuit. An
            endpoint disabled here stays disabled across serve restarts until enabled again.
            """)

    enum Action {
        case list
        case setEnabled(String, Bool)
    }

    let action: Action
    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        switch (arguments.positionals.first, arguments.positionals.count) {
        case ("list", 1): action = .list
        case ("enable", 2): action = .setEnabled(arguments.positionals[1], true)
        case ("disable", 2): action = .setEnabled(arguments.positionals[1], false)
        default: throw UsageError("expected 'list', 'enable ID' or 'disable ID'")
        }
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        let store = try selection.openStore()
        switch action {
        case .setEnabled(let id, let enabled):
            try store.setEndpointEnabled(id: id, enabled: enabled)
            Console.out("endpoint \(id) \(enabled ? "enabled" : "disabled")\n")
        case .list:
            let statuses = try store.endpointStatuses()
            if json {
                Console.out(statuses.map { JSONRepresentation.line(JSONRepresentation.endpointStatus($0)) + "\n" }.joined())
                return
            }
            var table = Table(["ID", "TENANT", "URL", "EVENTS", "ENABLED", "CIRCUIT", "FAILURES", "NOTE"])
            for status in statuses {
                let endpoint = status.endpoint
                table.add([
                    endpoint.id, endpoint.tenantID, endpoint.url,
                    endpoint.eventFilters.isEmpty ? "*" : endpoint.eventFilters.joined(separator: ","),
                    endpoint.enabled ? "yes" : "no", JSONRepresentation.circuitState(status), String(status.consecutiveFailures),
                    status.disabledReason ?? "",
                ])
            }
            Console.out(table.render())
        }
    }
}
