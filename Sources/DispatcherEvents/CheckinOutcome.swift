import DispatcherModel
import Foundation

/// `checkin.outcome` (the check-in seed): sent when a check-in attempt completes, by OTP, facial
/// verification, the enrollee app (geo), fingerprint or override.
///
/// ```swift
/// let event = try CheckinOutcome(
///     authType: .otp, hmoID: 1, providerID: 10, enrolleeID: 1346,
///     result: .succeeded(checkinID: 98765, confirmedAt: confirmed), occurredAt: Date()
/// ).event(tenantID: "hmo-1")
/// try store.enqueue(event)
/// ```
///
/// Wire shape: `{"event":"checkin.outcome","name":"checkin.outcome","data":{...}}` with every data
/// field present; the fields of the other outcome are explicit nulls.
public struct CheckinOutcome: Sendable, Equatable {
    public static let type = EventFamily.checkinOutcomeType

    public enum AuthType: String, Sendable, CaseIterable {
        case otp = "OTP"
        case facialVerification = "FV"
        case app = "APP"
        case fingerprint = "finger_print"
        case override = "Override"
    }

    public enum Result: Sendable, Equatable {
        case succeeded(checkinID: Int, confirmedAt: Date)
        /// `httpStatus` is the HTTP status associated with the failure (100-599).
        case failed(reasonCode: String, message: String, httpStatus: Int)
    }

    /// Unique id of the webhook event; also the outbox event id (`webhook-id`).
    public var eventID: UUID
    public var authType: AuthType
    public var hmoID: Int
    public var providerID: Int
    public var enrolleeID: Int
    public var result: Result
    public var occurredAt: Date

    public init(eventID: UUID = UUID(), authType: AuthType, hmoID: Int, providerID: Int, enrolleeID: Int,
                result: Result, occurredAt: Date) throws {
        self.eventID = eventID
        self.authType = authType
        self.hmoID = hmoID
        self.providerID = providerID
        self.enrolleeID = enrolleeID
        self.result = result
        self.occurredAt = occurredAt
        try validate()
    }

    func validate() throws {
        if case .failed(let reasonCode, let message, let httpStatus) = result {
            func fail(_ field: String, _ message: String) -> DispatcherError {
                .invalidEvent(type: Self.type, field: "data.\(field)", message: message)
            }
            guard !reasonCode.isEmpty else { throw fail("reason_code", "must not be empty when status is failed") }
            guard !message.isEmpty else { throw fail("message", "must not be empty when status is failed") }
            guard (100...599).contains(httpStatus) else { throw fail("http_status", "must be an HTTP status code (100-599), got \(httpStatus)") }
        }
    }

    public var json: JSONValue {
        var checkinID: Int?, confirmedAt: String?, reasonCode: String?, message: String?, httpStatus: Int?
        let status: String
        switch result {
        case .succeeded(let id, let confirmed):
            status = "succeeded"; checkinID = id; confirmedAt = EventTimestamp.microsecondUTC(confirmed)
        case .failed(let code, let text, let http):
            status = "failed"; reasonCode = code; message = text; httpStatus = http
        }
        return .object([
            ("event", .string(Self.type)),
            ("name", .string(Self.type)),
            ("data", .object([
                ("event_id", .string(eventID.lowercasedString)),
                ("status", .string(status)),
                ("auth_type", .string(authType.rawValue)),
                ("hmo_id", .integer(hmoID)),
                ("provider_id", .integer(providerID)),
                ("enrollee_id", .integer(enrolleeID)),
                ("checkin_id", .integer(checkinID)),
                ("confirmed_at", .string(confirmedAt)),
                ("reason_code", .string(reasonCode)),
                ("message", .string(message)),
                ("http_status", .integer(httpStatus)),
                ("occurred_at", .string(EventTimestamp.microsecondUTC(occurredAt))),
            ])),
        ])
    }

    /// The outbox event: type `checkin.outcome`, id = `eventID`.
    public func event(tenantID: String) -> NewEvent {
        NewEvent(tenantID: tenantID, type: Self.type, body: json.serialized, id: eventID)
    }

    /// Reads a body in the wire shape, enforcing every rule of the seed.
    public init(body: [UInt8]) throws {
        let root = try JSONReader(event: Self.type, body: body)
        try root.rejectKeys(otherThan: ["event", "name", "data"])
        for key in ["event", "name"] where try root.presentString(key) != Self.type {
            throw root.fail(key, "must be \"\(Self.type)\"")
        }
        let data = try root.presentObject("data")
        try data.rejectKeys(otherThan: ["event_id", "status", "auth_type", "hmo_id", "provider_id", "enrollee_id", "checkin_id",
                                        "confirmed_at", "reason_code", "message", "http_status", "occurred_at"])
        let idText = try data.presentString("event_id")
        guard let eventID = UUID(uuidString: idText), idText == idText.lowercased() else {
            throw data.fail("event_id", "must be a lowercase UUID, got \"\(idText)\"")
        }
        let authText = try data.presentString("auth_type")
        guard let authType = AuthType(rawValue: authText) else {
            throw data.fail("auth_type", "must be one of \(AuthType.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(authText)\"")
        }
        func timestamp(_ key: String, _ text: String) throws -> Date {
            guard let date = EventTimestamp.parseMicrosecondUTC(text) else {
                throw data.fail(key, "must be a UTC time with microseconds like 2026-01-27T14:40:10.123456Z, got \"\(text)\"")
            }
            return date
        }
        let occurredAt = try timestamp("occurred_at", try data.presentString("occurred_at"))
        let checkinID = try data.presentNullableInteger("checkin_id")
        let confirmedAt = try data.presentNullableString("confirmed_at")
        let reasonCode = try data.presentNullableString("reason_code")
        let message = try data.presentNullableString("message")
        let httpStatus = try data.presentNullableInteger("http_status")

        let result: Result
        switch try data.presentString("status") {
        case "succeeded":
            guard let checkinID else { throw data.fail("checkin_id", "must be an integer when status is succeeded") }
            guard let confirmedAt else { throw data.fail("confirmed_at", "must be a time when status is succeeded") }
            for (key, value) in [("reason_code", reasonCode as Any?), ("message", message), ("http_status", httpStatus)] where value != nil {
                throw data.fail(key, "must be null when status is succeeded")
            }
            result = .succeeded(checkinID: checkinID, confirmedAt: try timestamp("confirmed_at", confirmedAt))
        case "failed":
            guard let reasonCode else { throw data.fail("reason_code", "must be a string when status is failed") }
            guard let message else { throw data.fail("message", "must be a string when status is failed") }
            guard let httpStatus else { throw data.fail("http_status", "must be an integer when status is failed") }
            if checkinID != nil { throw data.fail("checkin_id", "must be null when status is failed") }
            if confirmedAt != nil { throw data.fail("confirmed_at", "must be null when status is failed") }
            result = .failed(reasonCode: reasonCode, message: message, httpStatus: httpStatus)
        case let other:
            throw data.fail("status", "must be succeeded or failed, got \"\(other)\"")
        }
        try self.init(eventID: eventID, authType: authType, hmoID: try data.presentInteger("hmo_id"), providerID: try data.presentInteger("provider_id"),
                      enrolleeID: try data.presentInteger("enrollee_id"), result: result, occurredAt: occurredAt)
    }
}
