import Foundation
import XCTest
import DispatcherServer
import WebhookDispatcher

/// What the test receiver does with one request.
enum ReceiverAction: Sendable {
    case respond(status: Int, contentType: String? = "application/json", body: String = "{}", headers: [HeaderField] = [])
    /// Waits (cancelled when the receiver stops), then responds.
    case delay(seconds: Double, then: Response)
    /// Holds the request until the test opens `gate` (or the receiver stops), then responds:
    /// a receiver or token endpoint that is slow for exactly as long as the test needs.
    case wait(for: Gate, then: Response)
    /// Closes the connection without answering.
    case close
    /// Any reply the server supports (reset, raw bytes, a streamed response).
    case reply(HTTPServerReply)

    struct Response: Sendable {
        var status: Int
        var body: String = "{}"
    }

    static let ok = ReceiverAction.respond(status: 200)
}

/// A condition a test opens once; receivers scripted with `.wait(for:then:)` answer after it.
final class Gate: @unchecked Sendable {
    // `@unchecked Sendable`: `isOpen` is read and written only with `condition` locked.
    private let condition = NSCondition()
    private var isOpen = false

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits up to `seconds` for the gate to open; returns whether it is open.
    func wait(seconds: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(seconds)
        while !isOpen && condition.wait(until: deadline) {}
        return isOpen
    }
}

/// A real HTTP/1.1 receiver on 127.0.0.1 (ephemeral port) that records every request and
/// answers as the test scripts it: by the request's sequence number on its path.
final class TestReceiver: Sendable {
    private let server = Locked<HTTPServer?>(nil)
    /// Requests in arrival order.
    private let recorded = Locked<(all: [HTTPServerRequest], countByPath: [String: Int])>(([], [:]))
    private let stopSignal = DispatchSemaphore(value: 0)
    let port: Int

    /// `script(path, n)` answers the n-th (0-based) request on `path`.
    convenience init(host: String = "127.0.0.1", script: @escaping @Sendable (_ path: String, _ index: Int) -> ReceiverAction = { _, _ in .ok }) throws {
        try self.init(host: host, requestScript: { request, index in script(request.path, index) })
    }

    /// `requestScript(request, n)` answers the n-th (0-based) request on the request's path.
    init(host: String = "127.0.0.1", requestScript script: @escaping @Sendable (HTTPServerRequest, Int) -> ReceiverAction) throws {
        let recorded = self.recorded
        let stopSignal = self.stopSignal
        let server = try HTTPServer(host: host, port: 0) { request in
            // The script gets the request's number among those on its path.
            let index = recorded.withLock { recorded in
                recorded.all.append(request)
                defer { recorded.countByPath[request.path, default: 0] += 1 }
                return recorded.countByPath[request.path, default: 0]
            }
            switch script(request, index) {
            case .respond(let status, let contentType, let body, let headers):
                var all = headers
                if let contentType { all.insert(HeaderField("Content-Type", contentType), at: 0) }
                return .respond(HTTPServerResponse(status: status, headers: all, body: Array(body.utf8)))
            case .delay(let seconds, let response):
                if stopSignal.wait(timeout: .now() + seconds) == .success { stopSignal.signal() }
                return .respond(.json(response.status, response.body))
            case .wait(let gate, let response):
                while !gate.wait(seconds: 0.05) {
                    if stopSignal.wait(timeout: .now()) == .success { stopSignal.signal(); break }
                }
                return .respond(.json(response.status, response.body))
            case .close:
                return .close
            case .reply(let reply):
                return reply
            }
        }
        self.port = server.port
        self.host = host
        self.server.withLock { $0 = server }
    }

    let host: String

    func url(_ path: String = "/hook") -> String {
        "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
    }

    var requests: [HTTPServerRequest] { recorded.value.all }

    var connectionsAccepted: Int { server.withLock { $0?.connectionsAccepted ?? 0 } }

    func requests(on path: String) -> [HTTPServerRequest] { requests.filter { $0.path == path } }

    func stop() {
        stopSignal.signal()
        server.withLock { $0?.stop(); $0 = nil }
    }

    deinit { stop() }
}

/// A value shared between a test and the threads of its receivers or readers.
///
/// `@unchecked Sendable`: `stored` is read and written only with `lock` held.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&stored) } }
}

/// A number from this process's `/proc/self/status` (`Threads`, or `RssAnon` in KiB); nil when
/// the kernel does not report `field`.
func processStatus(_ field: String) -> Int? {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
    return line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
}

/// A fresh folder for a test's files (its database among them), removed by `tearDown`.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "dispatcher-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Where a test's data lives. `DISPATCHER_TEST_STORE=postgres` runs the store and worker tests
/// on PostgreSQL: each test gets its own schema on one throwaway cluster (`PostgresTestServer`),
/// dropped when it ends.
struct TestDatabase {
    enum Backend { case sqlite, postgres }

    static let backend: Backend = ProcessInfo.processInfo.environment["DISPATCHER_TEST_STORE"] == "postgres" ? .postgres : .sqlite

    let location: String
    let drop: () -> Void

    static func make(in directory: TemporaryDirectory) throws -> TestDatabase {
        switch backend {
        case .sqlite: return TestDatabase(location: directory.file("outbox.sqlite"), drop: {})
        case .postgres: return try PostgresTestServer.shared().makeSchemaDatabase()
        }
    }
}

/// Common set-up: a store in a temp folder, a receiver, helpers to build endpoints and run
/// the service, and bounded waits.
class DispatcherTestCase: XCTestCase {
    var directory: TemporaryDirectory!
    var store: OutboxStore!
    /// The test's database: a SQLite file, or a PostgreSQL URL naming this test's own schema
    /// when the suite runs with `DISPATCHER_TEST_STORE=postgres` (see `TestDatabase`).
    var databaseLocation: String { database.location }
    private var database: TestDatabase!
    private var services: [DeliveryService] = []
    private var receivers: [TestReceiver] = []
    private var servers: [Process] = []

    override func setUpWithError() throws {
        directory = TemporaryDirectory()
        database = try TestDatabase.make(in: directory)
        store = try openStore()
    }

    /// Another store on the test's database (another process's view, or other options).
    func openStore(options: StoreOptions = StoreOptions()) throws -> OutboxStore {
        try OutboxStore.open(databaseLocation, options: options)
    }

    /// Skips a test of something only SQLite has (a file, its pragmas).
    func requireSQLite(_ why: String) throws {
        guard TestDatabase.backend == .sqlite else { throw XCTSkip("SQLite only: \(why)") }
    }

    override func tearDown() {
        servers.filter(\.isRunning).forEach { kill($0.processIdentifier, SIGKILL); $0.waitUntilExit() }
        servers = []
        services.forEach { $0.stop() }
        receivers.forEach { $0.stop() }
        services = []
        receivers = []
        store = nil
        database?.drop()
        directory?.remove()
    }

    func makeReceiver(host: String = "127.0.0.1", script: @escaping @Sendable (String, Int) -> ReceiverAction = { _, _ in .ok }) throws -> TestReceiver {
        try makeRequestReceiver(host: host) { request, index in script(request.path, index) }
    }

    /// A receiver scripted on the whole request (headers, body), not only its path.
    func makeRequestReceiver(host: String = "127.0.0.1", requestScript: @escaping @Sendable (HTTPServerRequest, Int) -> ReceiverAction) throws -> TestReceiver {
        let receiver = try TestReceiver(host: host, requestScript: requestScript)
        receivers.append(receiver)
        return receiver
    }

    /// A tenant with the given endpoints, stored.
    @discardableResult
    func addTenant(_ id: String = "tenant-a", endpoints: [Endpoint]) throws -> [Endpoint] {
        try store.upsert(tenants: [Tenant(id: id, name: id)], endpoints: endpoints)
        return endpoints
    }

    func endpoint(_ id: String = "ep-1", tenant: String = "tenant-a", url: String, events: [String] = [],
                  retry: RetryPolicy = .exponential(.init(initialSeconds: 0.01, factor: 1, maxSeconds: 0.01, maxAttempts: 1)),
                  success: SuccessRule = .any2xx, timeout: Double = 5, headers: [String: String] = [:]) -> Endpoint {
        Endpoint(id: id, tenantID: tenant, url: url, eventFilters: events, headers: headers, timeoutSeconds: timeout,
                 connectTimeoutSeconds: min(timeout, 2), maxConcurrency: 4, retry: retry, success: success)
    }

    @discardableResult
    func startService(concurrentRequests: Int = 4, leaseSeconds: Double = 30,
                      policy: DestinationPolicy = DestinationPolicy(allowPrivateAddresses: true),
                      urlPolicy: URLPolicy = URLPolicy(requireHTTPS: false),
                      responseBodyCap: Int = 64 * 1024, proxy: String? = nil) throws -> DeliveryService {
        var configuration = DeliveryServiceConfiguration(
            concurrentRequests: concurrentRequests, pollInterval: 0.02, leaseSeconds: leaseSeconds, responseBodyCap: responseBodyCap,
            destinationPolicy: policy, urlPolicy: urlPolicy, logger: .silent)
        configuration.proxy = proxy
        let service = DeliveryService(store: store, configuration: configuration)
        services.append(service)
        try service.start()
        return service
    }

    @discardableResult
    func enqueue(_ json: String = #"{"hello":"world"}"#, type: String = "checkin.outcome", tenant: String = "tenant-a") throws -> EnqueueResult {
        try store.enqueue(NewEvent(tenantID: tenant, type: type, json: json))
    }

    /// Enqueues `count` events in one transaction through a second connection, as a producer would.
    @discardableResult
    func enqueueMany(_ count: Int) throws -> [String] {
        let producer = try openStore()
        return try producer.write { tx in
            try (0..<count).map { try tx.enqueue(NewEvent(tenantID: "tenant-a", type: "order.created", json: #"{"n":\#($0)}"#)).eventID }
        }
    }

    /// A worker's result for `claim`: 200 and succeeded, or 500 for any other verdict.
    func result(_ claim: ClaimedDelivery, owner: String = "w", verdict: AttemptVerdict) -> AttemptResult {
        let succeeded: Bool
        if case .succeeded = verdict { succeeded = true } else { succeeded = false }
        let attempt = Attempt(number: claim.attemptNumber, startedAt: Date(), durationMicroseconds: 10, url: "https://example.com/",
                              requestHeaders: [], responseStatus: succeeded ? 200 : 500, responseHeaders: [], responseBody: [],
                              responseTruncated: false, errorKind: succeeded ? nil : .http, errorMessage: nil, verdict: verdict)
        return AttemptResult(deliveryID: claim.deliveryID, endpointID: claim.endpointID, leaseOwner: owner, attempt: attempt)
    }

    // MARK: - The dispatcher executable

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var executable: URL {
        // swift test runs the test bundle from the build folder the executable is in.
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("dispatcher")
    }

    func launch(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        try Self.launch(Self.executable, arguments, stdin: stdin, environment: environment)
    }

    /// Starts `executable` with stdin given (then closed) and stdout and stderr on pipes.
    static func launch(_ executable: URL, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["DISPATCHER_CONFIG"] = nil
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        return (process, out, err)
    }

    /// Starts `dispatcher serve` with its log going to `logFile` (a pipe could fill and block it).
    func startServe(config: String, logFile: String, environment: [String: String] = [:], verbose: Bool = false) throws -> Process {
        try startDaemon(Self.executable, ["serve", "--config", config] + (verbose ? ["--verbose"] : []), logFile: logFile, environment: environment)
    }

    /// Starts a long-running program (`serve`, nginx, tinyproxy...) with its output appended to
    /// `logFile`; it is killed when the test ends.
    @discardableResult
    func startDaemon(_ executable: URL, _ arguments: [String], logFile: String, environment: [String: String] = [:]) throws -> Process {
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["DISPATCHER_CONFIG"] = nil
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        servers.append(process)
        return process
    }

    /// Sends `signal` and waits (bounded) for the process to exit; returns its status.
    @discardableResult
    func stopProcess(_ process: Process, signal: Int32, file: StaticString = #filePath, line: UInt = #line) throws -> Int32 {
        kill(process.processIdentifier, signal)
        waitUntil("process \(process.processIdentifier) exits", timeout: 30, file: file, line: line) { !process.isRunning }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs `dispatcher` to completion; a run longer than `timeout` seconds is killed and fails the test.
    func run(_ arguments: [String], stdin: String? = nil, timeout: Double = 30, file: StaticString = #filePath, line: UInt = #line) throws -> Output {
        try Self.runToCompletion(Self.executable, arguments, stdin: stdin, timeout: timeout, file: file, line: line)
    }

    /// Runs a program nobody here wrote (curl, python3, psql, swiftc), found on PATH, to completion.
    static func runTool(_ arguments: [String], stdin: String? = nil, timeout: Double = 60,
                        file: StaticString = #filePath, line: UInt = #line) throws -> Output {
        try runToCompletion(URL(fileURLWithPath: "/usr/bin/env"), arguments, stdin: stdin, timeout: timeout, file: file, line: line)
    }

    static func runToCompletion(_ executable: URL, _ arguments: [String], stdin: String?, timeout: Double,
                                file: StaticString, line: UInt) throws -> Output {
        let (process, out, err) = try launch(executable, arguments, stdin: stdin)
        // Read both pipes while the process runs, so neither can fill up and block it; on
        // threads of their own, since callers may run many of these from Dispatch's pool.
        let outputs = Locked([Data(), Data()])
        let reading = DispatchGroup()
        for (index, pipe) in [out, err].enumerated() {
            reading.enter()
            Thread.detachNewThread {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                outputs.withLock { $0[index] = data }
                reading.leave()
            }
        }
        if reading.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            XCTFail("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) ran longer than \(timeout)s", file: file, line: line)
            reading.wait()
        }
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: outputs.value[0], as: UTF8.self),
                      stderr: String(decoding: outputs.value[1], as: UTF8.self))
    }

    /// A config file for one tenant with one endpoint at `url`, on this test's database.
    /// `extra` adds top-level keys; `endpointExtra` adds keys to the endpoint.
    func writeConfig(url: String, extra: String = "", endpointExtra: String = "") throws -> String {
        let path = directory.file("config.json")
        try """
            {
              "database": "\(databaseLocation)", "require_https": false, "allow_private_addresses": true, "poll_interval_ms": 20 \(extra),
              "tenants": [{"id": "tenant-a", "endpoints": [{"id": "ep-1", "url": "\(url)",
                           "retry": {"policy": "one_retry", "delay_seconds": 0} \(endpointExtra)}]}]
            }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }


    /// Polls `condition` every 10 ms until it holds; fails the test after `timeout` seconds.
    func waitUntil(_ description: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line,
                   _ condition: () throws -> Bool) rethrows {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTFail("timed out after \(timeout)s waiting until \(description)", file: file, line: line)
    }

    /// The port a daemon's log announces after `prefix` ("metrics on http://127.0.0.1:"), once it does.
    func waitForAnnouncedPort(in logFile: String, after prefix: String, file: StaticString = #filePath, line: UInt = #line) -> Int {
        var port = 0
        waitUntil("the log announces '\(prefix)PORT'", file: file, line: line) {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            guard let range = log.range(of: prefix), let announced = Int(log[range.upperBound...].prefix { $0.isNumber }) else { return false }
            port = announced
            return true
        }
        return port
    }

    /// A free port on 127.0.0.1 (bound and released: the server about to use it binds it next).
    func freePort() throws -> Int {
        let probe = try HTTPServer(host: "127.0.0.1", port: 0) { _ in .close }
        defer { probe.stop() }
        return probe.port
    }

    /// Waits until every delivery of the event is in a final state; returns its record.
    @discardableResult
    func waitForFinalDeliveries(of eventID: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws -> EventRecord {
        try waitUntil("event \(eventID)'s deliveries are final", timeout: timeout, file: file, line: line) {
            let record = try store.eventRecord(eventID: eventID)
            return record.map { !$0.deliveries.isEmpty && $0.deliveries.allSatisfy { $0.delivery.status.isFinal } } ?? false
        }
        return try XCTUnwrap(store.eventRecord(eventID: eventID))
    }
}
