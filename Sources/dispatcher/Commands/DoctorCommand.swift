import Foundation
import Glibc
import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher doctor`: checks a config and what it depends on before `serve` meets it.
struct DoctorCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "doctor",
        abstract: "Check a config and its surroundings: environment, DNS, the destination guard, TLS, the database, disk.",
        options: StoreSelection.options + [
            OptionSpec(name: "json", value: nil, help: "One JSON object: {\"ok\", \"checks\": [{\"check\", \"subject\", \"result\", \"detail\"}]}."),
            OptionSpec(name: "timeout", value: "SECONDS", help: "How long each connection check may take (default 5)."),
        ],
        discussion: """
            Checks that every env: value is set; that each endpoint's host resolves and every address
            passes the destination guard; that a TLS handshake to each https endpoint succeeds with its
            tls settings (and how many days its certificate has left: a warning under 14); that the
            database is reachable and migrated (opening it applies pending migrations, as every command
            does); the -wal file's size and the free disk beside the database. Prints pass, warn or fail
            per check and exits 1 when any failed.
            """)

    enum Result: String { case pass, warn, fail }

    struct Check {
        let check: String
        let subject: String
        let result: Result
        let detail: String
    }

    let selection: StoreSelection
    let json: Bool
    let timeout: Double

    init(_ arguments: ParsedArguments) throws {
        selection = try StoreSelection(arguments, requireConfig: true)
        json = arguments.flag("json")
        timeout = try arguments.value("timeout").map { text in
            guard let value = Double(text), (0.1...60).contains(value) else { throw UsageError("--timeout must be 0.1 to 60 seconds") }
            return value
        } ?? 5
    }

    func run() throws {
        guard let configuration = selection.configuration else { throw UsageError("doctor needs --config") }
        var checks: [Check] = []
        checks += environmentChecks(configuration)
        checks += try endpointChecks(configuration)
        checks += databaseChecks(configuration)
        report(checks)
        if checks.contains(where: { $0.result == .fail }) { throw DoctorFailed() }
    }

    /// Exit 1 without another message: the table said what failed.
    struct DoctorFailed: Error, CustomStringConvertible {
        var description: String { "doctor found failures" }
    }

    func environmentChecks(_ configuration: DispatcherConfiguration) -> [Check] {
        let references = configuration.environmentReferences()
        guard !references.isEmpty else { return [Check(check: "environment", subject: "env: values", result: .pass, detail: "none used")] }
        return references.map { reference in
            let set = ProcessInfo.processInfo.environment[reference.variable] != nil
            return Check(check: "environment", subject: "\(reference.endpointID) \(reference.key)", result: set ? .pass : .fail,
                         detail: set ? "\(reference.variable) is set" : "\(reference.variable) is not set")
        }
    }

    func endpointChecks(_ configuration: DispatcherConfiguration) throws -> [Check] {
        var checks: [Check] = []
        let client = try HTTPClient(configuration: configuration.serviceConfiguration(logger: .silent).clientConfiguration)
        for endpoint in configuration.endpoints {
            let host = URLComponents(string: endpoint.url)?.host ?? ""
            // DNS and the guard, as a proxied request is judged (the same resolution serve's libcurl does).
            switch ProxiedDestinations.shared.judge(endpoint.url, policy: configuration.destinationPolicy) {
            case .some((let kind, let message)) where kind == .dns:
                checks.append(Check(check: "dns", subject: endpoint.id, result: .fail, detail: message))
                continue
            case .some((_, let message)):
                checks.append(Check(check: "dns", subject: endpoint.id, result: .pass, detail: "\(host) resolves"))
                checks.append(Check(check: "destination", subject: endpoint.id, result: .fail, detail: message))
                continue
            case .none:
                checks.append(Check(check: "dns", subject: endpoint.id, result: .pass, detail: "\(host) resolves"))
                checks.append(Check(check: "destination", subject: endpoint.id, result: .pass, detail: "every address is allowed"))
            }
            guard endpoint.url.lowercased().hasPrefix("https://") else { continue }
            // As serve would connect: its TLS settings and its proxy.
            let proxy: String?
            do {
                proxy = try ProxyAddress.resolve(endpoint.proxy ?? configuration.proxy)
            } catch {
                checks.append(Check(check: "tls", subject: endpoint.id, result: .fail, detail: "not tried: \(error)"))
                continue
            }
            let request = HTTPRequest(url: endpoint.url, headers: [], body: [], timeoutSeconds: timeout, connectTimeoutSeconds: timeout,
                                      tls: try? RequestTLS.resolving(endpoint.tls), proxy: proxy, http2: endpoint.http2)
            let probe = client.probe(request)
            if let failure = probe.failure {
                checks.append(Check(check: "tls", subject: endpoint.id, result: .fail,
                                    detail: "\(failure.errorKind?.rawValue ?? "error"): \(failure.errorMessage ?? "")"))
            } else if let expiry = probe.certificateExpiry {
                let days = Int(expiry.timeIntervalSinceNow / 86_400)
                checks.append(Check(check: "tls", subject: endpoint.id, result: days < 14 ? .warn : .pass,
                                    detail: "handshake ok; certificate expires \(Clock.iso8601(expiry)) (\(days) days)"))
            } else {
                checks.append(Check(check: "tls", subject: endpoint.id, result: .pass, detail: "handshake ok"))
            }
        }
        return checks
    }

    func databaseChecks(_ configuration: DispatcherConfiguration) -> [Check] {
        var checks: [Check] = []
        let location = configuration.database
        let isPostgres = OutboxStore.isPostgresURL(location)
        let subject = isPostgres ? "postgres" : location
        do {
            let store = try OutboxStore.open(location, options: configuration.storeOptions)
            try store.checkHealth()
            let version = try store.schemaVersion()
            checks.append(Check(check: "database", subject: subject, result: version.applied == version.latest ? .pass : .fail,
                                detail: "reachable; schema version \(version.applied) of \(version.latest)"))
        } catch {
            return [Check(check: "database", subject: subject, result: .fail, detail: "\(error)")]
        }
        guard !isPostgres else { return checks }
        let walBytes = ((try? FileManager.default.attributesOfItem(atPath: location + "-wal"))?[.size] as? Int) ?? 0
        checks.append(Check(check: "wal", subject: location + "-wal", result: walBytes > 256 * 1024 * 1024 ? .warn : .pass,
                            detail: "\(walBytes / (1024 * 1024)) MB (checkpoints keep it near 40 MB)"))
        var info = statvfs()
        let folder = URL(fileURLWithPath: location).deletingLastPathComponent().path
        if statvfs(folder, &info) == 0 {
            let free = Int64(info.f_bavail) * Int64(info.f_frsize)
            let result: Result = free < 100 * 1024 * 1024 ? .fail : free < 1024 * 1024 * 1024 ? .warn : .pass
            checks.append(Check(check: "disk", subject: folder, result: result, detail: "\(free / (1024 * 1024)) MB free"))
        }
        return checks
    }

    func report(_ checks: [Check]) {
        if json {
            let rows = checks.map { JSONValue.object([("check", .string($0.check)), ("subject", .string($0.subject)),
                                                      ("result", .string($0.result.rawValue)), ("detail", .string($0.detail))]) }
            Console.out(json: JSONValue.object([("ok", .bool(!checks.contains { $0.result == .fail })), ("checks", .array(rows))]).text + "\n")
            return
        }
        var table = Table(["CHECK", "SUBJECT", "RESULT", "DETAIL"])
        for check in checks { table.add(["\(check.check)", "\(check.subject)", "\(check.result.rawValue)", "\(check.detail)"]) }
        Console.out(table.render())
        let failed = checks.filter { $0.result == .fail }.count, warned = checks.filter { $0.result == .warn }.count
        Console.out("\(failed) failed, \(warned) warnings, \(checks.count - failed - warned) passed\n")
    }
}
