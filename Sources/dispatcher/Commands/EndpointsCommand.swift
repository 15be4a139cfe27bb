import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher endpoints list|add|update|remove|enable|disable|test|public-key|new-secret|rotate-secret|history`:
/// endpoints and their health, their signing keys, and every change made to them.
struct EndpointsCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "endpoints",
        abstract: "Manage endpoints: list with health, add, update, remove, enable, disable, test; signing keys.",
        positionals: "list | show ID | add | update ID | remove ID | enable ID | disable ID | test ID | public-key ID | new-secret | rotate-secret ID | history ID",
        options: [
            OptionSpec(name: "tenant", value: "ID", help: "add: the endpoint's tenant (created if new)."),
            OptionSpec(name: "id", value: "ID", help: "add: the endpoint id (unique across tenants)."),
            OptionSpec(name: "url", value: "URL", help: "The URL deliveries are POSTed to."),
            OptionSpec(name: "events", value: "LIST", help: "Comma-separated event types or globs; \"*\" for every type."),
            OptionSpec(name: "header", value: "NAME:VALUE", help: "A request header (repeatable); VALUE may be env:NAME.", repeatable: true),
            OptionSpec(name: "remove-header", value: "NAME", help: "update: drop a header (repeatable).", repeatable: true),
            OptionSpec(name: "secret-header", value: "NAME", help: "Redact this header in the audit log (repeatable).", repeatable: true),
            OptionSpec(name: "timeout", value: "SECONDS", help: "Total time for one attempt (default 10)."),
            OptionSpec(name: "max-concurrency", value: "N", help: "Deliveries in flight at once, across all serve processes (default 4)."),
            OptionSpec(name: "retry", value: "JSON", help: #"Retry policy as in the config: '{"policy":"one_retry","delay_seconds":5}'."#),
            OptionSpec(name: "success", value: "RULE", help: "2xx or json_200_or_204."),
            OptionSpec(name: "ordered", value: "BOOL", help: "true or false."),
            OptionSpec(name: "oauth-token-url", value: "URL", help: "OAuth 2.0 client credentials: the token URL."),
            OptionSpec(name: "oauth-client-id", value: "ID", help: "OAuth 2.0 client id."),
            OptionSpec(name: "oauth-client-secret", value: "SECRET", help: "OAuth 2.0 client secret, or env:NAME."),
            OptionSpec(name: "oauth-scope", value: "SCOPE", help: "OAuth 2.0 scope (optional)."),
            OptionSpec(name: "signing-secret", value: "SECRET", help: "Signing secret or env:NAME (repeat for two while rotating): whsec_ (v1), whsk_ (v1a), text (hmac_sha256_hex).", repeatable: true),
            OptionSpec(name: "signing-scheme", value: "SCHEME", help: "v1 (Standard Webhooks HMAC, the default), v1a (ed25519) or hmac_sha256_hex; new-secret: the kind to make."),
            OptionSpec(name: "signing-header", value: "NAME", help: "hmac_sha256_hex: the header (default X-Hub-Signature-256)."),
            OptionSpec(name: "signing-prefix", value: "TEXT", help: "hmac_sha256_hex: before the hex digest (default sha256=)."),
            OptionSpec(name: "rate-limit", value: "PER_SECOND", help: "At most this many requests a second, across all serve processes; \"none\" to lift it."),
            OptionSpec(name: "proxy", value: "URL", help: "Egress proxy http://[user:password@]host:port or env:NAME; \"none\" for direct; \"default\" for the config's."),
            OptionSpec(name: "http2", value: "BOOL", help: "Offer HTTP/2 (https only): true or false."),
            OptionSpec(name: "tls-client-cert", value: "FILE", help: "PEM client certificate (or env:NAME holding the PEM)."),
            OptionSpec(name: "tls-client-key", value: "FILE", help: "PEM key of the client certificate (or env:NAME)."),
            OptionSpec(name: "tls-ca-file", value: "FILE", help: "PEM file of the CAs trusted for this endpoint only."),
            OptionSpec(name: "tls-pin", value: "sha256//BASE64", help: "The receiver's public key pin."),
            OptionSpec(name: "grace", value: "DURATION", help: "rotate-secret: how long the old secret keeps signing beside the new one (default 24h; 0s drops it now)."),
            OptionSpec(name: "json", value: nil, help: "list: one JSON object per endpoint (secrets shown as ***); test: the record as JSON; history: one change a line."),
        ] + StoreSelection.options,
        discussion: """
            add and update validate exactly as the config file does, and write nothing when a value
            is wrong. The config's require_https applies (https only without a config).
            An endpoint that kept failing for its circuit's disable_after_seconds is disabled by the
            dispatcher, with the reason in `list`; `enable` resumes it with a closed circuit.
            `test` sends a dispatcher.ping event now and prints the recorded attempt.
            `new-secret` prints a fresh signing secret (for v1a also its whpk_ public key); `public-key`
            prints the whpk_ public keys a receiver verifies a v1a endpoint's signatures with.
            `rotate-secret` makes a new v1 secret, prints it once, and keeps the old one signing beside
            it for --grace; `serve` drops the old one when that ends. `history` lists every change to an
            endpoint: who (config, cli, operator, a portal session, the dispatcher), when, and what,
            secrets as ***. An endpoint the config names is managed by it: serve's start applies the
            file's version, so change such an endpoint in the file.
            """)

    enum Action {
        case list
        case add
        case update(String)
        case remove(String)
        case setEnabled(String, Bool)
        case test(String)
        case publicKey(String)
        case newSecret
        case show(String)
        case rotateSecret(String)
        case history(String)
    }

    let action: Action
    let arguments: ParsedArguments
    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        let words = arguments.positionals
        switch (words.first, words.count) {
        case ("list", 1): action = .list
        case ("add", 1): action = .add
        case ("update", 2): action = .update(words[1])
        case ("remove", 2): action = .remove(words[1])
        case ("enable", 2): action = .setEnabled(words[1], true)
        case ("disable", 2): action = .setEnabled(words[1], false)
        case ("test", 2): action = .test(words[1])
        case ("public-key", 2): action = .publicKey(words[1])
        case ("show", 2): action = .show(words[1])
        case ("new-secret", 1): action = .newSecret
        case ("rotate-secret", 2): action = .rotateSecret(words[1])
        case ("history", 2): action = .history(words[1])
        default: throw UsageError("expected list, add, new-secret, or show | update | remove | enable | disable | test | public-key | rotate-secret | history followed by an endpoint id")
        }
        if case .add = action {
            guard arguments.value("tenant") != nil, arguments.value("id") != nil, arguments.value("url") != nil else {
                throw UsageError("add needs --tenant, --id and --url")
            }
        } else if arguments.value("tenant") != nil || arguments.value("id") != nil {
            throw UsageError("--tenant and --id go with add only")
        }
        if let grace = arguments.value("grace") {
            guard case .rotateSecret = action else { throw UsageError("--grace goes with rotate-secret only") }
            guard let seconds = TimeExpression.seconds(grace), seconds <= 30 * 86_400 else {
                throw UsageError("--grace '\(grace)' must be a duration such as 24h, 30m or 0s, at most 30d")
            }
        }
        self.arguments = arguments
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        if case .newSecret = action { return try printNewSecret() }
        let store = try selection.openStore()
        switch action {
        case .newSecret:
            break
        case .show(let id):
            guard let status = try store.endpointStatus(id: id) else {
                throw DispatcherError.notFound("endpoint '\(id)'")
            }
            var object = JSONRepresentation.endpointStatus(status)
            // A v1a endpoint's public keys, for its receiver (the private keys stay ***).
            if status.endpoint.signatureScheme == .standardWebhooksEd25519 {
                object["public_keys"] = Self.publicKeys(of: status.endpoint).compactMap(\.key)
            }
            let line = JSONRepresentation.line(object)
            // JSON either way (escaped, so nothing reaches the terminal raw); indented for people.
            Console.out(json: (json ? line : JSONPrettyPrinter.prettyPrinted(Array(line.utf8)) ?? line) + "\n")
        case .publicKey(let id):
            guard let endpoint = try store.endpoint(id: id) else { throw DispatcherError.notFound("endpoint '\(id)'") }
            guard endpoint.signatureScheme == .standardWebhooksEd25519 else {
                throw DispatcherError.invalidConfiguration(path: "endpoint \(id).signing",
                    message: "signs with \(endpoint.signingSecrets.isEmpty ? "nothing" : endpoint.signatureScheme.name); only v1a has public keys")
            }
            for (secret, key) in Self.publicKeys(of: endpoint) {
                guard let key else {
                    throw DispatcherError.invalidConfiguration(path: "endpoint \(id).signing",
                        message: "\(secret) does not hold a whsk_ secret here; its public key cannot be shown")
                }
                Console.out("\(key)\n")
            }
        case .list:
            try list(store)
        case .add:
            let tenantID = arguments.value("tenant")!
            let endpoint = try Endpoint.fromConfigObject(try applyOptions(to: ["id": arguments.value("id")!]),
                                                         tenantID: tenantID, urlPolicy: urlPolicy)
            guard try store.endpoint(id: endpoint.id) == nil else { throw UsageError("endpoint '\(endpoint.id)' exists; use update") }
            let tenant = try store.tenants().first { $0.id == tenantID } ?? Tenant(id: tenantID, name: tenantID)
            try store.upsert(tenants: [tenant], endpoints: [endpoint], actor: .cli)
            Console.out("added endpoint \(endpoint.id) for tenant \(tenantID)\n")
        case .update(let id):
            guard let existing = try store.endpoint(id: id) else { throw DispatcherError.notFound("endpoint '\(id)'") }
            let endpoint = try Endpoint.fromConfigObject(try applyOptions(to: existing.configObject),
                                                         tenantID: existing.tenantID, urlPolicy: urlPolicy)
            try store.upsert(tenants: [], endpoints: [endpoint], actor: .cli)
            Console.out("updated endpoint \(id)\n")
            try warnIfManagedByConfig(id, store: store)
        case .remove(let id):
            let cancelled = try store.removeEndpoint(id: id, actor: .cli)
            Console.out("removed endpoint \(id); cancelled \(cancelled) pending deliveries\n")
        case .setEnabled(let id, let enabled):
            try store.setEndpointEnabled(id: id, enabled: enabled, actor: .cli)
            Console.out("endpoint \(id) \(enabled ? "enabled" : "disabled")\n")
        case .rotateSecret(let id):
            let grace = arguments.value("grace").flatMap(TimeExpression.seconds) ?? 86_400
            let had = try store.endpoint(id: id)?.signingSecrets.isEmpty == false
            let secret = WebhookSigner.newStandardSecret()
            try store.rotateSigningSecret(endpointID: id, secret: secret, graceSeconds: grace, actor: .cli)
            Console.out("\(secret)\n")
            Console.error(had && grace > 0
                ? "endpoint \(id) signs with this secret and, for \(JSONReader.format(grace / 3_600)) h more, the previous one; give it to the receiver now (it is not shown again)\n"
                : "endpoint \(id) signs with this secret only; give it to the receiver now (it is not shown again)\n")
        case .history(let id):
            guard try store.endpointStatus(id: id) != nil || !(try store.endpointHistory(id: id, limit: 1).isEmpty) else {
                throw DispatcherError.notFound("endpoint '\(id)'")
            }
            let changes = try store.endpointHistory(id: id, limit: 1_000)
            if json {
                for change in changes { Console.out(json: JSONRepresentation.line(JSONRepresentation.endpointChange(change)) + "\n") }
            } else {
                for change in changes {
                    let what = change.changes.map { "\($0.field): \($0.from ?? "–") → \($0.to ?? "–")" }.joined(separator: "; ")
                    Console.out("\(Clock.iso8601(change.at))  \(change.actor)  \(what)\n")
                }
            }
        case .test(let id):
            let configuration = selection.configuration?.serviceConfiguration(logger: .silent)
                ?? DeliveryServiceConfiguration(logger: .silent)
            let record = try EndpointTester(store: store, configuration: configuration).ping(endpointID: id)
            if json {
                Console.out(json: JSONRepresentation.line(JSONRepresentation.eventRecord(record)) + "\n")
            } else {
                Console.out(ShowCommand.render(record))
            }
            if record.deliveries.first?.delivery.status != .succeeded { throw DispatcherError.notFound("a successful answer from endpoint '\(id)'") }
        }
    }

    var urlPolicy: URLPolicy { selection.configuration?.urlPolicy ?? URLPolicy() }

    /// The CLI may change any endpoint, but the config file wins for the ones it names.
    func warnIfManagedByConfig(_ id: String, store: OutboxStore) throws {
        if try store.endpointStatus(id: id)?.isManagedByConfig == true {
            Console.error("note: the config file manages \(id); serve's next start applies the file's version over this change\n")
        }
    }

    /// The config object with the command-line options laid over it.
    func applyOptions(to base: [String: Any]) throws -> [String: Any] {
        var object = base
        if let url = arguments.value("url") { object["url"] = url }
        if let events = arguments.value("events") {
            object["events"] = events == "*" ? [] : events.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        var headers = object["headers"] as? [String: String] ?? [:]
        for name in arguments.allValues("remove-header") { headers[name] = nil }
        for header in arguments.allValues("header") {
            guard let colon = header.firstIndex(of: ":") else { throw UsageError("--header '\(header)' must be NAME:VALUE") }
            headers[String(header[..<colon]).trimmingCharacters(in: .whitespaces)] =
                String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        object["headers"] = headers
        let secretHeaders = (object["secret_headers"] as? [String] ?? []) + arguments.allValues("secret-header")
        object["secret_headers"] = secretHeaders.filter { name in headers.keys.contains { $0.caseInsensitiveCompare(name) == .orderedSame } }
        if let timeout = arguments.value("timeout") { object["timeout_seconds"] = try number(timeout, "--timeout") }
        if let concurrency = arguments.value("max-concurrency") { object["max_concurrency"] = try number(concurrency, "--max-concurrency") }
        if let retry = arguments.value("retry") {
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(retry.utf8)) as? [String: Any] else {
                throw UsageError(#"--retry must be a JSON object such as '{"policy":"one_retry","delay_seconds":5}'"#)
            }
            object["retry"] = parsed
        }
        if let success = arguments.value("success") { object["success"] = success }
        if let ordered = arguments.value("ordered") {
            guard let flag = Bool(ordered) else { throw UsageError("--ordered must be true or false") }
            object["ordered"] = flag
        }
        if let tokenURL = arguments.value("oauth-token-url") {
            var auth: [String: Any] = ["type": "oauth2_client_credentials", "token_url": tokenURL]
            auth["client_id"] = arguments.value("oauth-client-id")
            auth["client_secret"] = arguments.value("oauth-client-secret")
            auth["scope"] = arguments.value("oauth-scope")
            object["auth"] = auth
        } else if arguments.value("oauth-client-id") != nil || arguments.value("oauth-client-secret") != nil {
            throw UsageError("--oauth-client-id and --oauth-client-secret need --oauth-token-url")
        }
        object["signing"] = signing(over: object["signing"] as? [String: Any])
        if let rate = arguments.value("rate-limit") { object["rate_limit_per_second"] = rate == "none" ? nil : try number(rate, "--rate-limit") }
        if let proxy = arguments.value("proxy") { object["proxy"] = proxy == "default" ? nil : proxy }
        if let http2 = arguments.value("http2") {
            guard let flag = Bool(http2) else { throw UsageError("--http2 must be true or false") }
            object["http2"] = flag
        }
        var tls = object["tls"] as? [String: Any] ?? [:]
        for (option, key) in [("tls-client-cert", "client_cert"), ("tls-client-key", "client_key"), ("tls-ca-file", "ca_file"), ("tls-pin", "pinned_public_key")] {
            if let value = arguments.value(option) { tls[key] = value.isEmpty ? nil : value }
        }
        object["tls"] = tls.isEmpty ? nil : tls
        return object
    }

    /// Each signing secret (as configured) with the `whpk_` public key of what it holds here
    /// (an `env:` secret read now); nil when it holds no `whsk_` secret.
    static func publicKeys(of endpoint: Endpoint) -> [(secret: String, key: String?)] {
        endpoint.signingSecrets.map { secret in
            (secret, WebhookSigner.publicKey(ofSecret: EnvironmentReference(secret).map { $0.value ?? "" } ?? secret))
        }
    }

    /// The `signing` object with the --signing-* options laid over it.
    func signing(over base: [String: Any]?) -> [String: Any]? {
        let secrets = arguments.allValues("signing-secret")
        let scheme = arguments.value("signing-scheme"), header = arguments.value("signing-header"), prefix = arguments.value("signing-prefix")
        guard !secrets.isEmpty || scheme != nil || header != nil || prefix != nil else { return base }
        var signing = base ?? [:]
        if !secrets.isEmpty {
            signing["secret"] = nil
            signing["secrets"] = secrets
        }
        if let scheme {
            signing["scheme"] = scheme
            if scheme != "hmac_sha256_hex" { signing["header"] = nil; signing["prefix"] = nil }
        }
        if let header { signing["header"] = header }
        if let prefix { signing["prefix"] = prefix }
        return signing
    }

    /// `new-secret`: a fresh secret of the scheme asked for, printed once.
    func printNewSecret() throws {
        switch arguments.value("signing-scheme") ?? "v1" {
        case "v1":
            Console.out("\(WebhookSigner.newStandardSecret())\n")
        case "v1a":
            guard let pair = WebhookSigner.newEd25519Key() else { throw UsageError("libcrypto could not make an ed25519 key") }
            Console.out("secret:     \(pair.secret)\npublic key: \(pair.publicKey)   (for the receiver)\n")
        case "hmac_sha256_hex":
            Console.out("\(Hex.lowercase(Digest.randomBytes(32)))\n")
        case let other:
            throw UsageError("--signing-scheme '\(other)' is not one of v1, v1a, hmac_sha256_hex")
        }
    }

    func number(_ text: String, _ option: String) throws -> Double {
        guard let value = Double(text), value.isFinite else { throw UsageError("\(option) must be a number, got '\(text)'") }
        return value
    }

    func list(_ store: OutboxStore) throws {
        let statuses = try store.endpointStatuses()
        if json {
            Console.out(json: statuses.map { JSONRepresentation.line(JSONRepresentation.endpointStatus($0)) + "\n" }.joined())
            return
        }
        var table = Table(["ID", "TENANT", "URL", "EVENTS", "ENABLED", "CIRCUIT", "FAILURES", "NOTE"])
        for status in statuses {
            let endpoint = status.endpoint
            table.add([
                "\(endpoint.id)", "\(endpoint.tenantID)", "\(endpoint.url)",
                "\(endpoint.eventFilters.isEmpty ? "*" : endpoint.eventFilters.joined(separator: ","))",
                endpoint.enabled ? "yes" : "no", "\(JSONRepresentation.circuitState(status))", "\(status.consecutiveFailures)",
                "\(status.disabledReason ?? "")",
            ])
        }
        Console.out(table.render())
    }
}
