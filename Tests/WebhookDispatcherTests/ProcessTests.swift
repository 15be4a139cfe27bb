import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// `dispatcher serve` as real processes: killed mid-flight, stopped gracefully, and several at
/// once on one database (a file, or one PostgreSQL server in the conformance pass).
final class ProcessTests: DispatcherTestCase {
    static let workers = 8

    /// A receiver that takes a few milliseconds per request, so kills land mid-flight.
    func slowishReceiver() throws -> TestReceiver {
        try makeReceiver { _, _ in .delay(seconds: 0.003, then: .init(status: 200)) }
    }

    /// Writes the config and stores its tenant and endpoint, as `serve` would at start.
    func config(for receiver: TestReceiver) throws -> String {
        let path = try writeConfig(url: receiver.url(), extra: #", "workers": \#(Self.workers), "lease_seconds": 2"#,
                                   endpointExtra: #", "timeout_seconds": 1, "max_concurrency": 16"#)
        let configuration = try DispatcherConfiguration.load(path: path)
        try store.upsert(tenants: configuration.tenants, endpoints: configuration.endpoints)
        return path
    }

    func finalCount() throws -> Int {
        try store.withConnection { try $0.query("SELECT count(*) FROM deliveries WHERE status IN ('succeeded', 'failed', 'cancelled')") { $0.int(0) } }.first ?? 0
    }

    func testSIGKILLMidFlightLosesNothingAndDuplicatesStayWithinTheInFlightBound() throws {
        let receiver = try slowishReceiver()
        let config = try config(for: receiver)
        let ids = try enqueueMany(2_000)

        let killPoints = 4
        var delays: [Double] = []
        for point in 0..<killPoints {
            let before = receiver.requests.count
            let serve = try startServe(config: config, logFile: directory.file("serve-\(point).log"))
            waitUntil("serve \(point) delivers", timeout: 30) { receiver.requests.count > before + 20 }
            let delay = Double.random(in: 0.02...0.25)
            delays.append(delay)
            Thread.sleep(forTimeInterval: delay) // a random moment while deliveries are in flight
            XCTAssertNotEqual(try stopProcess(serve, signal: SIGKILL), 0)
        }
        let final = try startServe(config: config, logFile: directory.file("serve-final.log"))
        try waitUntil("every delivery is final", timeout: 90) { try finalCount() == ids.count }
        XCTAssertEqual(try stopProcess(final, signal: SIGTERM), 0)

        let received = receiver.requests.compactMap { $0.header("webhook-id") }
        let lost = Set(ids).subtracting(received)
        let duplicates = received.count - Set(received).count
        XCTAssertEqual(lost.count, 0, "events never delivered")
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .succeeded, limit: 10_000)).count, ids.count)
        // Each kill can leave at most the attempts in flight or awaiting their record unrecorded:
        // the claimed board holds at most four per worker (DeliveryService's claim capacity).
        XCTAssertLessThanOrEqual(duplicates, killPoints * 4 * Self.workers)
        print("crash-safety: \(killPoints) SIGKILL points after \(delays.map { String(format: "%.2fs", $0) }), \(ids.count) events, lost \(lost.count), duplicates \(duplicates)")
    }

    func testSIGTERMStopsWithoutDuplicates() throws {
        let receiver = try slowishReceiver()
        let config = try config(for: receiver)
        let ids = try enqueueMany(2_000)

        for point in 0..<3 {
            let before = receiver.requests.count
            let serve = try startServe(config: config, logFile: directory.file("serve-\(point).log"))
            waitUntil("serve \(point) delivers", timeout: 30) { receiver.requests.count > before + 20 }
            Thread.sleep(forTimeInterval: Double.random(in: 0.02...0.2))
            XCTAssertEqual(try stopProcess(serve, signal: SIGTERM), 0)
            let leftBehind = try store.deliveries(matching: DeliveryFilter(status: .delivering)).count
            XCTAssertEqual(leftBehind, 0, "a graceful stop hands every claim back")
        }
        let final = try startServe(config: config, logFile: directory.file("serve-final.log"))
        try waitUntil("every delivery is final", timeout: 90) { try finalCount() == ids.count }
        XCTAssertEqual(try stopProcess(final, signal: SIGTERM), 0)

        let received = receiver.requests.compactMap { $0.header("webhook-id") }
        XCTAssertEqual(received.count, ids.count, "zero duplicates")
        XCTAssertEqual(Set(received), Set(ids))
    }

    func testThreeServeProcessesShareOneDatabaseWithoutDoubleAttempts() throws {
        let receiver = try slowishReceiver()
        let config = try config(for: receiver)
        // The scale-out evidence on PostgreSQL (the conformance pass) is 10,000 events.
        let ids = try enqueueMany(TestDatabase.backend == .postgres ? 10_000 : 5_000)

        let processes = try (0..<3).map { try startServe(config: config, logFile: directory.file("serve-\($0).log")) }
        try waitUntil("every delivery is final", timeout: 120) { try finalCount() == ids.count }
        for process in processes { XCTAssertEqual(try stopProcess(process, signal: SIGTERM), 0) }

        let received = receiver.requests.compactMap { $0.header("webhook-id") }
        XCTAssertEqual(received.count, ids.count, "no delivery was attempted twice")
        XCTAssertEqual(Set(received), Set(ids))
        let attempts = try store.withConnection { try $0.query("SELECT count(*) FROM attempts") { $0.int(0) } }
        XCTAssertEqual(attempts, [ids.count])
        var owners: Set<String> = []
        for index in 0..<3 {
            let log = try String(contentsOfFile: directory.file("serve-\(index).log"), encoding: .utf8)
            XCTAssertFalse(log.contains("locked"), log)
            XCTAssertFalse(log.contains(" error "), log)
            if let owner = log.split(separator: "\n").first(where: { $0.contains("delivering with") })?.split(separator: " ").last {
                owners.insert(String(owner))
            }
        }
        XCTAssertEqual(owners.count, 3, "three distinct lease owners")
    }
}
