import Foundation

/// The event families of the seeds: which types belong to which, how their bodies are checked,
/// and the receiver profile each family's documentation asks for.
public enum EventFamily: String, Sendable, CaseIterable {
    case checkin
    case visit
    case onboarding
    case verification

    /// The seeds' type names that stand alone (the visit family's are `VisitEventKind`'s); the
    /// builders in DispatcherEvents use these too.
    package static let checkinOutcomeType = "checkin.outcome"
    package static let onboardingStatusChangedType = "onboarding.status_changed"
    package static let watchlistUpdatedType = "watchlist.updated"

    /// The family a type belongs to, or nil for a type no seed documents.
    public init?(type: String) {
        if type == Self.checkinOutcomeType {
            self = .checkin
        } else if VisitEventKind(rawValue: type) != nil {
            self = .visit
        } else if type == Self.onboardingStatusChangedType || type == Self.watchlistUpdatedType {
            self = .onboarding
        } else if type.hasPrefix("verification.") {
            self = .verification
        } else {
            return nil
        }
    }

    /// What an endpoint receiving this family should use unless configured otherwise.
    public struct ReceiverProfile: Sendable, Equatable {
        public var retry: RetryPolicy
        public var success: SuccessRule
        public var requiresHTTPS: Bool
    }

    public var recommendedProfile: ReceiverProfile {
        switch self {
        case .onboarding:
            // "one time retry ... on timeout or not 200 application/json or 204"
            return ReceiverProfile(retry: .oneRetry(delaySeconds: 5), success: .json200Or204, requiresHTTPS: false)
        case .verification:
            // "For security reasons, a webhook URL must use the HTTPS protocol."
            return ReceiverProfile(retry: .default, success: .any2xx, requiresHTTPS: true)
        case .checkin, .visit:
            return ReceiverProfile(retry: .default, success: .any2xx, requiresHTTPS: false)
        }
    }

    /// The family whose types all of `patterns` name, if they name one family only: an endpoint
    /// filtered to `["onboarding.*", "watchlist.updated"]` is an onboarding endpoint; one with no
    /// filter, or with `["*"]`, belongs to no family.
    static func only(in patterns: [String]) -> EventFamily? {
        let families = patterns.map { pattern -> EventFamily? in
            guard let star = pattern.firstIndex(of: "*") else { return EventFamily(type: pattern) }
            let prefix = pattern[..<star]
            return allCases.first { $0.typePrefixes.contains { prefix.hasPrefix($0) } }
        }
        guard let first = families.first, let family = first, families.allSatisfy({ $0 == family }) else { return nil }
        return family
    }

    private var typePrefixes: [String] {
        switch self {
        case .checkin: return ["checkin."]
        case .visit: return ["visit."]
        case .onboarding: return ["onboarding.", "watchlist."]
        case .verification: return ["verification."]
        }
    }
}
