import DispatcherModel
import Foundation

/// The visit fields both envelopes carry. Times are Unix seconds.
public struct VisitDetails: Sendable, Equatable {
    public var id: String
    public var memberID: String
    public var providerID: String?
    public var start: Int
    public var end: Int
    /// Nil (null on the wire) until the visit has actually started / ended.
    public var actualStart: Int?
    public var actualEnd: Int?

    public init(id: String, memberID: String, providerID: String?, start: Int, end: Int, actualStart: Int?, actualEnd: Int?) {
        self.id = id
        self.memberID = memberID
        self.providerID = providerID
        self.start = start
        self.end = end
        self.actualStart = actualStart
        self.actualEnd = actualEnd
    }
}

/// The v1 envelope (currently active): `version` "1.0", `account_code`, every number and status
/// code as a string, and `completed_by`.
///
/// ```swift
/// let event = try VisitEventV1(kind: .ended, created: 1546950556, accountCode: "acme",
///     visit: VisitDetails(id: "28540", memberID: "60610", providerID: nil, start: 1546950546,
///                         end: 1546951446, actualStart: 1546950546, actualEnd: 1546950555),
///     statusCode: 40, completedBy: "60610").event(tenantID: "clinic-a")
/// ```
public struct VisitEventV1: Sendable, Equatable {
    public var id: UUID
    public var kind: VisitEventKind
    /// Unix seconds.
    public var created: Int
    public var accountCode: String
    public var visit: VisitDetails
    public var statusCode: Int
    public var completedBy: String?

    public init(id: UUID = UUID(), kind: VisitEventKind, created: Int, accountCode: String, visit: VisitDetails,
                statusCode: Int, completedBy: String?) throws {
        self.id = id
        self.kind = kind
        self.created = created
        self.accountCode = accountCode
        self.visit = visit
        self.statusCode = statusCode
        self.completedBy = completedBy
        try VisitValidation.common(type: kind.rawValue, created: created, code: ("account_code", accountCode), visit: visit)
    }

    public var json: JSONValue {
        VisitValidation.envelope(version: "1.0", id: id, kind: kind, created: created, code: ("account_code", accountCode), data: [
            ("id", .string(visit.id)),
            ("member_id", .string(visit.memberID)),
            ("provider_id", .string(visit.providerID)),
            ("start", .string(String(visit.start))),
            ("end", .string(String(visit.end))),
            ("actual_start", .string(visit.actualStart.map(String.init))),
            ("actual_end", .string(visit.actualEnd.map(String.init))),
            ("status", .string(String(statusCode))),
            ("completed_by", .string(completedBy)),
        ])
    }

    public func event(tenantID: String) -> NewEvent {
        NewEvent(tenantID: tenantID, type: kind.rawValue, body: json.serialized, id: id)
    }

    public init(body: [UInt8], type: String) throws {
        let root = try JSONReader(event: type, body: body)
        try root.rejectKeys(otherThan: ["version", "id", "type", "created", "account_code", "data"])
        let (id, kind, created) = try VisitValidation.envelope(root, version: "1.0", type: type)
        let data = try root.presentObject("data")
        try data.rejectKeys(otherThan: ["id", "member_id", "provider_id", "start", "end", "actual_start", "actual_end", "status", "completed_by"])
        func numeric(_ key: String, _ text: String) throws -> Int {
            guard let value = Int(text) else { throw data.fail(key, "must be a number written as a string (\"1546950546\"), got \"\(text)\"") }
            return value
        }
        func numeric(_ key: String, _ text: String?) throws -> Int? { try text.map { try numeric(key, $0) } }
        let visit = VisitDetails(
            id: try data.presentString("id"), memberID: try data.presentString("member_id"), providerID: try data.presentNullableString("provider_id"),
            start: try numeric("start", try data.presentString("start")), end: try numeric("end", try data.presentString("end")),
            actualStart: try numeric("actual_start", try data.presentNullableString("actual_start")),
            actualEnd: try numeric("actual_end", try data.presentNullableString("actual_end")))
        try self.init(id: id, kind: kind, created: created, accountCode: try root.presentString("account_code"), visit: visit,
                      statusCode: try numeric("status", try data.presentString("status")), completedBy: try data.presentNullableString("completed_by"))
    }
}

/// The v2 envelope (beta): `version` "2.0", `clinic_code`, integer timestamps, string statuses,
/// `status_updated_by`, plus a `note` on visit.note.signed_and_sent and an `invoice` on
/// visit.invoice.processed.
public struct VisitEventV2: Sendable, Equatable {
    public struct Note: Sendable, Equatable {
        public enum Status: String, Sendable, CaseIterable { case new, signed, draft }
        public var id: Int
        public var status: Status
        public init(id: Int, status: Status) { self.id = id; self.status = status }
    }

    public struct Invoice: Sendable, Equatable {
        public enum Status: String, Sendable, CaseIterable {
            case pending, processing, paid, closed, forgiven, cancelled, failed, refunded
        }
        public var id: String
        public var status: Status
        /// Cents.
        public var amountDue: Int
        /// Cents.
        public var amountPaid: Int
        /// ISO 4217, three capital letters (`USD`).
        public var currency: String
        public init(id: String, status: Status, amountDue: Int, amountPaid: Int, currency: String) {
            self.id = id; self.status = status; self.amountDue = amountDue; self.amountPaid = amountPaid; self.currency = currency
        }
    }

    public var id: UUID
    public var kind: VisitEventKind
    public var created: Int
    public var clinicCode: String
    public var visit: VisitDetails
    /// `cancelled`, `completed`, ...
    public var status: String
    public var statusUpdatedBy: String?
    /// Required on visit.note.signed_and_sent, forbidden elsewhere.
    public var note: Note?
    /// Required on visit.invoice.processed, forbidden elsewhere.
    public var invoice: Invoice?

    public init(id: UUID = UUID(), kind: VisitEventKind, created: Int, clinicCode: String, visit: VisitDetails,
                status: String, statusUpdatedBy: String?, note: Note? = nil, invoice: Invoice? = nil) throws {
        self.id = id
        self.kind = kind
        self.created = created
        self.clinicCode = clinicCode
        self.visit = visit
        self.status = status
        self.statusUpdatedBy = statusUpdatedBy
        self.note = note
        self.invoice = invoice
        let type = kind.rawValue
        try VisitValidation.common(type: type, created: created, code: ("clinic_code", clinicCode), visit: visit)
        func fail(_ field: String, _ message: String) -> DispatcherError { .invalidEvent(type: type, field: field, message: message) }
        guard !status.isEmpty else { throw fail("data.status", "must not be empty") }
        switch (kind == .noteSignedAndSent, note) {
        case (true, nil): throw fail("data.note", "is required on visit.note.signed_and_sent")
        case (false, .some): throw fail("data.note", "belongs only on visit.note.signed_and_sent")
        default: break
        }
        switch (kind == .invoiceProcessed, invoice) {
        case (true, nil): throw fail("data.invoice", "is required on visit.invoice.processed")
        case (false, .some): throw fail("data.invoice", "belongs only on visit.invoice.processed")
        default: break
        }
        if let invoice {
            guard !invoice.id.isEmpty else { throw fail("data.invoice.id", "must not be empty") }
            guard invoice.amountDue >= 0 else { throw fail("data.invoice.amount_due", "must be a non-negative number of cents") }
            guard invoice.amountPaid >= 0 else { throw fail("data.invoice.amount_paid", "must be a non-negative number of cents") }
            guard invoice.currency.count == 3, invoice.currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                throw fail("data.invoice.currency", "must be an ISO 4217 code such as USD, got \"\(invoice.currency)\"")
            }
        }
    }

    public var json: JSONValue {
        var data: [(String, JSONValue)] = [
            ("id", .string(visit.id)),
            ("member_id", .string(visit.memberID)),
            ("provider_id", .string(visit.providerID)),
            ("start", .integer(visit.start)),
            ("end", .integer(visit.end)),
            ("actual_start", .integer(visit.actualStart)),
            ("actual_end", .integer(visit.actualEnd)),
            ("status", .string(status)),
            ("status_updated_by", .string(statusUpdatedBy)),
        ]
        if let note {
            data.append(("note", .object([("id", .integer(Int64(note.id))), ("status", .string(note.status.rawValue))])))
        }
        if let invoice {
            data.append(("invoice", .object([
                ("id", .string(invoice.id)), ("status", .string(invoice.status.rawValue)),
                ("amount_due", .integer(Int64(invoice.amountDue))), ("amount_paid", .integer(Int64(invoice.amountPaid))),
                ("currency", .string(invoice.currency)),
            ])))
        }
        return VisitValidation.envelope(version: "2.0", id: id, kind: kind, created: created, code: ("clinic_code", clinicCode), data: data)
    }

    public func event(tenantID: String) -> NewEvent {
        NewEvent(tenantID: tenantID, type: kind.rawValue, body: json.serialized, id: id)
    }

    public init(body: [UInt8], type: String) throws {
        let root = try JSONReader(event: type, body: body)
        try root.rejectKeys(otherThan: ["version", "id", "type", "created", "clinic_code", "data"])
        let (id, kind, created) = try VisitValidation.envelope(root, version: "2.0", type: type)
        let data = try root.presentObject("data")
        try data.rejectKeys(otherThan: ["id", "member_id", "provider_id", "start", "end", "actual_start", "actual_end", "status",
                                        "status_updated_by", "note", "invoice"])
        let visit = VisitDetails(
            id: try data.presentString("id"), memberID: try data.presentString("member_id"), providerID: try data.presentNullableString("provider_id"),
            start: try data.presentInteger("start"), end: try data.presentInteger("end"),
            actualStart: try data.presentNullableInteger("actual_start"), actualEnd: try data.presentNullableInteger("actual_end"))
        var note: Note?
        if data.contains("note") {
            let reader = try data.presentObject("note")
            try reader.rejectKeys(otherThan: ["id", "status"])
            let status = try reader.presentString("status")
            guard let parsed = Note.Status(rawValue: status) else {
                throw reader.fail("status", "must be one of \(Note.Status.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(status)\"")
            }
            note = Note(id: try reader.presentInteger("id"), status: parsed)
        }
        var invoice: Invoice?
        if data.contains("invoice") {
            let reader = try data.presentObject("invoice")
            try reader.rejectKeys(otherThan: ["id", "status", "amount_due", "amount_paid", "currency"])
            let status = try reader.presentString("status")
            guard let parsed = Invoice.Status(rawValue: status) else {
                throw reader.fail("status", "must be one of \(Invoice.Status.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(status)\"")
            }
            invoice = Invoice(id: try reader.presentString("id"), status: parsed, amountDue: try reader.presentInteger("amount_due"),
                              amountPaid: try reader.presentInteger("amount_paid"), currency: try reader.presentString("currency"))
        }
        try self.init(id: id, kind: kind, created: created, clinicCode: try root.presentString("clinic_code"), visit: visit,
                      status: try data.presentString("status"), statusUpdatedBy: try data.presentNullableString("status_updated_by"),
                      note: note, invoice: invoice)
    }
}

/// The envelope and rules both visit versions share.
enum VisitValidation {
    static func envelope(version: String, id: UUID, kind: VisitEventKind, created: Int, code: (key: String, value: String),
                         data: [(String, JSONValue)]) -> JSONValue {
        .object([
            ("version", .string(version)),
            ("id", .string(id.lowercasedString)),
            ("type", .string(kind.rawValue)),
            ("created", .integer(Int64(created))),
            (code.key, .string(code.value)),
            ("data", .object(data)),
        ])
    }

    static func common(type: String, created: Int, code: (key: String, value: String), visit: VisitDetails) throws {
        func fail(_ field: String, _ message: String) -> DispatcherError { .invalidEvent(type: type, field: field, message: message) }
        guard created >= 0 else { throw fail("created", "must be Unix seconds, got \(created)") }
        guard !code.value.isEmpty else { throw fail(code.key, "must not be empty") }
        guard !visit.id.isEmpty else { throw fail("data.id", "must not be empty") }
        guard !visit.memberID.isEmpty else { throw fail("data.member_id", "must not be empty") }
    }

    /// Reads `version`, `id`, `type` and `created`, checking them against the event type.
    static func envelope(_ root: JSONReader, version: String, type: String) throws -> (UUID, VisitEventKind, Int) {
        guard try root.presentString("version") == version else { throw root.fail("version", "must be \"\(version)\"") }
        let idText = try root.presentString("id")
        guard let id = UUID(uuidString: idText) else { throw root.fail("id", "must be a UUID, got \"\(idText)\"") }
        let typeText = try root.presentString("type")
        guard let kind = VisitEventKind(rawValue: typeText) else {
            throw root.fail("type", "must be one of \(VisitEventKind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(typeText)\"")
        }
        guard typeText == type else { throw root.fail("type", "is \"\(typeText)\" but the event is enqueued as \(type)") }
        return (id, kind, try root.presentInteger("created"))
    }
}
