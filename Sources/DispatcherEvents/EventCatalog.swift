import DispatcherModel
import Foundation

/// One event type a receiver may get: what it means and an example body.
public struct EventCatalogEntry: Sendable, Equatable {
    public let type: String
    /// `checkin`, `visit`, `onboarding`, `verification` (the seed families), or `operations` and
    /// `dispatcher` (the dispatcher's own).
    public let family: String
    public let summary: String
    /// The documented example body (compact JSON), when the family's documentation gives one.
    public let example: String?
}

/// Every event type the dispatcher knows: the seed families' documented types with their
/// documented examples (`../shared/seeds/`), and the dispatcher's own. The dashboard's catalog
/// page and `GET /api/catalog` show it; a test holds each example to its family's validator.
public enum EventCatalog {
    public static let entries: [EventCatalogEntry] = [
        EventCatalogEntry(type: EventFamily.checkinOutcomeType, family: "checkin",
                          summary: "A check-in was confirmed or failed (status succeeded or failed, with the reason when it failed).",
                          example: checkinExample),
        visit(.created, "A visit was scheduled."),
        visit(.updated, "A visit changed: time, provider or status."),
        visit(.ended, "A visit ended (completed, cancelled or no-show)."),
        visit(.noteSignedAndSent, "The provider signed the visit note and sent it."),
        visit(.invoiceProcessed, "The visit's invoice was processed (amounts due and paid)."),
        EventCatalogEntry(type: EventFamily.onboardingStatusChangedType, family: "onboarding",
                          summary: "An identity onboarding interview changed status (onboardingStatus).", example: onboardingExample),
        EventCatalogEntry(type: EventFamily.watchlistUpdatedType, family: "onboarding",
                          summary: "A watchlist search of an interview has new results.", example: watchlistExample),
        verification("verification.created", "All: the verification is created."),
        verification("verification.updated", "All: Accept the welcome page + consent page."),
        verification("verification.verified", "All: All Process is verified."),
        verification("verification.completed", "All: All Process is completed."),
        verification("verification.deleted", "All: Delete verification."),
        verification("verification.frontIdCardResult.created", "KYC, front ID card: The client does frontIdCard ocr."),
        verification("verification.frontIdCardResult.confirmed", "KYC, front ID card: The client confirms edits or confirms ocr result if edits are off."),
        verification("verification.frontIdCardResult.updated", "KYC, front ID card: The client update a front id card result."),
        verification("verification.backIdCardResult.created", "KYC, back ID card: The client does back id card ocr."),
        verification("verification.backIdCardResult.confirmed", "KYC, back ID card: Confirm edits or confirm ocr result."),
        verification("verification.backIdCardResult.updated", "KYC, back ID card: The client update a back id card result."),
        verification("verification.dopaResult.created", "KYC, DOPA: Appman check dopa."),
        verification("verification.dopaResult.confirmed", "KYC, DOPA: The client confirms dopa results."),
        verification("verification.dopaResult.updated", "KYC, DOPA: The system updates a dopa result."),
        verification("verification.passportResult.created", "KYC, passport: The client does Passport ocr/ncf."),
        verification("verification.passportResult.confirmed", "KYC, passport: The client confirms FR results."),
        verification("verification.passportResult.updated", "KYC, passport: The client update a passport result."),
        verification("verification.idFaceRecognitionResult.created", "KYC, ID face recognition: Client does idFaceRecognition."),
        verification("verification.idFaceRecognitionResult.confirmed", "KYC, ID face recognition: The client confirms FR results."),
        verification("verification.idFaceRecognitionResult.updated", "KYC, ID face recognition: The client updated FR results."),
        verification("verification.dipChipResult.created", "Dip chip: The client created an appointment."),
        verification("verification.dipChipResult.confirmed", "Dip chip: The client confirms dopa results."),
        verification("verification.dipChipResult.updated", "Dip chip: The client updated a dip chip result."),
        verification("verification.appointment.created", "Dip chip: The client creates an appointment."),
        verification("verification.appointment.updated", "Dip chip: The client updated an appointment."),
        verification("verification.appointment.validated", "Dip chip: The system validate appointment result."),
        verification("verification.criminalCheckResult.created", "Criminal check: The client created a Criminal Check."),
        verification("verification.criminalCheckResult.confirmed", "Criminal check: The client confirms Criminal Check results."),
        verification("verification.criminalCheckResult.updated", "Criminal check: The client update a criminal check result."),
        verification("verification.criminalCheckResult.resultDocumentUrl.read", "Criminal check: The client downloads the result criminal check document PDF file."),
        verification("verification.employmentVerificationResult.created", "Employment verification: Client created an Employment Verification."),
        verification("verification.employmentVerificationResult.confirmed", "Employment verification: The client confirms the Employment Verification results."),
        verification("verification.employmentVerificationResult.updated", "Employment verification: The client update an employment verification result."),
        verification("verification.employmentVerificationResult.resultDocumentUrl.read", "Employment verification: The client downloads the result employment verification document PDF file."),
        verification("verification.sanction.created", "Sanction list: The system creates Sanction List results."),
        verification("verification.bankruptcyResult.created", "Bankruptcy: The system creates bankruptcy results."),
        operations("operations.endpoint.disabled", "The dispatcher disabled an endpoint that kept failing."),
        operations("operations.endpoint.circuit_opened", "An endpoint's circuit opened: its deliveries wait for a cool-down."),
        operations("operations.endpoint.circuit_closed", "An endpoint answered again and its circuit closed."),
        operations("operations.endpoint.recovered", "A disabled endpoint was enabled again."),
        operations("operations.delivery.exhausted", "A delivery failed for good: its retry policy gave up."),
        EventCatalogEntry(type: EventType.ping, family: "dispatcher",
                          summary: "A test sent from the dashboard or by dispatcher endpoints test; not retried.",
                          example: #"{"type":"dispatcher.ping","endpoint_id":"clinic-a-hook","sent_at":"2026-12-01T10:00:00Z"}"#),
    ]

    /// The entry of `type`, or nil for a type no one documented.
    public static func entry(type: String) -> EventCatalogEntry? { entries.first { $0.type == type } }

    // The seeds' own examples, made compact (the visit seed's placeholders filled in).
    static let checkinExample = #"{"event":"checkin.outcome","name":"checkin.outcome","data":{"event_id":"0f3a12b8-0f3f-4d5c-8df0-8c2a5b1f1c44","status":"succeeded","auth_type":"OTP","hmo_id":1,"provider_id":10,"enrollee_id":1346,"checkin_id":98765,"confirmed_at":"2026-01-27T14:40:10.000000Z","reason_code":null,"message":null,"http_status":null,"occurred_at":"2026-01-27T14:40:10.123456Z"}}"#
    static let visitData = #""data":{"id":"28540","member_id":"60610","provider_id":null,"start":1546950546,"end":1546951446,"actual_start":1546950546,"actual_end":1546950555,"status":"completed","status_updated_by":"60610""#
    static let onboardingExample = #"{"interviewId":"664283755e0f8e1b87fcc2ce","externalCustomerId":"MyCustomerID#0001","onboardingStatus":"ONBOARDING_FINISHED"}"#
    static let watchlistExample = #"{"interviewId":"664283755e0f8e1b87fcc2ce","ref":"REF-1","search_id":"search-9"}"#

    private static func visit(_ kind: VisitEventKind, _ summary: String) -> EventCatalogEntry {
        let extra: String
        switch kind {
        case .noteSignedAndSent: extra = #","note":{"id":77,"status":"signed"}"#
        case .invoiceProcessed: extra = #","invoice":{"id":"132","status":"pending","amount_due":2500,"amount_paid":1500,"currency":"USD"}"#
        default: extra = ""
        }
        let example = #"{"version":"2.0","id":"5c34979c-30dc-496c-8cd3-6eb9925862c1","type":""# + kind.rawValue
            + #"","created":1546950556,"clinic_code":"xxx","# + visitData + extra + "}}"
        return EventCatalogEntry(type: kind.rawValue, family: "visit", summary: summary, example: example)
    }

    private static func verification(_ type: String, _ summary: String) -> EventCatalogEntry {
        EventCatalogEntry(type: type, family: "verification", summary: summary,
                          example: #"{"key":""# + type + #"","data":{"id":"01234567-89ab-cdef-0123-456789abcdef"}}"#)
    }

    private static func operations(_ type: String, _ summary: String) -> EventCatalogEntry {
        EventCatalogEntry(type: type, family: "operations", summary: summary + " Sent to the operations tenant's endpoints.", example: nil)
    }
}
