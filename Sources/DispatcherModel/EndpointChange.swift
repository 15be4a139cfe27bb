import Foundation

/// Who changed an endpoint, as its change history names them.
public struct ChangeActor: Sendable, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// `serve` (or another command) applying the config file.
    public static let config = ChangeActor("config")
    /// `dispatcher endpoints …`.
    public static let cli = ChangeActor("cli")
    /// A program calling the library directly.
    public static let library = ChangeActor("library")
    /// The dashboard's operator (signed in with the dashboard token).
    public static let `operator` = ChangeActor("operator")
    /// The dispatcher itself (a rotated-out secret's grace period ending).
    public static let dispatcher = ChangeActor("dispatcher")

    /// A tenant portal session.
    public static func portal(tenant: String, role: String) -> ChangeActor { ChangeActor("portal:\(tenant) (\(role))") }
}

/// One key of an endpoint's config that changed: its old and new value as compact JSON
/// (nil when absent), secrets written `"***"`.
public struct FieldChange: Sendable, Equatable {
    public var field: String
    public var from: String?
    public var to: String?

    public init(field: String, from: String?, to: String?) {
        self.field = field
        self.from = from
        self.to = to
    }
}

/// One entry of an endpoint's change history.
public struct EndpointChange: Sendable, Equatable {
    public var id: Int64
    public var endpointID: String
    public var tenantID: String
    public var actor: String
    public var at: Date
    public var changes: [FieldChange]

    public init(id: Int64, endpointID: String, tenantID: String, actor: String, at: Date, changes: [FieldChange]) {
        self.id = id
        self.endpointID = endpointID
        self.tenantID = tenantID
        self.actor = actor
        self.at = at
        self.changes = changes
    }
}

/// When a signing secret was added and, during a rotation, when it stops signing. The value
/// itself is never shown again after it is made.
public struct SigningSecretInfo: Sendable, Equatable {
    public var createdAt: Date?
    public var expiresAt: Date?

    public init(createdAt: Date?, expiresAt: Date?) {
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

extension Endpoint {
    /// What changed from `old` (nil: the endpoint is new) to this endpoint, key by key of the
    /// config shape. Values that are secrets (header values, the OAuth client secret, signing
    /// secrets) are compared as they are but written `***`, so a history never holds one.
    public func changes(from old: Endpoint?) -> [FieldChange] {
        let before = old?.configObject ?? [:], after = configObject
        var changes: [FieldChange] = []
        for key in Set(before.keys).union(after.keys).sorted() where key != "id" {
            let was = before[key].map(Self.canonical), now = after[key].map(Self.canonical)
            guard was != now else { continue }
            changes.append(FieldChange(field: key, from: before[key].map { Self.redactedText(key: key, $0) },
                                       to: after[key].map { Self.redactedText(key: key, $0) }))
        }
        return changes
    }

    /// Compact JSON with sorted keys (JSONValue's writer: JSONSerialization costs ten times more,
    /// which a config of 10,000 endpoints feels at every start).
    private static func canonical(_ value: Any) -> String { JSONValue(foundation: value).text }

    private static func redactedText(key: String, _ value: Any) -> String {
        var value = value
        switch key {
        case "headers":
            if let headers = value as? [String: Any] { value = headers.mapValues { _ in "***" } }
        case "auth":
            if var auth = value as? [String: Any], auth["client_secret"] != nil {
                auth["client_secret"] = "***"
                value = auth
            }
        case "signing":
            if var signing = value as? [String: Any], let secrets = signing["secrets"] as? [Any] {
                signing["secrets"] = secrets.map { _ in "***" }
                value = signing
            }
        default:
            break
        }
        return canonical(value)
    }
}
