import Foundation
import Synchronization
import XCTest
@testable import WebhookDispatcher

/// What the test receiver does with one request.
enum ReceiverAction: Sendable {
    case respond(status: Int, contentType: String? = "application/json", body: String = "{}", headers: [HeaderField] = [])
    /// Waits (cancelled when the receiver stops), then responds.
    case delay(seconds: Double, then: Response)
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

/// A real HTTP/1.1 receiver on 127.0.0.1 (ephemeral port) that records every request and
/// answers as the test scripts it: by the request's sequence number on its path.
final class TestReceiver: Sendable {
    private let server: Mutex<HTTPServer?> = Mutex(nil)
    private let recorded = RequestLog()
    private let stopSignal = DispatchSemaphore(value: 0)
    let port: Int

    /// `script(path, n)` answers the n-th (0-based) request on `path`.
    init(host: String = "127.0.0.1", script: @escaping @Sendable (_ path: String, _ index: Int) -> ReceiverAction = { _, _ in .ok }) throws {
        let recorded = self.recorded
        let stopSignal = self.stopSignal
        let server = try HTTPServer(host: host, port: 0) { request in
            let index = recorded.append(request)
            switch script(request.path, index) {
            case .respond(let status, let contentType, let body, let headers):
                var all = headers
                if let contentType { all.insert(HeaderField("Content-Type", contentType), at: 0) }
                return .respond(HTTPServerResponse(status: status, headers: all, body: Array(body.utf8)))
            case .delay(let seconds, let response):
                if stopSignal.wait(timeout: .now() + seconds) == .success { stopSignal.signal() }
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

    var requests: [HTTPServerRequest] { recorded.all }

    var connectionsAccepted: Int { server.withLock { $0?.connectionsAccepted ?? 0 } }

    func requests(on path: String) -> [HTTPServerRequest] { requests.filter { $0.path == path } }

    func stop() {
        stopSignal.signal()
        server.withLock { $0?.stop(); $0 = nil }
    }

    deinit { stop() }
}

/// Requests in arrival order.
final class RequestLog: Sendable {
    private let requests = Mutex<[HTTPServerRequest]>([])

    /// Appends and returns how many earlier requests had the same path.
    func append(_ request: HTTPServerRequest) -> Int {
        requests.withLock { requests in
            let index = requests.filter { $0.path == request.path }.count
            requests.append(request)
            return index
        }
    }

    var all: [HTTPServerRequest] { requests.withLock { $0 } }
}

/// A fresh database file in its own temporary folder, removed by `tearDown`.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "dispatcher-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Common set-up: a store in a temp folder, a receiver, helpers to build endpoints and run
/// the service, and bounded waits.
class DispatcherTestCase: XCTestCase {
    var directory: TemporaryDirectory!
    var store: SQLiteStore!
    private var services: [DeliveryService] = []
    private var receivers: [TestReceiver] = []

    override func setUpWithError() throws {
        directory = TemporaryDirectory()
        store = try SQLiteStore(path: directory.file("outbox.sqlite"))
    }

    override func tearDown() {
        services.forEach { $0.stop() }
        receivers.forEach { $0.stop() }
        services = []
        receivers = []
        store = nil
        directory.remove()
    }

    func makeReceiver(host: String = "127.0.0.1", script: @escaping @Sendable (String, Int) -> ReceiverAction = { _, _ in .ok }) throws -> TestReceiver {
        let receiver = try TestReceiver(host: host, script: script)
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
    func startService(workers: Int = 4, leaseSeconds: Double = 30,
                      policy: DestinationPolicy = DestinationPolicy(allowPrivateAddresses: true),
                      urlPolicy: URLPolicy = URLPolicy(requireHTTPS: false),
                      responseBodyCap: Int = 64 * 1024) -> DeliveryService {
        let service = DeliveryService(store: store, configuration: DeliveryServiceConfiguration(
            workers: workers, pollInterval: 0.02, leaseSeconds: leaseSeconds, responseBodyCap: responseBodyCap,
            destinationPolicy: policy, urlPolicy: urlPolicy, logger: .silent))
        services.append(service)
        service.start()
        return service
    }

    @discardableResult
    func enqueue(_ json: String = #"{"hello":"world"}"#, type: String = "checkin.outcome", tenant: String = "tenant-a") throws -> EnqueueResult {
        try store.enqueue(NewEvent(tenantID: tenant, type: type, json: json))
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
