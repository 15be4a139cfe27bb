import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
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
            OptionSpec(name: "traceparent", value: "TRACEPARENT", help: "The producer's W3C traceparent: each attempt continues that trace."),
            OptionSpec(name: "tracestate", value: "TRACESTATE", help: "The W3C tracestate that goes with --traceparent."),
            OptionSpec(name: "allow-custom-type", value: nil, help: "Accept a verification.* key the verification seed does not document."),
            OptionSpec(name: "ndjson", value: nil, help: "Read many events from stdin, one JSON object per line (see below)."),
            OptionSpec(name: "batch-size", value: "N", help: "With --ndjson: lines per transaction (default 1000)."),
        ] + StoreSelection.options,
        discussion: """
            The body is sent to receivers byte for byte; it must be a JSON object. Bodies of the seed
            event types (checkin.outcome, visit.*, onboarding.status_changed, watchlist.updated,
            verification.*) must match their documented format exactly; other types pass as any
            JSON object. A check-in outcome or visit event keeps the id its body carries as the event id.
            Enqueuing an id that is already stored stores nothing and says so on stderr (exit 0).
            An --ndjson line may carry "traceparent" and "tracestate" as --traceparent does.
            """)

    let selection: StoreSelection
    let tenant: String
    let type: String
    let id: UUID?
    let data: String?
    let allowCustomType: Bool
    let traceContext: TraceContext?

    let ndjson: Bool
    let batchSize: Int

    init(_ arguments: ParsedArguments) throws {
        ndjson = arguments.flag("ndjson")
        batchSize = try arguments.integer("batch-size", in: 1...100_000) ?? 1_000
        allowCustomType = arguments.flag("allow-custom-type")
        selection = try StoreSelection(arguments)
        if ndjson {
            for option in ["tenant", "type", "id", "data", "traceparent", "tracestate"] where arguments.value(option) != nil {
                throw UsageError("--\(option) does not go with --ndjson: each line names its own")
            }
            tenant = ""; type = ""; id = nil; data = nil; traceContext = nil
            return
        }
        guard arguments.value("batch-size") == nil else { throw UsageError("--batch-size goes with --ndjson") }
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
        if let traceparent = arguments.value("traceparent") {
            traceContext = try TraceContext(traceparent: traceparent, tracestate: arguments.value("tracestate"))
        } else if arguments.value("tracestate") != nil {
            throw UsageError("--tracestate goes with --traceparent")
        } else {
            traceContext = nil
        }
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
        if ndjson { return try runNDJSON() }
        let body = try readBody()
        let bodyID = try EventFamily.validate(body: body, type: type, allowCustomKey: allowCustomType)
        if let id, let bodyID, id != bodyID {
            throw UsageError("--id \(id.lowercasedString) differs from the id in the body (\(bodyID.lowercasedString)); leave --id out")
        }
        let store = try selection.openStore()
        try selection.syncConfiguration(into: store)
        let result = try store.enqueue(NewEvent(tenantID: tenant, type: type, body: body, id: id ?? bodyID, traceContext: traceContext))
        if result.isDuplicate {
            Console.error("event \(result.eventID) was already stored; nothing new was enqueued\n")
        } else if result.deliveryCount == 0 {
            Console.error("warning: no enabled endpoint of tenant '\(tenant)' accepts '\(type)'; the event is stored but goes nowhere\n")
        }
        Console.out("\(result.eventID)\n")
    }

    /// Reads events line by line and stores each batch in one transaction.
    func runNDJSON() throws {
        let store = try selection.openStore()
        try selection.syncConfiguration(into: store)
        let showProgress = isatty(STDERR_FILENO) == 1
        var accepted = 0, duplicates = 0, lineNumber = 0
        var rejected: [(line: Int, reason: String)] = []
        var batch: [(line: Int, event: NewEvent)] = []

        func flush() throws {
            guard !batch.isEmpty else { return }
            for (entry, result) in zip(batch, try store.enqueueEach(parsed: batch.map(\.event))) {
                switch result {
                case .success(let outcome): if outcome.isDuplicate { duplicates += 1 } else { accepted += 1 }
                case .failure(let error): rejected.append((entry.line, error.description))
                }
            }
            batch.removeAll(keepingCapacity: true)
            if showProgress { Console.error("\r\(accepted) accepted, \(duplicates) duplicates, \(rejected.count) rejected") }
        }

        func report() {
            if showProgress { Console.error("\n") }
            rejected.sort { $0.line < $1.line }
            for entry in rejected.prefix(100) { Console.error("line \(entry.line): \(entry.reason)\n") }
            if rejected.count > 100 { Console.error("... and \(rejected.count - 100) more rejected lines\n") }
            let lines = rejected.isEmpty ? "" : " (lines \(rejected.prefix(20).map { String($0.line) }.joined(separator: ", "))\(rejected.count > 20 ? ", ..." : ""))"
            Console.out("accepted \(accepted), duplicates \(duplicates), rejected \(rejected.count)\(lines)\n")
        }
        /// A storage error ends the run, but first says what was committed: every line before
        /// the failed batch is stored, none from it on.
        func flushOrReport() throws {
            let firstUnstored = batch.first?.line
            do {
                try flush()
            } catch {
                report()
                Console.error("stopped at line \(firstUnstored ?? lineNumber) by a storage error: lines before it are stored as counted above, "
                              + "none from it on; run again from line \(firstUnstored ?? lineNumber) (event ids make a rerun safe)\n")
                throw error
            }
        }

        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            let bytes = Array(line.utf8)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                batch.append((lineNumber, try EventFamily.prepare(try NDJSONEvent.parse(bytes), allowCustomKey: allowCustomType)))
            } catch let error as DispatcherError {
                rejected.append((lineNumber, error.description))
            }
            if batch.count >= batchSize { try flushOrReport() }
        }
        try flushOrReport()
        report()
        if !rejected.isEmpty { throw DispatcherError.invalidJSON("\(rejected.count) of \(lineNumber) lines were rejected") }
    }
}
