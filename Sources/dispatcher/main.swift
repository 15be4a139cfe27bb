import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

// Entry point: picks the subcommand, prints help, and maps errors to exit statuses
// (0 ok, 1 runtime failure, 2 usage error).

let commands: [DispatcherCommand.Type] = [
    ServeCommand.self, EnqueueCommand.self, LogCommand.self, ShowCommand.self, EndpointsCommand.self, RedeliverCommand.self, ReplayCommand.self,
    CancelCommand.self, StatsCommand.self, PruneCommand.self, DashboardCommand.self, APICommand.self, APIKeysCommand.self, PortalLinkCommand.self, ReceiveCommand.self,
    DoctorCommand.self,
]

@MainActor func topLevelHelp() -> String {
    let width = (commands.map { $0.spec.name.count }.max() ?? 0) + 2
    return """
        dispatcher \(DispatcherVersion.current): outbound webhook dispatcher

        USAGE: dispatcher <command> [options]

        COMMANDS:
        \(commands.map { "  " + $0.spec.name.padding(toLength: width, withPad: " ", startingAt: 0) + $0.spec.abstract }.joined(separator: "\n"))

        Run `dispatcher <command> --help` for a command's options.
        Exit status: 0 success, 1 runtime failure, 2 usage error.

        """
}

/// Every connection (served or delivered to) is a descriptor: take all the system allows.
func raiseDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}
raiseDescriptorLimit()

var arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, name != "--help", name != "-h", name != "help" else {
    Console.out(TerminalText(trusted: topLevelHelp()))
    exit(arguments.isEmpty ? 2 : 0)
}
if name == "--version" {
    Console.out("dispatcher \(DispatcherVersion.current)\n")
    exit(0)
}
guard let commandType = commands.first(where: { $0.spec.name == name }) else {
    Console.error("error: unknown command '\(name)'\n\n\(TerminalText(trusted: topLevelHelp()))")
    exit(2)
}
arguments.removeFirst()

do {
    let parsed = try ParsedArguments(arguments, spec: commandType.spec)
    if parsed.wantsHelp {
        Console.out(TerminalText(trusted: commandType.spec.help))
        exit(0)
    }
    try commandType.init(parsed).run()
    exit(0)
} catch let error as UsageError {
    Console.error("error: \(error)\nUSAGE: \(commandType.spec.usage)\nSee 'dispatcher \(name) --help'.\n")
    exit(2)
} catch {
    Console.error("error: \(String(describing: error))\n")
    exit(1)
}
