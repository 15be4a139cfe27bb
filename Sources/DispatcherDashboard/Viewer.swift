import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherStore
import Foundation

/// Who is looking at a page: the operator (every tenant), or one tenant through the portal.
/// Every page, JSON route and action asks the viewer what it may show and do, so the tenant
/// scope is one value passed down, not a check each route must remember.
struct Viewer: Sendable {
    /// nil for the operator.
    let tenantID: String?
    let role: PortalRole
    /// The token this viewer's forms carry: per process for the operator, per session in the portal.
    let csrfToken: String

    static func `operator`(csrfToken: String) -> Viewer { Viewer(tenantID: nil, role: .admin, csrfToken: csrfToken) }

    var isOperator: Bool { tenantID == nil }
    var canChange: Bool { role == .admin }
    var actor: ChangeActor { tenantID.map { .portal(tenant: $0, role: role.rawValue) } ?? .operator }

    func sees(tenant: String) -> Bool { tenantID == nil || tenantID == tenant }

    /// 404 for what belongs to another tenant: the same answer as for what does not exist, so
    /// a tenant learns nothing about another's ids.
    func check(tenant: String, _ what: @autoclosure () -> String) throws {
        guard sees(tenant: tenant) else { throw notFound(what()) }
    }

    /// In the portal the answer never repeats the id asked for: it may be another tenant's.
    func notFound(_ what: String) -> DashboardError {
        DashboardError(status: 404, message: isOperator ? "no \(what)" : "not found")
    }

    /// Refuses a change to a viewer with the viewer role.
    func checkCanChange() throws {
        guard canChange else { throw DashboardError(status: 403, message: "this portal link is for viewing; ask for an admin link to make changes") }
    }

    /// The endpoint, when this viewer may see it.
    func endpoint(_ id: String, in store: any DashboardStore) throws -> EndpointStatus {
        guard let status = try store.endpointStatus(id: id), sees(tenant: status.endpoint.tenantID) else {
            throw notFound("endpoint '\(id)'")
        }
        return status
    }
}

/// The portal's sessions: opening a signed link sets a cookie holding a signed session (the
/// tenant, role and expiry; no secret), checked on every request. With no `portal` in the
/// config there are no sessions and the portal's routes answer 404.
struct PortalSessions: Sendable {
    let key: PortalKey
    let settings: PortalSettings
    /// Per process: derives each session's CSRF token.
    let csrfKey: [UInt8]

    static let cookie = "dispatcher_portal"

    /// A session cookie for a link's grant (the session lasts `session_hours`, whatever was left of the link).
    func sessionCookie(for grant: PortalGrant, now: Date = Date()) -> String {
        let session = PortalGrant(tenantID: grant.tenantID, role: grant.role, expiresAt: now.addingTimeInterval(settings.sessionSeconds))
        let secure = settings.baseURL?.lowercased().hasPrefix("https://") == true ? "; Secure" : ""
        return "\(Self.cookie)=\(key.token(session, kind: .session)); Path=/; Max-Age=\(Int(settings.sessionSeconds)); HttpOnly; SameSite=Strict\(secure)"
    }

    static let clearedCookie = "\(cookie)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"

    /// The viewer of a request's session cookie; nil when it has none; throws when it has one
    /// that is tampered with, expired or signed with an old key.
    func viewer(of request: HTTPServerRequest) throws -> Viewer? {
        guard let value = request.cookie(Self.cookie) else { return nil }
        guard let grant = key.verify(value, kind: .session) else {
            throw DashboardError(status: 401, message: "this portal session has expired or was revoked: open a new link")
        }
        let csrf = Hex.lowercase(WebhookSigner.hmacSHA256(key: csrfKey, message: Array(("portal-csrf|" + value).utf8)))
        return Viewer(tenantID: grant.tenantID, role: grant.role, csrfToken: csrf)
    }
}

extension HTTPServerRequest {
    /// Every value the request carries for the cookie `name`, in order.
    func cookies(_ name: String) -> [String] {
        headers.filter { $0.hasName("Cookie") }.flatMap { $0.value.split(separator: ";") }.compactMap { cookie in
            let parts = cookie.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            return parts.count == 2 && parts[0] == name ? String(parts[1]) : nil
        }
    }

    /// The first value of the cookie `name`, when the request carries it.
    func cookie(_ name: String) -> String? { cookies(name).first }
}

/// Tenant read tokens, `dtt_<id>_<secret>`: made in the portal, shown once, stored hashed;
/// a tenant's own system reads the events it was sent with one (`GET /v1/tenant/events/ID`).
enum TenantTokens {
    static let prefix = "dtt_"

    static func create(tenantID: String, name: String, in store: any TenantTokenRegistry) throws -> (record: TenantTokenRecord, token: String) {
        let token = HashedToken(prefix: prefix)
        let record = TenantTokenRecord(id: token.id, tenantID: tenantID, name: name, tokenHash: token.hash, createdAt: Date())
        try store.insertTenantToken(record)
        return (record, token.token)
    }

    /// The tenant a presented token reads for, when it is a valid, unrevoked token.
    static func tenant(of presented: String, in store: any TenantTokenRegistry) throws -> String? {
        guard let token = HashedToken(presented: presented, prefix: prefix), token.id.utf8.count == 12,
              let record = try store.tenantToken(id: token.id), record.revokedAt == nil, token.matches(record.tokenHash) else { return nil }
        try store.touchTenantToken(id: record.id, at: Date())
        return record.tenantID
    }
}
