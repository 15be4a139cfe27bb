import DispatcherModel
import Foundation

/// `verification.*` (the verification seed): `{"key": "<event key>", "data": {"id": "<uuid>", ...}}`,
/// where `data` is the verification object as the producer has it. Receivers require https.
///
/// ```swift
/// let event = try VerificationEvent(key: .documented("verification.created"),
///                                   data: .object([("id", .string(verificationID)), ("status", .string("pending"))]))
/// ```
public struct VerificationEvent: Sendable, Equatable {
    /// An event key: one of the documented keys, or a custom key the producer opted into.
    public struct Key: Sendable, Equatable {
        public let rawValue: String

        /// A key from the seed's table; anything else throws.
        public static func documented(_ key: String) throws -> Key {
            guard VerificationEvent.documentedKeys.contains(key) else {
                throw DispatcherError.invalidEvent(type: key, field: "key", message: "is not a documented verification event key; use Key.custom(_:) to send it anyway")
            }
            return Key(rawValue: key)
        }

        /// An undocumented key, on purpose. It must still look like `verification.<name>`.
        public static func custom(_ key: String) throws -> Key {
            guard key.hasPrefix("verification."), EventType.isValid(key) else {
                throw DispatcherError.invalidEvent(type: key, field: "key", message: "must be verification.<name> with letters, digits, '.', '_' or '-'")
            }
            return Key(rawValue: key)
        }
    }

    /// Every key in the seed's KYC events table, in its order.
    public static let documentedKeys: [String] = [
        "verification.created", "verification.updated", "verification.verified", "verification.completed", "verification.deleted",
        "verification.frontIdCardResult.created", "verification.frontIdCardResult.confirmed", "verification.frontIdCardResult.updated",
        "verification.backIdCardResult.created", "verification.backIdCardResult.confirmed", "verification.backIdCardResult.updated",
        "verification.dopaResult.created", "verification.dopaResult.confirmed", "verification.dopaResult.updated",
        "verification.passportResult.created", "verification.passportResult.confirmed", "verification.passportResult.updated",
        "verification.idFaceRecognitionResult.created", "verification.idFaceRecognitionResult.confirmed",
        "verification.idFaceRecognitionResult.updated",
        "verification.dipChipResult.created", "verification.dipChipResult.confirmed", "verification.dipChipResult.updated",
        "verification.appointment.created", "verification.appointment.updated", "verification.appointment.validated",
        "verification.criminalCheckResult.created", "verification.criminalCheckResult.confirmed",
        "verification.criminalCheckResult.updated", "verification.criminalCheckResult.resultDocumentUrl.read",
        "verification.employmentVerificationResult.created", "verification.employmentVerificationResult.confirmed",
        "verification.employmentVerificationResult.updated", "verification.employmentVerificationResult.resultDocumentUrl.read",
        "verification.sanction.created", "verification.bankruptcyResult.created",
    ]

    public var key: Key
    /// The verification object: JSON object text with a UUID `id`, embedded byte for byte.
    public let data: [UInt8]

    /// From the verification object as JSON text or bytes (as your API already serialises it).
    public init(key: Key, dataJSON: [UInt8]) throws {
        self.key = key
        self.data = dataJSON
        let reader = try JSONReader(JSONValue(parsing: dataJSON), path: "data", subject: .event(type: key.rawValue))
        let id = try reader.presentString("id")
        guard UUID(uuidString: id) != nil else { throw reader.fail("id", "must be the verification's UUID, got \"\(id)\"") }
    }

    public init(key: Key, data: JSONValue) throws {
        try self.init(key: key, dataJSON: data.serialized)
    }

    /// `{"key":…,"data":…}` with `data` exactly as given.
    public var body: [UInt8] {
        Array("{\"key\":".utf8) + JSONValue.string(key.rawValue).serialized + Array(",\"data\":".utf8) + data + [UInt8(ascii: "}")]
    }

    /// The outbox event; its type is the key, so endpoints filter on `verification.*` or one key.
    public func event(tenantID: String, id: UUID? = nil) -> NewEvent {
        NewEvent(tenantID: tenantID, type: key.rawValue, body: body, id: id)
    }

    /// Reads a body enqueued as `type`; `allowCustomKey` accepts an undocumented key.
    public init(body: [UInt8], type: String, allowCustomKey: Bool = false) throws {
        let root = try JSONReader(event: type, body: body)
        try root.rejectKeys(otherThan: ["key", "data"])
        let keyText = try root.presentString("key")
        guard keyText == type else { throw root.fail("key", "is \"\(keyText)\" but the event is enqueued as \(type)") }
        let key = allowCustomKey && !Self.documentedKeys.contains(keyText) ? try Key.custom(keyText) : try Key.documented(keyText)
        let data = try JSONSerialization.data(withJSONObject: try root.presentValue("data").foundationObject, options: [.fragmentsAllowed])
        try self.init(key: key, dataJSON: Array(data))
    }
}
