import DispatcherModel
import Foundation

/// The onboarding status webhook (the onboarding seeds): `{"interviewId", "onboardingStatus"}`,
/// plus `externalId` and `externalCustomerId` only when the producer has them.
///
/// Its receivers' documented rules: one identical retry, success is 200 JSON or 204
/// (`EventFamily.onboarding.recommendedProfile`), and statuses arrive in order, so consider an
/// ordered endpoint.
public struct OnboardingStatusChanged: Sendable, Equatable {
    public static let type = EventFamily.onboardingStatusChangedType

    public enum Status: String, Sendable, CaseIterable {
        /// Never notified: a session nobody has started. Building an event with it is an error.
        case unknown = "UNKNOWN"
        case idValidationFinished = "ID_VALIDATION_FINISHED"
        case idValidationFinishedSecondID = "ID_VALIDATION_FINISHED_SECOND_ID"
        case governmentValidationFinished = "GOVERNMENT_VALIDATION_FINISHED"
        case faceValidationFinished = "FACE_VALIDATION_FINISHED"
        case postProcessingFinished = "POST_PROCESSING_FINISHED"
        case postProcessingFinishedSecondID = "POST_PROCESSING_FINISHED_SECOND_ID"
        case onboardingFinished = "ONBOARDING_FINISHED"
        case manualReviewApproved = "MANUAL_REVIEW_APPROVED"
        case manualReviewRejected = "MANUAL_REVIEW_REJECTED"
        case expired = "EXPIRED"
    }

    public var interviewID: String
    public var status: Status
    /// Only if it was sent when the session started.
    public var externalID: String?
    /// Only if an externalCustomerId was given to omni/start.
    public var externalCustomerID: String?

    public init(interviewID: String, status: Status, externalID: String? = nil, externalCustomerID: String? = nil) throws {
        self.interviewID = interviewID
        self.status = status
        self.externalID = externalID
        self.externalCustomerID = externalCustomerID
        func fail(_ field: String, _ message: String) -> DispatcherError { .invalidEvent(type: Self.type, field: field, message: message) }
        guard !interviewID.isEmpty else { throw fail("interviewId", "must not be empty") }
        guard status != .unknown else { throw fail("onboardingStatus", "UNKNOWN is never notified (the session has not started)") }
        if externalID == "" { throw fail("externalId", "must be left out, not empty, when there is none") }
        if externalCustomerID == "" { throw fail("externalCustomerId", "must be left out, not empty, when there is none") }
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("interviewId", .string(interviewID))]
        if let externalID { members.append(("externalId", .string(externalID))) }
        if let externalCustomerID { members.append(("externalCustomerId", .string(externalCustomerID))) }
        members.append(("onboardingStatus", .string(status.rawValue)))
        return .object(members)
    }

    /// The outbox event; `id` becomes `webhook-id` (the body has no id of its own).
    public func event(tenantID: String, id: UUID? = nil) -> NewEvent {
        NewEvent(tenantID: tenantID, type: Self.type, body: json.serialized, id: id)
    }

    public init(body: [UInt8]) throws {
        let root = try JSONReader(event: Self.type, body: body)
        try root.rejectKeys(otherThan: ["interviewId", "externalId", "externalCustomerId", "onboardingStatus"])
        let statusText = try root.presentString("onboardingStatus")
        guard let status = Status(rawValue: statusText) else {
            throw root.fail("onboardingStatus", "must be one of \(Status.allCases.dropFirst().map(\.rawValue).joined(separator: ", ")), got \"\(statusText)\"")
        }
        try self.init(interviewID: try root.presentString("interviewId"), status: status,
                      externalID: try root.absentOrString("externalId"), externalCustomerID: try root.absentOrString("externalCustomerId"))
    }
}

/// "Global watchlist has updates" (the onboarding seed): `{"interviewId", "ref", "search_id"}`.
public struct WatchlistUpdated: Sendable, Equatable {
    public static let type = EventFamily.watchlistUpdatedType

    public var interviewID: String
    public var ref: String
    public var searchID: String

    public init(interviewID: String, ref: String, searchID: String) throws {
        self.interviewID = interviewID
        self.ref = ref
        self.searchID = searchID
        for (field, value) in [("interviewId", interviewID), ("ref", ref), ("search_id", searchID)] where value.isEmpty {
            throw DispatcherError.invalidEvent(type: Self.type, field: field, message: "must not be empty")
        }
    }

    public var json: JSONValue {
        .object([("interviewId", .string(interviewID)), ("ref", .string(ref)), ("search_id", .string(searchID))])
    }

    public func event(tenantID: String, id: UUID? = nil) -> NewEvent {
        NewEvent(tenantID: tenantID, type: Self.type, body: json.serialized, id: id)
    }

    public init(body: [UInt8]) throws {
        let root = try JSONReader(event: Self.type, body: body)
        try root.rejectKeys(otherThan: ["interviewId", "ref", "search_id"])
        try self.init(interviewID: try root.presentString("interviewId"), ref: try root.presentString("ref"), searchID: try root.presentString("search_id"))
    }
}
