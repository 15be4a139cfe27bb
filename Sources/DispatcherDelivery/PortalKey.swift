import DispatcherModel
import Foundation

/// What a tenant may do in the portal.
public enum PortalRole: String, Sendable, CaseIterable {
    /// The log, each delivery's detail, the endpoints (read-only) and the event catalog.
    case viewer
    /// Also endpoint changes, signing secrets, redeliver, replay, test sends and read tokens.
    case admin
}

/// Access to one tenant's part of the dashboard, as a signed link or session names it.
public struct PortalGrant: Sendable, Equatable {
    public var tenantID: String
    public var role: PortalRole
    public var expiresAt: Date

    public init(tenantID: String, role: PortalRole, expiresAt: Date) {
        self.tenantID = tenantID
        self.role = role
        self.expiresAt = expiresAt
    }
}

/// Signs and checks portal links and sessions with the config's `portal.key`. Both are
/// `<base64url payload>.<base64url HMAC-SHA256>`; the payload names its kind (a link cannot be
/// used as a session cookie, nor the reverse), the tenant, the role and the expiry, and holds
/// no secret. Nothing is stored: changing the key revokes every link and session at once.
///
/// A producer service mints links in its own admin pages with the same key:
///
/// ```swift
/// let portal = try PortalKey(secret: ProcessInfo.processInfo.environment["PORTAL_KEY"] ?? "")
/// let url = portal.link(tenant: "acme", role: .admin, ttl: 3_600, baseURL: "https://webhooks.example.com")
/// ```
public struct PortalKey: Sendable {
    public enum Kind: String, Sendable { case link, session }

    /// A key shorter than this is refused: it would be guessable offline from one signed link.
    public static let minimumLength = 32
    private let key: [UInt8]

    public init(secret: String) throws {
        guard secret.utf8.count >= Self.minimumLength else {
            throw DispatcherError.invalidConfiguration(path: "portal.key", message: "must be at least \(Self.minimumLength) characters (e.g. openssl rand -hex 32)")
        }
        key = Array(secret.utf8)
    }

    /// The URL a tenant opens to start a session: `<baseURL>/portal/open?token=…`.
    public func link(tenant: String, role: PortalRole = .admin, ttl: TimeInterval = 3_600, baseURL: String, now: Date = Date()) -> String {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        return base + "/portal/open?token=" + token(PortalGrant(tenantID: tenant, role: role, expiresAt: now.addingTimeInterval(ttl)), kind: .link)
    }

    public func token(_ grant: PortalGrant, kind: Kind) -> String {
        // A random part makes every token different, so two links are told apart in logs.
        let nonce = Hex.lowercase(Digest.randomBytes(8))
        let payload = ["v1", kind.rawValue, grant.tenantID, grant.role.rawValue, String(Int64(grant.expiresAt.timeIntervalSince1970)), nonce]
            .joined(separator: "|")
        let bytes = Array(payload.utf8)
        return Self.base64URL(bytes) + "." + Self.base64URL(WebhookSigner.hmacSHA256(key: key, message: bytes))
    }

    /// The grant a token carries when it is of `kind`, signed with this key and not expired.
    public func verify(_ token: String, kind: Kind, now: Date = Date()) -> PortalGrant? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        // Canonical base64url only: the last character's unused bits would otherwise let one
        // token be written several ways.
        guard token.utf8.count <= 1_024, parts.count == 2, let payload = Self.bytes(base64URL: parts[0]),
              let signature = Self.bytes(base64URL: parts[1]),
              Self.base64URL(payload) == parts[0], Self.base64URL(signature) == parts[1] else { return nil }
        let expected = WebhookSigner.hmacSHA256(key: key, message: payload)
        guard signature.count == expected.count, zip(signature, expected).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else { return nil }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6, fields[0] == "v1", fields[1] == kind.rawValue, let role = PortalRole(rawValue: fields[3]),
              let expiry = Int64(fields[4]) else { return nil }
        let grant = PortalGrant(tenantID: fields[2], role: role, expiresAt: Date(timeIntervalSince1970: TimeInterval(expiry)))
        return grant.expiresAt > now ? grant : nil
    }

    package static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func bytes(base64URL text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map { [UInt8]($0) }
    }
}

extension WebhookSigner {
    /// A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
    package static func newStandardSecret() -> String {
        SigningSecret.prefix + Data(Digest.randomBytes(32)).base64EncodedString()
    }
}
