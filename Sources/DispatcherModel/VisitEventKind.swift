import Foundation

/// The five `visit.*` event types of the visit seed.
public enum VisitEventKind: String, Sendable, CaseIterable {
    case created = "visit.created"
    case updated = "visit.updated"
    case ended = "visit.ended"
    case noteSignedAndSent = "visit.note.signed_and_sent"
    case invoiceProcessed = "visit.invoice.processed"
}
