import Foundation
import XCTest
@testable import DispatcherConfig
@testable import DispatcherDashboard
@testable import DispatcherDelivery
@testable import DispatcherEvents
@testable import DispatcherModel
@testable import DispatcherServer
@testable import DispatcherStore
@testable import DispatcherWorker
import WebhookDispatcher

/// The README's "Producing events" code, compiled and run, so the documentation cannot drift
/// from the API.
final class ReadmeExampleTests: XCTestCase {
    func testProducingTheSeedEventFamilies() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try OutboxStore.sqlite(path: directory.file("app.sqlite"))
        try store.upsert(
            tenants: ["acme", "hmo-1", "clinic-a", "idv-client", "kyc-client"].map { Tenant(id: $0, name: $0) },
            endpoints: [Endpoint(id: "all", tenantID: "hmo-1", url: "https://hmo.example/hooks")])
        let confirmedAt = Date()
        let verificationJSON = #"{"id":"01234567-89ab-cdef-0123-456789abcdef","status":"completed"}"#

        let result = try store.enqueue(NewEvent(tenantID: "acme", type: "order.shipped",
                                                json: #"{"order_id":"A-17"}"#, id: UUID()))
        XCTAssertFalse(result.isDuplicate)

        try store.enqueue(CheckinOutcome(
            authType: .otp, hmoID: 1, providerID: 10, enrolleeID: 1346,
            result: .succeeded(checkinID: 98765, confirmedAt: confirmedAt), occurredAt: Date()
        ).event(tenantID: "hmo-1"))

        let visit = VisitDetails(id: "28540", memberID: "60610", providerID: nil, start: 1546950546,
                                 end: 1546951446, actualStart: 1546950546, actualEnd: 1546950555)
        try store.enqueue(VisitEventV1(kind: .ended, created: 1546950556, accountCode: "acme",
                                       visit: visit, statusCode: 40, completedBy: "60610").event(tenantID: "clinic-a"))
        try store.enqueue(VisitEventV2(kind: .invoiceProcessed, created: 1546950556, clinicCode: "acme", visit: visit,
                                       status: "completed", statusUpdatedBy: "60610",
                                       invoice: .init(id: "132", status: .paid, amountDue: 2500, amountPaid: 2500, currency: "USD")
        ).event(tenantID: "clinic-a"))

        try store.enqueue(OnboardingStatusChanged(interviewID: "664283755e0f8e1b87fcc2ce", status: .onboardingFinished,
                                                  externalCustomerID: "MyCustomerID#0001").event(tenantID: "idv-client"))
        try store.enqueue(WatchlistUpdated(interviewID: "664283755e0f8e1b87fcc2ce", ref: "R-1", searchID: "S-9")
            .event(tenantID: "idv-client"))

        try store.enqueue(VerificationEvent(key: .documented("verification.completed"),
                                            dataJSON: Array(verificationJSON.utf8)).event(tenantID: "kyc-client"))

        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter()).map(\.eventType), ["checkin.outcome"])
    }
}
