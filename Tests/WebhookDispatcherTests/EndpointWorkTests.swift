import DispatcherModel
@testable import DispatcherStore
import Foundation
import XCTest

/// The claim structure (`endpoint_work`): claims read the endpoints that have due work, not
/// every endpoint, and no pending delivery is ever out of their sight. On both stores.
final class EndpointWorkTests: DispatcherTestCase {
    /// 200 endpoints, work for two: only those two are listed, and once their work is leased
    /// the list is empty again, so the next claim reads nothing of the other 198.
    func testOnlyEndpointsWithDueWorkAreListed() throws {
        try addTenant(endpoints: (0..<200).map { endpoint("ep-\($0)", url: "https://example.com/\($0)", events: ["x.\($0)"]) })
        try enqueue(type: "x.7")
        try enqueue(type: "x.7")
        try enqueue(type: "x.42")
        XCTAssertEqual(try listed(), ["ep-42", "ep-7"])

        let claimed = try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(claimed.map(\.endpointID).sorted(), ["ep-42", "ep-7", "ep-7"])
        XCTAssertEqual(try listed(), [], "their due work is leased and nothing else is pending")

        // A failure with a retry in a minute puts the endpoint back, due then.
        let retryAt = Date().addingTimeInterval(60)
        try store.record([result(claimed[0], verdict: .retryScheduled(at: retryAt))])
        XCTAssertEqual(try listed(), [claimed[0].endpointID])
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]), [])
        XCTAssertEqual(try listedDue(claimed[0].endpointID), Clock.milliseconds(retryAt), "moved on to its retry, not read again until then")
    }

    /// An endpoint that may not take work is moved past what holds it (an open circuit), or
    /// dropped while disabled and listed again once enabled; nothing of it is lost.
    func testHeldEndpointsAreMovedOnAndEnabledOnesComeBack() throws {
        try addTenant(endpoints: [endpoint("held", url: "https://example.com/h"), endpoint("off", url: "https://example.com/o")])
        try enqueue()
        let openUntil = Clock.nowMilliseconds() + 60_000
        try store.withConnection { db in
            try db.execute("UPDATE endpoints SET circuit_open_until = ? WHERE id = 'held'", [openUntil])
            try db.execute("UPDATE endpoints SET enabled = 0 WHERE id = 'off'", [])
        }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]), [])
        XCTAssertEqual(try listed(), ["held"], "the disabled endpoint's row is dropped")
        XCTAssertEqual(try listedDue("held"), openUntil)

        // Enabled again, in plain SQL even: its pending delivery is claimable at once.
        try store.withConnection { db in _ = try db.execute("UPDATE endpoints SET enabled = 1 WHERE id = 'off'", []) }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).map(\.endpointID), ["off"])
        // The library's enable closes the circuit: the held one's delivery goes too.
        try store.setEndpointEnabled(id: "held", enabled: true)
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).map(\.endpointID), ["held"])
    }

    /// Ninety held endpoints (circuits open) come first in due order, ten with work after them:
    /// a claim reads on, page after growing page (16, 32, 64 rows), until it finds the ten, and
    /// moves the held ones past their circuits on the way.
    func testAClaimReadsPastHeldEndpointsPageAfterPage() throws {
        let ids = (0..<100).map { String(format: "ep-%03d", $0) }
        try addTenant(endpoints: ids.enumerated().map { index, id in endpoint(id, url: "https://example.com/\(index)", events: ["x.\(index)"]) })
        for index in ids.indices { try enqueue(type: "x.\(index)") }
        let openUntil = Clock.nowMilliseconds() + 60_000
        try store.withConnection { db in _ = try db.execute("UPDATE endpoints SET circuit_open_until = ? WHERE id < 'ep-090'", [openUntil]) }
        try store.withConnection { db in _ = try db.execute("UPDATE endpoint_work SET due_at = 1 WHERE endpoint_id < 'ep-090'", []) }

        let claimed = try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(claimed.map(\.endpointID).sorted(), Array(ids[90...]))
        for id in ids[..<90] { XCTAssertEqual(try listedDue(id), openUntil, "\(id) moved past its open circuit") }
        // Rows of the ten that filled their (cut) room stay until a claim finds them empty.
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]), [])
        XCTAssertEqual(try listed(), Array(ids[..<90]))
    }

    /// Random enqueues (to 40 endpoints: more than a claim's first page), claims (two processes), results (success, retry now or later, failure),
    /// releases, lease expiries and endpoints switched off and on: after every step each pending
    /// delivery of a usable endpoint is covered by a listed row due no later than it (on
    /// PostgreSQL whose probe also starts no later: `pending_from`) or by a signal not yet folded;
    /// at the end every delivery is claimed and finished.
    func testRandomOperationsNeverHideAPendingDelivery() throws {
        let ids = (0..<40).map { "ep-\($0)" }
        var endpoints = ids.enumerated().map { index, id in endpoint(id, url: "https://example.com/\(index)", events: ["t.\(index % 4)", "all"]) }
        for index in endpoints.indices { endpoints[index].maxConcurrency = 1 + index % 3 }
        try addTenant(endpoints: endpoints)
        let other = try openStore()
        var generator = BadInputTests.SplitMix64(state: 20261201)
        var held: [(store: OutboxStore, owner: String, claim: ClaimedDelivery)] = []
        for step in 0..<300 {
            switch generator.next() % 8 {
            case 0, 1:
                try enqueue(type: generator.next() % 5 == 0 ? "all" : "t.\(generator.next() % 4)")
            case 2, 3:
                let (claimer, owner) = generator.next() % 2 == 0 ? (store!, "a") : (other, "b")
                let inFlight = Dictionary(held.filter { $0.owner == owner }.map { ($0.claim.endpointID, 1) }, uniquingKeysWith: +)
                let claims = try claimer.claimDueDeliveries(limit: Int(1 + generator.next() % 6), owner: owner, leaseSeconds: 60, inFlight: inFlight)
                held += claims.map { (claimer, owner, $0) }
            case 4, 5:
                guard !held.isEmpty else { continue }
                let (claimer, owner, claim) = held.remove(at: Int(generator.next() % UInt64(held.count)))
                let verdicts: [AttemptVerdict] = [.succeeded, .failed, .retryScheduled(at: Date(timeIntervalSinceNow: -1)),
                                                  .retryScheduled(at: Date(timeIntervalSinceNow: 0.05))]
                try claimer.record([result(claim, owner: owner, verdict: verdicts[Int(generator.next() % 4)])])
            case 6:
                guard !held.isEmpty else { continue }
                if generator.next() % 2 == 0 {
                    let (claimer, owner, claim) = held.removeLast()
                    try claimer.releaseLeases(deliveryIDs: [claim.deliveryID], owner: owner)
                } else {
                    // A crashed worker: its leases run out and the sweep hands them back.
                    let owner = held.last?.owner ?? "a"
                    held.removeAll { $0.owner == owner }
                    try store.withConnection { db in _ = try db.execute("UPDATE deliveries SET lease_expires_at = 0 WHERE lease_owner = ?", [owner]) }
                }
            default:
                let id = ids[Int(generator.next() % UInt64(ids.count))]
                let enabled = try XCTUnwrap(store.endpoint(id: id)).enabled
                try store.setEndpointEnabled(id: id, enabled: !enabled)
            }
            try assertEveryPendingDeliveryIsListed(step: step)
        }

        // Everything on, every lease finished: the rest is claimed to the last delivery.
        for id in ids { try store.setEndpointEnabled(id: id, enabled: true) }
        for entry in held { try entry.store.record([result(entry.claim, owner: entry.owner, verdict: .succeeded)]) }
        try store.withConnection { db in _ = try db.execute("UPDATE deliveries SET next_attempt_at = 0 WHERE status = 'pending'", []) }
        var rounds = 0
        while try store.pendingCount() > 0 && rounds < 1_000 {
            rounds += 1
            for claim in try store.claimDueDeliveries(limit: 8, owner: "w", leaseSeconds: 60, inFlight: [:]) {
                try store.record([result(claim, verdict: .succeeded)])
            }
        }
        XCTAssertEqual(try store.pendingCount(), 0, "claims found every pending delivery (\(rounds) rounds)")
        // A row whose endpoint filled its room in the last claim stays until a claim finds it empty.
        XCTAssertEqual(try store.claimDueDeliveries(limit: 8, owner: "w", leaseSeconds: 60, inFlight: [:]), [])
        XCTAssertEqual(try listed(), [])
    }

    // MARK: - Helpers

    /// Endpoints listed in `endpoint_work` (PostgreSQL: or still in a signal not yet folded).
    private func listed() throws -> [String] {
        try store.withConnection { db in
            let sql = db.dialect == .postgres
                ? "SELECT endpoint_id FROM endpoint_work UNION SELECT endpoint_id FROM endpoint_work_signals ORDER BY 1"
                : "SELECT endpoint_id FROM endpoint_work ORDER BY 1"
            return try db.query(sql) { $0.string(0) }
        }
    }

    private func listedDue(_ endpointID: String) throws -> Int64? {
        try store.withConnection { db in try db.query("SELECT due_at FROM endpoint_work WHERE endpoint_id = ?", [endpointID]) { $0.int64(0) }.first }
    }

    private func assertEveryPendingDeliveryIsListed(step: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let uncovered = try store.withConnection { db -> [String] in
            let covering = db.dialect == .postgres
                ? """
                  (SELECT endpoint_id, greatest(due_at, pending_from) AS due_at FROM endpoint_work
                   UNION ALL SELECT endpoint_id, due_at FROM endpoint_work_signals)
                  """
                : "endpoint_work"
            return try db.query("""
                SELECT d.id || ' of ' || d.endpoint_id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                 WHERE d.status = 'pending' AND e.enabled = 1 AND e.removed_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM \(covering) w WHERE w.endpoint_id = d.endpoint_id AND w.due_at <= d.next_attempt_at)
                """) { $0.string(0) }
        }
        XCTAssertEqual(uncovered, [], "after step \(step), pending deliveries no claim would see", file: file, line: line)
    }
}
