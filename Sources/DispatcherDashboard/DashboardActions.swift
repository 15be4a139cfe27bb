import DispatcherConfig
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// A mutation the dashboard performs, from a form post or an API call. Every action asks the
/// viewer first: a tenant acts only on its own tenant's objects, and only with the admin role.
struct DashboardAction {
    enum Kind {
        case redeliver(Int64)
        case replay(DashboardFilter, dryRun: Bool)
        case setEnabled(endpointID: String, enabled: Bool)
        /// A ping, or the catalog's example of `type`.
        case test(endpointID: String, type: String?)
        case createEndpoint
        case updateEndpoint(String)
        case removeEndpoint(String)
        /// Generate a first secret, or rotate to a new one keeping the old for the grace period.
        case newSecret(endpointID: String)
        case createToken
        case revokeToken(String)
        case portalLink
    }

    let kind: Kind
    let form: FormData

    /// The portal replays at most this many deliveries at once (the operator, any number).
    static let portalReplayCap = 1_000

    init(segments: [String], form: FormData) throws {
        self.form = form
        let route = Route(segments)
        if let id = route.capture("deliveries/*/redeliver") {
            kind = .redeliver(try DashboardApp.deliveryID(id))
        } else if route.matches("replay") {
            kind = .replay(try DashboardFilter(form), dryRun: form["dry_run"] != nil)
        } else if let id = route.capture("endpoints/*/enable") {
            kind = .setEnabled(endpointID: id, enabled: true)
        } else if let id = route.capture("endpoints/*/disable") {
            kind = .setEnabled(endpointID: id, enabled: false)
        } else if let id = route.capture("endpoints/*/test") {
            kind = .test(endpointID: id, type: form["type"])
        } else if route.matches("endpoints") {
            kind = .createEndpoint
        } else if let id = route.capture("endpoints/*/remove") {
            kind = .removeEndpoint(id)
        } else if let id = route.capture("endpoints/*/secret") {
            kind = .newSecret(endpointID: id)
        } else if let id = route.capture("endpoints/*") {
            kind = .updateEndpoint(id)
        } else if route.matches("tokens") {
            kind = .createToken
        } else if let id = route.capture("tokens/*/revoke") {
            kind = .revokeToken(id)
        } else if route.matches("portal-links") {
            kind = .portalLink
        } else {
            throw DashboardError(status: 404, message: "no such action: /\(segments.joined(separator: "/"))")
        }
    }

    struct Outcome {
        var json: [String: Any]
        /// Where a form post lands afterwards, with a notice to show.
        var redirect: String
        /// A page to answer with instead of redirecting: a secret shown once, a form with its errors.
        var page: HTML? = nil
        var status = 200
    }

    /// What the action needs besides the store.
    struct Context {
        let store: any DashboardStore
        let viewer: Viewer
        /// Sends test events with the delivery settings of the process hosting the dashboard.
        let tester: EndpointTester?
        let rules: EndpointRules
        let portal: PortalSessions?
        /// Where portal links point (the config's `portal.base_url`, or this dashboard).
        let baseURL: String
    }

    func perform(_ context: Context) throws -> Outcome {
        let store = context.store, viewer = context.viewer
        try viewer.checkCanChange()
        let pages = DashboardPages(store: store, viewer: viewer)
        switch kind {
        case .test(let endpointID, let type):
            _ = try viewer.endpoint(endpointID, in: store)
            guard let tester = context.tester else {
                throw DashboardError(status: 503, message: "this dashboard was started without delivery settings; use dispatcher endpoints test")
            }
            let record: EventRecord
            do {
                if let type {
                    guard let example = EventCatalog.entry(type: type)?.example else {
                        throw DashboardError(status: 400, message: "'\(type)' has no documented example in the event catalog")
                    }
                    record = try tester.send(endpointID: endpointID, type: type, body: Array(example.utf8))
                } else {
                    record = try tester.ping(endpointID: endpointID)
                }
            } catch DispatcherError.notFound {
                throw viewer.notFound("endpoint '\(endpointID)'")
            }
            let deliveryID = record.deliveries.first?.delivery.id ?? 0
            return Outcome(json: JSONRepresentation.eventRecord(record), redirect: "/deliveries/\(deliveryID)?notice=tested")
        case .redeliver(let id):
            guard let record = try store.eventRecord(deliveryID: id) else { throw viewer.notFound("delivery \(id)") }
            try viewer.check(tenant: record.event.tenantID, "delivery \(id)")
            let count = try store.redeliver(deliveryIDs: [id], eventIDs: [])
            guard count > 0 else {
                throw DashboardError(status: 409, message: "delivery \(id) is being attempted right now; try again when the attempt is recorded")
            }
            return Outcome(json: ["redelivered": count], redirect: "/deliveries/\(id)?notice=redelivered")
        case .replay(let unscoped, let dryRun):
            let filter = try unscoped.scoped(to: viewer, store: store)
            guard let replay = filter.replayFilter else {
                throw DashboardError(status: 400, message: "replay re-queues finished deliveries: filter by failed, cancelled or succeeded")
            }
            let matching = try store.replay(replay, dryRun: true)
            if dryRun { return Outcome(json: ["would_replay": matching], redirect: "/deliveries?" + FormData.encode(filter.pairs)) }
            if !viewer.isOperator && matching > Self.portalReplayCap {
                throw DashboardError(status: 400, message: "\(matching) deliveries match; the portal replays up to \(Self.portalReplayCap) at a time: narrow the filter (since, until, endpoint or type)")
            }
            let count = try store.replay(replay, dryRun: false)
            let query = FormData.encode(filter.pairs + [("notice", "replayed"), ("count", String(count))])
            return Outcome(json: ["replayed": count], redirect: "/deliveries?" + query)
        case .setEnabled(let endpointID, let enabled):
            _ = try viewer.endpoint(endpointID, in: store)
            try store.setEndpointEnabled(id: endpointID, enabled: enabled, actor: viewer.actor)
            return Outcome(json: ["endpoint_id": endpointID, "enabled": enabled],
                           redirect: "/endpoints/\(FormData.escape(endpointID))?notice=\(enabled ? "enabled" : "disabled")")
        case .createEndpoint, .updateEndpoint:
            return try saveEndpoint(context, pages: pages)
        case .removeEndpoint(let id):
            let status = try viewer.endpoint(id, in: store)
            try Self.checkStoreManaged(status)
            let cancelled = try store.removeEndpoint(id: id, actor: viewer.actor)
            return Outcome(json: ["removed": id, "cancelled": cancelled], redirect: "/endpoints?notice=removed")
        case .newSecret(let endpointID):
            let status = try viewer.endpoint(endpointID, in: store)
            try Self.checkStoreManaged(status)
            let graceHours = try form["grace_hours"].map { text -> Double in
                guard let hours = Double(text), (0...720).contains(hours) else {
                    throw DashboardError(status: 400, message: "grace_hours must be a number of hours from 0 to 720")
                }
                return hours
            } ?? 24
            let secret = WebhookSigner.newStandardSecret()
            do {
                try store.rotateSigningSecret(endpointID: endpointID, secret: secret, graceSeconds: graceHours * 3_600, actor: viewer.actor)
            } catch DispatcherError.conflict(let reason) {
                throw DashboardError(status: 409, message: reason)
            }
            let rotated = !status.endpoint.signingSecrets.isEmpty && graceHours > 0
            return Outcome(json: ["endpoint_id": endpointID, "secret": secret, "previous_secret_expires_in_hours": rotated ? graceHours : NSNull()],
                           redirect: "", page: pages.shownOnce(title: "Signing secret for \(endpointID)", value: secret, back: "/endpoints/\(FormData.escape(endpointID))",
                                                               note: rotated ? "The previous secret keeps signing beside it for \(JSONReader.format(graceHours)) hours, then it is dropped." : "Requests to this endpoint are signed with it from now on."))
        case .createToken:
            let tenant = try tenantForNewObject(context)
            let name = form["name"] ?? "read token"
            guard name.count <= 100, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw DashboardError(status: 400, message: "name must be up to 100 characters, without control characters")
            }
            let (record, token) = try TenantTokens.create(tenantID: tenant, name: name, in: store)
            return Outcome(json: ["id": record.id, "tenant": tenant, "token": token], redirect: "",
                           page: pages.shownOnce(title: "Read token “\(name)”", value: token, back: "/tokens",
                                                 note: "Your system reads an event it was sent with GET /v1/tenant/events/ID and Authorization: Bearer and this token."))
        case .revokeToken(let id):
            // The operator revokes any tenant's token; a session only its own (the query is scoped).
            let tenant = try viewer.tenantID ?? store.tenantToken(id: id)?.tenantID ?? ""
            guard try store.revokeTenantToken(id: id, tenantID: tenant) else { throw viewer.notFound("token \(id)") }
            return Outcome(json: ["revoked": id], redirect: "/tokens?notice=revoked")
        case .portalLink:
            guard viewer.isOperator else { throw DashboardError(status: 404, message: "not found") }
            guard let portal = context.portal else {
                throw DashboardError(status: 400, message: "the portal is off: add a portal section with a key to the config")
            }
            guard let tenant = form["tenant"], try store.tenants().contains(where: { $0.id == tenant }) else {
                throw DashboardError(status: 400, message: "choose one of the tenants")
            }
            guard let role = PortalRole(rawValue: form["role"] ?? "admin") else { throw DashboardError(status: 400, message: "role must be viewer or admin") }
            let hours = Double(form["ttl_hours"] ?? "1") ?? 0
            guard hours > 0 && hours <= 168 else { throw DashboardError(status: 400, message: "ttl_hours must be more than 0 and at most 168") }
            let link = portal.key.link(tenant: tenant, role: role, ttl: hours * 3_600, baseURL: context.baseURL)
            return Outcome(json: ["url": link, "tenant": tenant, "role": role.rawValue], redirect: "",
                           page: pages.shownOnce(title: "Portal link for \(tenant)", value: link, back: "/endpoints",
                                                 note: "Anyone holding it signs in as \(tenant) (\(role.rawValue)) until it expires in \(JSONReader.format(hours)) h. Changing portal.key revokes every link and session."))
        }
    }

    /// Creates or updates an endpoint from the form: nothing is saved unless every value is right.
    private func saveEndpoint(_ context: Context, pages: DashboardPages) throws -> Outcome {
        let store = context.store, viewer = context.viewer
        var existing: Endpoint?
        let tenant: String
        if case .updateEndpoint(let id) = kind {
            let status = try viewer.endpoint(id, in: store)
            try Self.checkStoreManaged(status)
            existing = status.endpoint
            tenant = status.endpoint.tenantID
        } else {
            tenant = try tenantForNewObject(context)
        }
        var endpointForm = EndpointForm(posted: form)
        if existing == nil, let id = form["id"], try store.endpoint(id: id) != nil {
            endpointForm.errors["id"] = Self.takenID
        }
        var endpoint = endpointForm.errors.isEmpty ? endpointForm.endpoint(tenantID: tenant, existing: existing, rules: context.rules, allowEnvironment: viewer.isOperator) : nil
        if let valid = endpoint {
            do {
                let newTenant = try store.tenants().contains(where: { $0.id == tenant }) ? [] : [Tenant(id: tenant, name: form["new_tenant_name"] ?? tenant)]
                try store.upsert(tenants: newTenant, endpoints: [valid], actor: viewer.actor)
            } catch DispatcherError.invalidConfiguration(let path, let message) where path.hasPrefix("endpoint ") && message.contains("already belongs") {
                // Another tenant's id (perhaps removed): say it is taken, never whose it is.
                endpointForm.errors["id"] = Self.takenID
                endpoint = nil
            }
        }
        guard let endpoint else {
            let messages = endpointForm.errors.sorted(by: { $0.key < $1.key }).map { ["field": $0.key, "message": $0.value] }
            return Outcome(json: ["errors": messages], redirect: "",
                           page: try pages.endpointForm(endpointForm, existing: existing), status: 400)
        }
        return Outcome(json: ["endpoint_id": endpoint.id, "saved": true],
                       redirect: "/endpoints/\(FormData.escape(endpoint.id))?notice=saved")
    }

    /// Endpoint ids are unique across tenants; the message never says whose an id is.
    static let takenID = "this id is taken: choose another"

    /// The tenant a new endpoint or token belongs to: the session's own; the operator names one
    /// (for an endpoint, possibly a new tenant).
    private func tenantForNewObject(_ context: Context) throws -> String {
        if let own = context.viewer.tenantID { return own }
        let tenant = form["new_tenant"] ?? form["tenant"] ?? ""
        guard EventType.isValid(tenant) else {
            throw DashboardError(status: 400, message: "tenant '\(tenant)' must be 1-200 letters, digits, '.', '_' or '-'")
        }
        if form["new_tenant"] == nil, try !context.store.tenants().contains(where: { $0.id == tenant }) {
            throw DashboardError(status: 400, message: "no tenant '\(tenant)'")
        }
        return tenant
    }

    /// Endpoints the config file names are changed there (README "The control panel").
    static func checkStoreManaged(_ status: EndpointStatus) throws {
        if status.isManagedByConfig {
            throw DashboardError(status: 409, message: "\(status.endpoint.id) is managed by the config file: change it there (serve applies it at start)")
        }
    }
}
