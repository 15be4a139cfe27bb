import Foundation
import XCTest
@testable import DispatcherModel
import WebhookDispatcher

/// The typed builders against the seeds' own example payloads (copied from shared/seeds, with
/// the visit seed's placeholders and comments made into valid JSON), and every rejection rule.
final class EventBuilderTests: XCTestCase {
    // MARK: - The seeds' examples

    static let checkinSucceeded = """
        {"event": "checkin.outcome", "name": "checkin.outcome", "data": {
          "event_id": "0f3a12b8-0f3f-4d5c-8df0-8c2a5b1f1c44", "status": "succeeded", "auth_type": "OTP",
          "hmo_id": 1, "provider_id": 10, "enrollee_id": 1346, "checkin_id": 98765,
          "confirmed_at": "2026-01-27T14:40:10.000000Z", "reason_code": null, "message": null, "http_status": null,
          "occurred_at": "2026-01-27T14:40:10.123456Z"}}
        """
    static let checkinFailed = """
        {"event": "checkin.outcome", "name": "checkin.outcome", "data": {
          "event_id": "199becd6-f3fe-47ad-9619-7351767c1a09", "status": "failed", "auth_type": "FV",
          "hmo_id": 1, "provider_id": 1, "enrollee_id": 1346, "checkin_id": null, "confirmed_at": null,
          "reason_code": "FACE_MATCH_ERROR", "message": "Invalid image parameters. Ensure that image has a detectable face.",
          "http_status": 400, "occurred_at": "2026-01-27T14:37:44.923720Z"}}
        """
    static let visitV1Ended = """
        { "version": "1.0", "id": "5c34979c-30dc-496c-8cd3-6eb9925862c1",    "type": "visit.ended",    "created": 1546950556,    "account_code": "xxx",    "data": {        "id": "28540",        "member_id": "60610",        "provider_id": null,        "start": "1546950546",        "end": "1546951446",        "actual_start": "1546950546",        "actual_end": "1546950555",        "status": "40",        "completed_by": "60610"    } }
        """
    static let visitV2Ended = """
        { "version": "2.0", "id": "5c34979c-30dc-496c-8cd3-6eb9925862c1",    "type": "visit.ended",    "created": 1546950556,    "clinic_code": "xxx",    "data": {        "id": "28540",        "member_id": "60610",        "provider_id": null,        "start": 1546950546,        "end": 1546951446,        "actual_start": 1546950546,        "actual_end": 1546950555,        "status": "cancelled",        "status_updated_by": "60610"    } }
        """
    static let visitV2Note = """
        { "version": "2.0", "id": "5c34979c-30dc-496c-8cd3-6eb9925862c1",    "type": "visit.note.signed_and_sent",    "created": 1546950556,    "clinic_code": "xxx",    "data": {        "id": "28540",        "member_id": "60610",        "provider_id": null,        "start": 1546950546,        "end": 1546951446,        "actual_start": 1546950546,        "actual_end": 1546950555,        "status": "completed",        "status_updated_by": "60610", "note": { "id": 77, "status": "signed" }    } }
        """
    static let visitV2Invoice = """
        { "version": "2.0", "id": "5c34979c-30dc-496c-8cd3-6eb9925862c1",    "type": "visit.invoice.processed",    "created": 1546950556,    "clinic_code": "xxx",    "data": {        "id": "28540",        "member_id": "60610",        "provider_id": null,        "start": 1546950546,        "end": 1546951446,        "actual_start": 1546950546,        "actual_end": 1546950555,        "status": "completed",        "status_updated_by": "60610", "invoice": { "id": "132", "status": "pending", "amount_due": 2500, "amount_paid": 1500, "currency": "USD" }    } }
        """
    static let onboardingStatus = """
        {
        \t"interviewId": "664283755e0f8e1b87fcc2ce",
          "externalCustomerId" : "MyCustomerID#0001",
          "onboardingStatus": "ONBOARDING_FINISHED"
        }
        """
    static let watchlist = #"{"interviewId": "664283755e0f8e1b87fcc2ce", "ref": "REF-1", "search_id": "search-9"}"#
    static let verification = #"{"key" : "verification.updated", "data": {"id": "01234567-89ab-cdef-0123-456789abcdef"}}"#

    /// The example with the whitespace between tokens removed: what a compact encoder of the
    /// same keys, in the same order, with the same values must produce byte for byte.
    func compact(_ json: String) -> String {
        var output = "", inString = false, escaped = false
        for character in json {
            if inString {
                output.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
            } else if character == "\"" {
                inString = true
                output.append(character)
            } else if !character.isWhitespace {
                output.append(character)
            }
        }
        return output
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testStringsAndHeadersEscapeEveryCharacterJSONRequires() throws {
        let awkward = (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }.joined() + #"plain "quoted" back\slash / é 漢 🙂"#
        let header = HeaderField("X-Odd\"Name", awkward)
        let text = JSONText.encodeHeaders([HeaderField("Content-Type", "application/json"), header])
        let decoded = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String]])
        XCTAssertEqual(decoded, [["Content-Type", "application/json"], ["X-Odd\"Name", awkward]])
        XCTAssertEqual(JSONText.encodeHeaders([]), "[]")
        XCTAssertEqual(JSONValue.string("a\u{1}b\nc").text, #""a\u0001b\nc""#)
    }

    func testIntegersAndLiteralsAreWrittenAsJSONWrites() throws {
        let integers: [Int64] = [0, 7, -7, 9, 10, -10, 99, 100, 1_000_000_007, Int64.max, Int64.min, Int64.min + 1]
        let document = JSONValue.array(integers.map(JSONValue.integer) + [.null, .bool(true), .bool(false)])
        XCTAssertEqual(document.text, "[" + integers.map(String.init).joined(separator: ",") + ",null,true,false]")
        let reparsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(document.serialized)) as? [Any])
        XCTAssertEqual(reparsed.prefix(integers.count).map { ($0 as? NSNumber)?.int64Value }, integers)
    }

    func testCheckinExamplesRoundTripByteForByte() throws {
        for example in [Self.checkinSucceeded, Self.checkinFailed] {
            let event = try CheckinOutcome(body: bytes(example))
            XCTAssertEqual(event.json.text, compact(example))
        }
    }

    func testVisitExamplesRoundTripByteForByte() throws {
        XCTAssertEqual(try VisitEventV1(body: bytes(Self.visitV1Ended), type: "visit.ended").json.text, compact(Self.visitV1Ended))
        XCTAssertEqual(try VisitEventV2(body: bytes(Self.visitV2Ended), type: "visit.ended").json.text, compact(Self.visitV2Ended))
        XCTAssertEqual(try VisitEventV2(body: bytes(Self.visitV2Note), type: "visit.note.signed_and_sent").json.text, compact(Self.visitV2Note))
        XCTAssertEqual(try VisitEventV2(body: bytes(Self.visitV2Invoice), type: "visit.invoice.processed").json.text, compact(Self.visitV2Invoice))
    }

    func testOnboardingExamplesRoundTripByteForByte() throws {
        XCTAssertEqual(try OnboardingStatusChanged(body: bytes(Self.onboardingStatus)).json.text, compact(Self.onboardingStatus))
        XCTAssertEqual(try WatchlistUpdated(body: bytes(Self.watchlist)).json.text, compact(Self.watchlist))
    }

    func testVerificationExampleRoundTrips() throws {
        let event = try VerificationEvent(body: bytes(Self.verification), type: "verification.updated")
        XCTAssertEqual(String(decoding: event.body, as: UTF8.self), compact(Self.verification))
    }

    // MARK: - Building from Swift values

    func testCheckinBuilderWritesEveryFieldWithExplicitNulls() throws {
        let id = UUID(uuidString: "0F3A12B8-0F3F-4D5C-8DF0-8C2A5B1F1C44")!
        let confirmed = EventTimestamp.parseMicrosecondUTC("2026-01-27T14:40:10.000000Z")!
        let occurred = EventTimestamp.parseMicrosecondUTC("2026-01-27T14:40:10.123456Z")!
        let outcome = try CheckinOutcome(eventID: id, authType: .otp, hmoID: 1, providerID: 10, enrolleeID: 1346,
                                         result: .succeeded(checkinID: 98765, confirmedAt: confirmed), occurredAt: occurred)
        XCTAssertEqual(outcome.json.text, compact(Self.checkinSucceeded))
        let event = outcome.event(tenantID: "hmo-1")
        XCTAssertEqual(event.type, "checkin.outcome")
        XCTAssertEqual(event.id, id)
        XCTAssertEqual(event.body, outcome.json.serialized)
    }

    func testMicrosecondTimestamps() {
        XCTAssertEqual(EventTimestamp.microsecondUTC(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000000Z")
        XCTAssertEqual(EventTimestamp.microsecondUTC(Date(timeIntervalSince1970: 1_769_524_810.123456)), "2026-01-27T14:40:10.123456Z")
        XCTAssertNil(EventTimestamp.parseMicrosecondUTC("2026-01-27T14:40:10.123Z"))
        XCTAssertNil(EventTimestamp.parseMicrosecondUTC("2026-01-27T14:40:10.123456+00:00"))
        XCTAssertNil(EventTimestamp.parseMicrosecondUTC("2026-13-27T14:40:10.123456Z"))
    }

    func testVisitV2BuilderAddsTheInvoiceOnlyOnInvoiceProcessed() throws {
        let visit = VisitDetails(id: "28540", memberID: "60610", providerID: nil, start: 1546950546, end: 1546951446,
                                 actualStart: 1546950546, actualEnd: 1546950555)
        let invoice = VisitEventV2.Invoice(id: "132", status: .pending, amountDue: 2500, amountPaid: 1500, currency: "USD")
        let event = try VisitEventV2(id: UUID(uuidString: "5c34979c-30dc-496c-8cd3-6eb9925862c1")!, kind: .invoiceProcessed,
                                     created: 1546950556, clinicCode: "xxx", visit: visit, status: "completed",
                                     statusUpdatedBy: "60610", invoice: invoice)
        XCTAssertEqual(event.json.text, compact(Self.visitV2Invoice))
        XCTAssertEqual(event.event(tenantID: "clinic-a").type, "visit.invoice.processed")
    }

    func testOnboardingBuilderLeavesOutAbsentOptionalFields() throws {
        XCTAssertEqual(try OnboardingStatusChanged(interviewID: "i1", status: .faceValidationFinished).json.text,
                       #"{"interviewId":"i1","onboardingStatus":"FACE_VALIDATION_FINISHED"}"#)
        XCTAssertEqual(try OnboardingStatusChanged(interviewID: "i1", status: .expired, externalID: "e", externalCustomerID: "c").json.text,
                       #"{"interviewId":"i1","externalId":"e","externalCustomerId":"c","onboardingStatus":"EXPIRED"}"#)
        XCTAssertEqual(OnboardingStatusChanged.Status.allCases.count, 11, "UNKNOWN and the ten notified statuses of both documents")
    }

    func testVerificationBuilderEmbedsTheObjectAsGiven() throws {
        let id = "01234567-89ab-cdef-0123-456789abcdef"
        let event = try VerificationEvent(key: .documented("verification.frontIdCardResult.created"),
                                          dataJSON: bytes(#"{"id":"\#(id)","result":{"score":0.93,"url":"https://s3.example/x?sig=a/b"}}"#))
        XCTAssertEqual(String(decoding: event.body, as: UTF8.self),
                       #"{"key":"verification.frontIdCardResult.created","data":{"id":"\#(id)","result":{"score":0.93,"url":"https://s3.example/x?sig=a/b"}}}"#)
        XCTAssertEqual(event.event(tenantID: "t").type, "verification.frontIdCardResult.created")
        XCTAssertEqual(VerificationEvent.documentedKeys.count, 36)
        XCTAssertEqual(VerificationEvent.documentedKeys.first, "verification.created")
        XCTAssertEqual(VerificationEvent.documentedKeys.last, "verification.bankruptcyResult.created")
    }

    // MARK: - Rejections

    /// Asserts the body is rejected for `type` with an error naming `field`.
    func assertRejected(_ body: String, type: String, field: String, allowCustomKey: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try EventFamily.validate(body: bytes(body), type: type, allowCustomKey: allowCustomKey), file: file, line: line) { error in
            guard case .invalidEvent(_, let actualField, let message)? = error as? DispatcherError else {
                return XCTFail("unexpected \(error)", file: file, line: line)
            }
            XCTAssertEqual(actualField, field, message, file: file, line: line)
        }
    }

    func replacing(_ example: String, _ old: String, _ new: String) -> String {
        precondition(example.contains(old), "\(old) not in example")
        return example.replacingOccurrences(of: old, with: new)
    }

    func testCheckinRejections() {
        let ok = Self.checkinSucceeded, failed = Self.checkinFailed, type = "checkin.outcome"
        assertRejected(replacing(ok, #""status": "succeeded""#, #""status": "done""#), type: type, field: "data.status")
        assertRejected(replacing(ok, #""auth_type": "OTP""#, #""auth_type": "SMS""#), type: type, field: "data.auth_type")
        assertRejected(replacing(ok, #""hmo_id": 1"#, #""hmo_id": "1""#), type: type, field: "data.hmo_id")
        assertRejected(replacing(ok, #""hmo_id": 1"#, #""hmo_id": true"#), type: type, field: "data.hmo_id")
        assertRejected(replacing(ok, #""enrollee_id": 1346"#, #""enrollee_id": 1346.5"#), type: type, field: "data.enrollee_id")
        assertRejected(replacing(ok, #""reason_code": null"#, #""reason_code": "X""#), type: type, field: "data.reason_code")
        assertRejected(replacing(ok, #""checkin_id": 98765"#, #""checkin_id": null"#), type: type, field: "data.checkin_id")
        assertRejected(replacing(failed, #""checkin_id": null"#, #""checkin_id": 5"#), type: type, field: "data.checkin_id")
        assertRejected(replacing(failed, #""http_status": 400"#, #""http_status": null"#), type: type, field: "data.http_status")
        assertRejected(replacing(ok, #""message": null, "#, ""), type: type, field: "data.message")
        assertRejected(replacing(ok, "14:40:10.123456Z", "14:40:10Z"), type: type, field: "data.occurred_at")
        assertRejected(replacing(ok, "0f3a12b8-0f3f", "0F3A12B8-0F3F"), type: type, field: "data.event_id")
        assertRejected(replacing(ok, #""name": "checkin.outcome""#, #""name": "checkin""#), type: type, field: "name")
        assertRejected(replacing(ok, #""hmo_id": 1,"#, #""hmo_id": 1, "extra": 1,"#), type: type, field: "data.extra")
        XCTAssertThrowsError(try CheckinOutcome(authType: .app, hmoID: 1, providerID: 1, enrolleeID: 1,
                                                result: .failed(reasonCode: "X", message: "m", httpStatus: 42), occurredAt: Date()))
    }

    func testVisitRejections() {
        assertRejected(replacing(Self.visitV1Ended, #""status": "40""#, #""status": "ended""#), type: "visit.ended", field: "data.status")
        assertRejected(replacing(Self.visitV1Ended, #""start": "1546950546""#, #""start": 1546950546"#), type: "visit.ended", field: "data.start")
        assertRejected(replacing(Self.visitV2Ended, #""start": 1546950546"#, #""start": "1546950546""#), type: "visit.ended", field: "data.start")
        assertRejected(replacing(Self.visitV2Ended, #""version": "2.0""#, #""version": "3.0""#), type: "visit.ended", field: "version")
        assertRejected(Self.visitV2Ended, type: "visit.updated", field: "type")
        assertRejected(replacing(Self.visitV2Note, #""status": "signed""#, #""status": "sent""#), type: "visit.note.signed_and_sent", field: "data.note.status")
        assertRejected(replacing(Self.visitV2Note, "visit.note.signed_and_sent", "visit.ended"), type: "visit.ended", field: "data.note")
        assertRejected(replacing(Self.visitV2Ended, "visit.ended", "visit.invoice.processed"), type: "visit.invoice.processed", field: "data.invoice")
        assertRejected(replacing(Self.visitV2Invoice, #""status": "pending""#, #""status": "due""#), type: "visit.invoice.processed", field: "data.invoice.status")
        assertRejected(replacing(Self.visitV2Invoice, #""currency": "USD""#, #""currency": "dollars""#), type: "visit.invoice.processed", field: "data.invoice.currency")
        assertRejected(replacing(Self.visitV2Invoice, #""amount_due": 2500"#, #""amount_due": 25.00"#), type: "visit.invoice.processed", field: "data.invoice.amount_due")
        assertRejected(replacing(Self.visitV2Ended, #""clinic_code": "xxx""#, #""clinic_code": """#), type: "visit.ended", field: "clinic_code")
    }

    func testOnboardingRejections() {
        let type = OnboardingStatusChanged.type
        assertRejected(replacing(Self.onboardingStatus, "ONBOARDING_FINISHED", "UNKNOWN"), type: type, field: "onboardingStatus")
        assertRejected(replacing(Self.onboardingStatus, "ONBOARDING_FINISHED", "DONE"), type: type, field: "onboardingStatus")
        assertRejected(replacing(Self.onboardingStatus, #""MyCustomerID#0001""#, "null"), type: type, field: "externalCustomerId")
        assertRejected(replacing(Self.onboardingStatus, #""664283755e0f8e1b87fcc2ce""#, #""""#), type: type, field: "interviewId")
        assertRejected(#"{"interviewId": "i", "ref": "r"}"#, type: WatchlistUpdated.type, field: "search_id")
        XCTAssertThrowsError(try OnboardingStatusChanged(interviewID: "i", status: .unknown))
    }

    func testVerificationRejections() throws {
        let custom = #"{"key": "verification.selfie.created", "data": {"id": "01234567-89ab-cdef-0123-456789abcdef"}}"#
        assertRejected(custom, type: "verification.selfie.created", field: "key")
        XCTAssertNoThrow(try EventFamily.validate(body: bytes(custom), type: "verification.selfie.created", allowCustomKey: true))
        assertRejected(replacing(Self.verification, "01234567-89ab-cdef-0123-456789abcdef", "v-1"), type: "verification.updated", field: "data.id")
        assertRejected(Self.verification, type: "verification.created", field: "key")
        assertRejected(#"{"key": "verification.updated", "data": []}"#, type: "verification.updated", field: "data")
        XCTAssertThrowsError(try VerificationEvent.Key.documented("verification.selfie.created"))
        XCTAssertNoThrow(try VerificationEvent.Key.custom("verification.selfie.created"))
    }

    func testUnknownTypesPassAsRawJSON() {
        XCTAssertNoThrow(try EventFamily.validate(body: bytes(#"{"anything": [1, 2]}"#), type: "order.shipped"))
    }

    // MARK: - Receiver profiles

    func testEachFamilyRecommendsItsReceiverProfile() throws {
        XCTAssertEqual(EventFamily.onboarding.recommendedProfile.retry, .oneRetry(delaySeconds: 5))
        XCTAssertEqual(EventFamily.onboarding.recommendedProfile.success, .json200Or204)
        XCTAssertTrue(EventFamily.verification.recommendedProfile.requiresHTTPS)
        XCTAssertEqual(EventFamily.checkin.recommendedProfile.retry, .default)
        XCTAssertEqual(EventFamily.visit.recommendedProfile.success, .any2xx)

        let configuration = try DispatcherConfiguration.parse(Data("""
            {"require_https": false, "tenants": [{"id": "t", "endpoints": [
              {"id": "onboarding", "url": "http://x.example/o", "events": ["onboarding.*", "watchlist.updated"]},
              {"id": "mixed", "url": "http://x.example/m", "events": ["onboarding.*", "visit.*"]},
              {"id": "explicit", "url": "http://x.example/e", "events": ["onboarding.*"], "success": "2xx"}]}]}
            """.utf8))
        let byID = Dictionary(uniqueKeysWithValues: configuration.endpoints.map { ($0.id, $0) })
        XCTAssertEqual(byID["onboarding"]?.retry, .oneRetry(delaySeconds: 5))
        XCTAssertEqual(byID["onboarding"]?.success, .json200Or204)
        XCTAssertEqual(byID["mixed"]?.retry, .default)
        XCTAssertEqual(byID["mixed"]?.success, .any2xx)
        XCTAssertEqual(byID["explicit"]?.success, .any2xx, "an explicit setting wins")
        XCTAssertEqual(byID["explicit"]?.retry, .oneRetry(delaySeconds: 5))

        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data("""
            {"require_https": false, "tenants": [{"id": "t", "endpoints": [{"id": "kyc", "url": "http://x.example/k", "events": ["verification.*"]}]}]}
            """.utf8))) { error in
            XCTAssertTrue("\(error)".contains("tenants[0].endpoints[0].url"), "\(error)")
        }
    }

    func testBuiltEventsGoThroughTheOutbox() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try OutboxStore.sqlite(path: directory.file("o.sqlite"))
        try store.upsert(tenants: [Tenant(id: "t", name: "t")], endpoints: [
            Endpoint(id: "onboarding", tenantID: "t", url: "https://x.example/o", eventFilters: ["onboarding.*"]),
        ])
        let event = try OnboardingStatusChanged(interviewID: "i1", status: .onboardingFinished).event(tenantID: "t")
        let result = try store.enqueue(event)
        XCTAssertEqual(result.deliveryCount, 1)
        XCTAssertEqual(try store.eventRecord(eventID: result.eventID)?.event.body, bytes(#"{"interviewId":"i1","onboardingStatus":"ONBOARDING_FINISHED"}"#))
    }
}
