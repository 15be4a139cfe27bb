import Foundation

/// Errors a user can cause and fix: each message names the offending value and what is allowed.
public enum DispatcherError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case unknownTenant(String)
    case invalidEventType(String)
    case invalidJSON(String)
    case payloadTooLarge(bytes: Int, limit: Int)
    case invalidEventID(String)
    /// The event id is taken by an event with another tenant, type or body.
    case conflictingEvent(id: String)
    /// A config file or endpoint definition is invalid; `path` is the key path (`tenants[0].endpoints[1].url`).
    case invalidConfiguration(path: String, message: String)
    case notFound(String)
    /// A typed event builder (or `enqueue` of a known type) found a field that breaks the
    /// receiver's documented format.
    case invalidEvent(type: String, field: String, message: String)
    /// The delivery service could not start: libcurl failed to set up, or lacks a feature the
    /// delivery rules rely on.
    case cannotStart(String)
    /// The store failed in a way retrying does not mend (corrupt, not a database, read-only,
    /// deleted); the delivery service stopped.
    case storeUnusable(String)
    /// The change cannot be made in the object's present state (who manages it, how it signs).
    case conflict(String)

    public var description: String {
        switch self {
        case .unknownTenant(let id):
            return "unknown tenant '\(id)': add it to the config's tenants (and run serve once) before enqueuing for it"
        case .invalidEventType(let type):
            return "invalid event type '\(type)': use 1-200 letters, digits, '.', '_' or '-' (e.g. checkin.outcome)"
        case .invalidJSON(let reason):
            return "invalid JSON body: \(reason)"
        case .payloadTooLarge(let bytes, let limit):
            return "payload is \(bytes) bytes; the limit is \(limit) bytes (max_payload_bytes)"
        case .invalidEventID(let id):
            return "invalid event id '\(id)': it must be a UUID"
        case .conflictingEvent(let id):
            return "event \(id) already exists with a different tenant, type or body; an event id may be reused only for the same event"
        case .invalidConfiguration(let path, let message):
            return path.isEmpty ? "invalid configuration: \(message)" : "invalid configuration at \(path): \(message)"
        case .notFound(let what):
            return "not found: \(what)"
        case .invalidEvent(let type, let field, let message):
            return type.isEmpty ? "invalid event: \(field) \(message)" : "invalid \(type) event: \(field) \(message)"
        case .cannotStart(let reason):
            return "cannot start delivering: \(reason)"
        case .storeUnusable(let reason):
            return "stopped delivering: the store cannot be used (\(reason))"
        case .conflict(let reason):
            return reason
        }
    }

    public var errorDescription: String? { description }
}
