import DispatcherModel
import Foundation

extension EventFamily {
    /// Checks a body enqueued under `type` against its family's documented format, and returns
    /// the event id the body carries (`data.event_id` of a check-in outcome, `id` of a visit
    /// event), which should also be the outbox id so `webhook-id` matches it. Types of no family
    /// pass (any JSON object); an undocumented `verification.*` key needs `allowCustomKey`.
    @discardableResult
    public static func validate(body: [UInt8], type: String, allowCustomKey: Bool = false) throws -> UUID? {
        switch EventFamily(type: type) {
        case .checkin:
            return try CheckinOutcome(body: body).eventID
        case .visit:
            let version = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["version"] as? String
            switch version {
            case "1.0": return try VisitEventV1(body: body, type: type).id
            case "2.0": return try VisitEventV2(body: body, type: type).id
            default: throw DispatcherError.invalidEvent(type: type, field: "version", message: "must be \"1.0\" or \"2.0\"")
            }
        case .onboarding:
            if type == OnboardingStatusChanged.type { _ = try OnboardingStatusChanged(body: body) } else { _ = try WatchlistUpdated(body: body) }
            return nil
        case .verification:
            _ = try VerificationEvent(body: body, type: type, allowCustomKey: allowCustomKey)
            return nil
        case nil:
            return nil
        }
    }
}

extension EventFamily {
    /// What `dispatcher enqueue --ndjson` and the ingest API do to an event before storing it:
    /// check its body against its family's documented format, and take the id the body carries
    /// (a check-in outcome's `data.event_id`, a visit's `id`) when the event has none, so
    /// `webhook-id` matches it. A given id that differs from the body's is refused.
    package static func prepare(_ event: NewEvent, allowCustomKey: Bool = false) throws -> NewEvent {
        let bodyID = try validate(body: event.body, type: event.type, allowCustomKey: allowCustomKey)
        var prepared = event
        if let given = event.id, let bodyID, given != bodyID {
            throw DispatcherError.invalidEvent(type: event.type, field: "id", message: "\(given.lowercasedString) differs from the id in the body (\(bodyID.lowercasedString)); leave it out")
        }
        if prepared.id == nil { prepared.id = bodyID }
        return prepared
    }
}
