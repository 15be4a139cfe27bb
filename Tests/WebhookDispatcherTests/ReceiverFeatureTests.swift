import Foundation
import Synchronization
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// What receivers ask of the sender: OAuth tokens, signatures, retry schedules, endpoint
/// health, fair sharing and ordering.
final class ReceiverFeatureTests: DispatcherTestCase {
    /// A receiver whose `/token` issues `token-<n>` valid for `expiresIn` seconds (after
    /// `tokenDelay`, or once `tokenGate` opens).
    func receiverWithTokens(expiresIn: Double = 60, tokenDelay: Double = 0, tokenGate: Gate? = nil,
                            hook: @escaping @Sendable (Int) -> ReceiverAction = { _ in .ok }) throws -> TestReceiver {
        try makeReceiver { path, index in
            if path == "/token" {
                let body = #"{"access_token":"token-\#(index)","token_type":"Bearer","expires_in":\#(expiresIn)}"#
                if let tokenGate { return .wait(for: tokenGate, then: .init(status: 200, body: body)) }
                return tokenDelay > 0 ? .delay(seconds: tokenDelay, then: .init(status: 200, body: body)) : .respond(status: 200, body: body)
            }
            return hook(index)
        }
    }

    func oauth(_ receiver: TestReceiver, path: String = "/token", scope: String? = "webhooks") -> EndpointAuth {
        .oauth2ClientCredentials(OAuth2ClientCredentials(tokenURL: receiver.url(path), clientID: "client-1",
                                                         clientSecret: "s3cr3t value", scope: scope))
    }

    // MARK: - OAuth 2.0 client credentials

    func testFiftyConcurrentDeliveriesToAColdEndpointMakeOneTokenRequest() throws {
        let receiver = try receiverWithTokens(tokenDelay: 0.3)
        var target = endpoint(url: receiver.url())
        target.auth = oauth(receiver)
        target.maxConcurrency = 50
        try addTenant(endpoints: [target])
        let ids = try (0..<50).map { _ in try enqueue().eventID }
        try startService(concurrentRequests: 25)
        for id in ids { try waitForFinalDeliveries(of: id) }

        let tokenRequests = receiver.requests(on: "/token")
        XCTAssertEqual(tokenRequests.count, 1)
        let request = try XCTUnwrap(tokenRequests.first)
        XCTAssertEqual(request.header("Content-Type"), "application/x-www-form-urlencoded")
        XCTAssertEqual(request.header("Authorization"), "Basic " + Data("client-1:s3cr3t value".utf8).base64EncodedString())
        XCTAssertEqual(String(decoding: request.body, as: UTF8.self), "grant_type=client_credentials&scope=webhooks")
        XCTAssertEqual(Set(receiver.requests(on: "/hook").map { $0.header("Authorization") }), ["Bearer token-0"])
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .succeeded, limit: 100)).count, 50)
        let auditLog = try store.withConnection { db in try db.rows("SELECT * FROM attempts").map { "\($0)" }.joined() }
        XCTAssertFalse(auditLog.contains("token-0"), "the token is not in the audit log")
        XCTAssertFalse(auditLog.contains("s3cr3t"), "the client secret is not in the audit log")
    }

    func testASlowTokenEndpointHoldsBackOnlyItsOwnDeliveries() throws {
        // Requests run on one event loop; a token fetch must not stall it. The token is held
        // back until the other tenant's deliveries are done, however long that takes.
        let tokenGate = Gate()
        defer { tokenGate.open() }
        let slow = try receiverWithTokens(tokenGate: tokenGate)
        var withToken = endpoint(url: slow.url())
        withToken.auth = oauth(slow)
        try addTenant(endpoints: [withToken])
        let other = try makeReceiver()
        try addTenant("tenant-b", endpoints: [endpoint("ep-b", tenant: "tenant-b", url: other.url())])
        let waiting = try enqueue().eventID
        let others = try (0..<20).map { _ in try enqueue(tenant: "tenant-b").eventID }
        try startService(concurrentRequests: 4)

        for id in others { try waitForFinalDeliveries(of: id) }
        XCTAssertEqual(try store.eventRecord(eventID: waiting)?.deliveries.first?.delivery.status, .delivering,
                       "the other tenant's 20 deliveries finished while the token was still being fetched")
        tokenGate.open()
        XCTAssertEqual(try waitForFinalDeliveries(of: waiting).deliveries.first?.delivery.status, .succeeded)
        XCTAssertEqual(slow.requests(on: "/hook").first?.header("Authorization"), "Bearer token-0")
    }

    func testTheClientSecretMayComeFromTheEnvironment() throws {
        setenv("DISPATCHER_TEST_CLIENT_SECRET", "from-the-environment", 1)
        defer { unsetenv("DISPATCHER_TEST_CLIENT_SECRET") }
        let receiver = try receiverWithTokens()
        var target = endpoint(url: receiver.url())
        target.auth = .oauth2ClientCredentials(.init(tokenURL: receiver.url("/token"), clientID: "client-1",
                                                     clientSecret: "env:DISPATCHER_TEST_CLIENT_SECRET"))
        try addTenant(endpoints: [target])
        try startService()
        try waitForFinalDeliveries(of: enqueue().eventID)
        XCTAssertEqual(receiver.requests(on: "/token").first?.header("Authorization"),
                       "Basic " + Data("client-1:from-the-environment".utf8).base64EncodedString())
        XCTAssertEqual(receiver.requests(on: "/hook").count, 1)
    }

    func testAnExpiredTokenIsReplaced() throws {
        let receiver = try receiverWithTokens(expiresIn: 1)
        var target = endpoint(url: receiver.url())
        target.auth = oauth(receiver)
        try addTenant(endpoints: [target])
        try startService()
        try waitForFinalDeliveries(of: enqueue().eventID)
        XCTAssertEqual(receiver.requests(on: "/token").count, 1)
        // Keep delivering until the one-second token has been renewed (bounded).
        try waitUntil("a second token is fetched", timeout: 10) {
            try waitForFinalDeliveries(of: enqueue().eventID)
            return receiver.requests(on: "/token").count == 2
        }
        XCTAssertEqual(receiver.requests(on: "/hook").last?.header("Authorization"), "Bearer token-1")
    }

    func testA401InvalidatesTheTokenAndRetriesAtOnceWithAFreshOne() throws {
        let receiver = try receiverWithTokens { index in index == 0 ? .respond(status: 401, body: #"{"error":"expired"}"#) : .ok }
        var target = endpoint(url: receiver.url(), retry: .oneRetry(delaySeconds: 60))
        target.auth = oauth(receiver)
        try addTenant(endpoints: [target])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        let delivery = try XCTUnwrap(record.deliveries.first)
        XCTAssertEqual(delivery.delivery.status, .succeeded)
        XCTAssertEqual(delivery.attempts.map(\.responseStatus), [401, 200])
        XCTAssertEqual(receiver.requests(on: "/hook").map { $0.header("Authorization") }, ["Bearer token-0", "Bearer token-1"])
        XCTAssertEqual(receiver.requests(on: "/token").count, 2)
        XCTAssertEqual(delivery.attempts.first?.requestHeaders.first { $0.name == "Authorization" }?.value, "***")
    }

    func testAFailingTokenEndpointFailsTheAttemptWithKindAuth() throws {
        let cases: [(String, ReceiverAction, String)] = [
            ("/status", .respond(status: 500, body: "{}"), "HTTP 500"),
            ("/notjson", .respond(status: 200, contentType: "text/html", body: "<html>"), "JSON"),
            ("/notoken", .respond(status: 200, body: #"{"expires_in":60}"#), "access_token"),
            ("/slow", .delay(seconds: 5, then: .init(status: 200)), "timeout"),
        ]
        let receiver = try makeReceiver { path, _ in cases.first { $0.0 == path }?.1 ?? .ok }
        try addTenant(endpoints: cases.map { path, _, _ in
            var target = endpoint(String(path.dropFirst()), url: receiver.url("/hook"), retry: .oneRetry(delaySeconds: 0), timeout: 0.5)
            target.auth = oauth(receiver, path: path)
            return target
        })
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        for (path, _, message) in cases {
            let delivery = try XCTUnwrap(record.deliveries.first { $0.delivery.endpointID == String(path.dropFirst()) })
            XCTAssertEqual(delivery.delivery.status, .failed, path)
            XCTAssertEqual(delivery.attempts.count, 2, "\(path): the retry policy applies")
            XCTAssertEqual(delivery.attempts.first?.errorKind, .auth, path)
            XCTAssertTrue(delivery.attempts.first?.errorMessage?.contains(message) ?? false, "\(path): \(delivery.attempts.first?.errorMessage ?? "")")
            XCTAssertFalse(delivery.attempts.first?.errorMessage?.contains("s3cr3t") ?? true)
        }
        XCTAssertEqual(receiver.requests(on: "/hook").count, 0, "nothing is sent without a token")
    }

    func testTheDestinationGuardAppliesToTokenURLs() throws {
        let receiver = try receiverWithTokens()
        var target = endpoint(url: "https://hooks.example.invalid/x")
        target.auth = oauth(receiver)
        try addTenant(endpoints: [target])
        try startService(policy: DestinationPolicy(), urlPolicy: URLPolicy(requireHTTPS: false))
        let attempt = try XCTUnwrap(waitForFinalDeliveries(of: enqueue().eventID).deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.errorKind, .auth)
        XCTAssertTrue(attempt.errorMessage?.contains("blocked") ?? false, attempt.errorMessage ?? "")
        XCTAssertEqual(receiver.connectionsAccepted, 0)
    }

    // MARK: - Signatures

    func testTheStandardWebhooksTestVector() {
        XCTAssertEqual(WebhookSigner.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330,
                                               body: Array(#"{"test": 2432232314}"#.utf8), secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]),
                       "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let two = WebhookSigner.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, body: Array(#"{"test": 2432232314}"#.utf8),
                                          secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()])
        XCTAssertEqual(two.split(separator: " ").count, 2)
        XCTAssertTrue(two.hasPrefix("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"))
        XCTAssertNotNil(SigningSecret.problem(with: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        XCTAssertNotNil(SigningSecret.problem(with: "whsec_***"))
    }

    func testRetriesCarryTheSameIDWithAFreshTimestampAndSignature() throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let receiver = try makeReceiver { path, index in index == 0 ? .respond(status: 500) : .ok }
        var signed = endpoint("signed", url: receiver.url("/signed"), retry: .schedule(.init(delaysSeconds: [1.2])))
        signed.signingSecrets = [secret]
        var exact = endpoint("exact", url: receiver.url("/exact"), retry: .oneRetry(delaySeconds: 1.2))
        exact.signingSecrets = [secret]
        try addTenant(endpoints: [signed, exact])
        try startService()
        let event = try enqueue()
        try waitForFinalDeliveries(of: event.eventID)

        for path in ["/signed", "/exact"] {
            let requests = receiver.requests(on: path)
            XCTAssertEqual(requests.count, 2, path)
            for request in requests {
                let timestamp = try XCTUnwrap(request.header("webhook-timestamp").flatMap(Int.init))
                XCTAssertEqual(request.header("webhook-id"), event.eventID)
                XCTAssertEqual(request.header("webhook-signature"),
                               WebhookSigner.signature(id: event.eventID, timestamp: timestamp, body: request.body, secrets: [secret]),
                               "\(path): the receiver can verify the signature")
            }
            let timestamps = requests.map { $0.header("webhook-timestamp") }
            if path == "/signed" {
                XCTAssertNotEqual(timestamps[0], timestamps[1], "a Standard Webhooks retry is signed afresh")
            } else {
                XCTAssertEqual(timestamps[0], timestamps[1], "one_retry repeats the request exactly")
                XCTAssertEqual(requests[0].headers, requests[1].headers)
            }
        }
    }

    /// The ed25519 (`v1a`) and hex HMAC schemes, checked by Python's `cryptography` and `hmac`
    /// on the bytes the receiver got: nothing of ours on the verifying side.
    func testOtherSignatureSchemesAreVerifiedByIndependentImplementations() throws {
        let python = "/usr/bin/python3"
        guard try Self.runTool([python, "-c", "import cryptography"]).status == 0 else {
            return XCTFail("Debian's python3-cryptography is needed (scripts/with-deps installs it)")
        }
        let pair = try XCTUnwrap(WebhookSigner.newEd25519Key())
        let hubSecret = "It's a Secret to Everybody"
        let receiver = try makeReceiver { _, _ in .ok }
        var ed = endpoint("ed", url: receiver.url("/ed"))
        ed.signingSecrets = [pair.secret]
        ed.signatureScheme = .standardWebhooksEd25519
        var hub = endpoint("hub", url: receiver.url("/hub"))
        hub.signingSecrets = [hubSecret]
        hub.signatureScheme = .hmacSHA256Hex(header: "X-Hub-Signature-256", prefix: "sha256=")
        try addTenant(endpoints: [ed, hub])
        XCTAssertEqual(try store.endpoint(id: "ed")?.signatureScheme, .standardWebhooksEd25519, "the store keeps the scheme")
        XCTAssertEqual(try store.endpoint(id: "hub"), hub)
        try startService()
        let event = try enqueue()
        try waitForFinalDeliveries(of: event.eventID)

        let edRequest = try XCTUnwrap(receiver.requests(on: "/ed").first)
        let hubRequest = try XCTUnwrap(receiver.requests(on: "/hub").first)
        XCTAssertNil(hubRequest.header("webhook-signature"))
        let folder = directory.file("signed")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(edRequest.body).write(to: URL(fileURLWithPath: folder + "/ed.body"))
        try Data(hubRequest.body).write(to: URL(fileURLWithPath: folder + "/hub.body"))
        let script = """
            import base64, hashlib, hmac, sys
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            folder, public_key, msg_id, timestamp, signature, hub_secret, hub_signature = sys.argv[1:8]
            body = open(folder + "/ed.body", "rb").read()
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
            version, encoded = signature.split(",", 1)
            assert version == "v1a", version
            key.verify(base64.b64decode(encoded), f"{msg_id}.{timestamp}.".encode() + body)  # raises when wrong
            try:
                key.verify(base64.b64decode(encoded), f"{msg_id}.{timestamp}.".encode() + body + b" ")
                sys.exit("a changed body verified")
            except Exception:
                pass
            expected = "sha256=" + hmac.new(hub_secret.encode(), open(folder + "/hub.body", "rb").read(), hashlib.sha256).hexdigest()
            assert hmac.compare_digest(expected, hub_signature), (expected, hub_signature)
            print("verified")
            """
        let result = try Self.runTool([python, "-c", script, folder, pair.publicKey,
                                       edRequest.header("webhook-id") ?? "", edRequest.header("webhook-timestamp") ?? "",
                                       edRequest.header("webhook-signature") ?? "", hubSecret, hubRequest.header("X-Hub-Signature-256") ?? ""])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "verified\n")
        // Our own verifier (dispatcher receive --secret whpk_...) agrees, and refuses a changed body.
        XCTAssertTrue(SignatureVerifier.verify(id: edRequest.header("webhook-id"), timestamp: edRequest.header("webhook-timestamp"),
                                               signature: edRequest.header("webhook-signature"), body: edRequest.body, secret: pair.publicKey))
        XCTAssertFalse(SignatureVerifier.verify(id: edRequest.header("webhook-id"), timestamp: edRequest.header("webhook-timestamp"),
                                                signature: edRequest.header("webhook-signature"), body: edRequest.body + [0x20], secret: pair.publicKey))
        // GitHub's documented example.
        XCTAssertEqual(WebhookSigner.signatureHeader(scheme: hub.signatureScheme, id: "", timestamp: 0, body: Array("Hello, World!".utf8),
                                                     secrets: [hubSecret])?.value,
                       "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    }

    /// `endpoints new-secret` makes a v1a key pair, `add` takes the secret, and `public-key`
    /// gives back the public half for the receiver.
    func testTheCLIMakesEd25519KeysAndShowsTheirPublicHalf() throws {
        let made = try run(["endpoints", "new-secret", "--signing-scheme", "v1a"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let words = made.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        let secret = try XCTUnwrap(words.first { $0.hasPrefix("whsk_") })
        let publicKey = try XCTUnwrap(words.first { $0.hasPrefix("whpk_") })
        let added = try run(["endpoints", "add", "--db", databaseLocation, "--tenant", "tenant-a", "--id", "ed",
                             "--url", "https://example.com/hook", "--signing-scheme", "v1a", "--signing-secret", secret])
        XCTAssertEqual(added.status, 0, added.stderr)
        let shown = try run(["endpoints", "public-key", "ed", "--db", databaseLocation])
        XCTAssertEqual(shown.stdout, publicKey + "\n", shown.stderr)
        let described = try run(["endpoints", "show", "ed", "--json", "--db", databaseLocation])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(described.stdout.utf8)) as? [String: Any], described.stderr)
        XCTAssertEqual(object["public_keys"] as? [String], [publicKey], "endpoints show gives the public key to hand to the receiver")
        XCTAssertFalse(described.stdout.contains(secret))
        let listed = try run(["endpoints", "list", "--json", "--db", databaseLocation])
        XCTAssertTrue(listed.stdout.contains(#""scheme":"v1a""#), listed.stdout)
        XCTAssertFalse(listed.stdout.contains(secret), "the secret is never listed")
        let wrong = try run(["endpoints", "update", "ed", "--db", databaseLocation, "--signing-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("whsk_"), wrong.stderr)
    }

    /// Each scheme takes only its own kind of secret, and the config says why not.
    func testSigningConfigIsCheckedPerScheme() throws {
        func problem(_ signing: [String: Any], headers: [String: String] = [:]) -> String? {
            do {
                _ = try Endpoint.fromConfigObject(["id": "e", "url": "https://example.com/h", "signing": signing, "headers": headers], tenantID: "t")
                return nil
            } catch {
                return "\(error)"
            }
        }
        let pair = try XCTUnwrap(WebhookSigner.newEd25519Key())
        XCTAssertNil(problem(["scheme": "v1a", "secret": pair.secret]))
        XCTAssertNotNil(problem(["scheme": "v1a", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]))
        XCTAssertNotNil(problem(["scheme": "v1", "secret": pair.secret]))
        XCTAssertNil(problem(["scheme": "hmac_sha256_hex", "secret": "a long enough secret"]))
        XCTAssertNotNil(problem(["scheme": "hmac_sha256_hex", "secrets": ["a long enough secret", "another long secret"]]), "one header, one secret")
        XCTAssertNotNil(problem(["scheme": "hmac_sha256_hex", "secret": "short"]))
        XCTAssertNotNil(problem(["scheme": "hmac_sha256_hex", "secret": "a long enough secret", "header": "webhook-signature"]), "reserved")
        XCTAssertNotNil(problem(["scheme": "hmac_sha256_hex", "secret": "a long enough secret"], headers: ["X-Hub-Signature-256": "x"]))
        XCTAssertNotNil(problem(["scheme": "v1", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "header": "X-Sig"]))
        XCTAssertNotNil(problem(["scheme": "rsa", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]))
        // The config shape round-trips, the default scheme unnamed as before.
        let hub = try Endpoint.fromConfigObject(["id": "e", "url": "https://example.com/h",
                                                 "signing": ["scheme": "hmac_sha256_hex", "secret": "a long enough secret", "header": "X-Signature"]], tenantID: "t")
        XCTAssertEqual(try Endpoint.fromConfig(hub.configJSON, tenantID: "t"), hub)
        XCTAssertEqual(hub.signatureScheme, .hmacSHA256Hex(header: "X-Signature", prefix: "sha256="))
    }

    // MARK: - Trace context

    /// An event enqueued with the producer's traceparent: each attempt sends the producer's
    /// trace id and flags under a span id of its own, tracestate unchanged, and the audit log
    /// and `show` keep them.
    func testEachAttemptContinuesTheProducersTrace() throws {
        let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let receiver = try makeReceiver { _, index in index == 0 ? .respond(status: 500) : .ok }
        try addTenant(endpoints: [endpoint(url: receiver.url("/traced"), retry: .schedule(.init(delaysSeconds: [0.01])))])
        let trace = try TraceContext(traceparent: producer, tracestate: "congo=t61rcWkgMzE")
        let event = try store.enqueue(NewEvent(tenantID: "tenant-a", type: "order.created", json: "{}", traceContext: trace))
        try startService()
        let record = try waitForFinalDeliveries(of: event.eventID)
        XCTAssertEqual(record.event.traceContext, trace)

        let sent = receiver.requests(on: "/traced").compactMap { $0.header("traceparent") }
        XCTAssertEqual(sent.count, 2)
        for traceparent in sent {
            XCTAssertNil(TraceContext.problem(withTraceparent: traceparent), traceparent)
            let parts = traceparent.split(separator: "-")
            XCTAssertEqual(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "the producer's trace id")
            XCTAssertEqual(parts[3], "01", "the producer's flags")
            XCTAssertNotEqual(parts[2], "00f067aa0ba902b7", "a span of its own")
        }
        XCTAssertNotEqual(sent[0], sent[1], "each attempt is a span of its own")
        XCTAssertEqual(receiver.requests(on: "/traced").map { $0.header("tracestate") }, ["congo=t61rcWkgMzE", "congo=t61rcWkgMzE"])
        let recorded = try XCTUnwrap(record.deliveries.first?.attempts).map { $0.requestHeaders.first { $0.hasName("traceparent") }?.value }
        XCTAssertEqual(recorded, sent, "the audit log records what was sent")
        let shown = try run(["show", event.eventID, "--db", databaseLocation])
        XCTAssertTrue(shown.stdout.contains("trace     4bf92f3577b34da6a3ce929d0e0e4736"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains(sent[0]), "show prints each attempt's traceparent")
    }

    /// Malformed trace context is refused on every way in, with the reason.
    func testMalformedTraceContextIsRefused() throws {
        for bad in ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Injected: 1"] {
            XCTAssertThrowsError(try TraceContext(traceparent: bad), bad)
            XCTAssertThrowsError(try NDJSONEvent.parse(Array(#"{"tenant":"t","type":"a.b","traceparent":"\#(bad)","data":{}}"#.utf8)), bad)
        }
        XCTAssertThrowsError(try TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "a=b\nc"))
        let parsed = try NDJSONEvent.parse(Array(#"{"tenant":"t","type":"a.b","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"x=y","data":{}}"#.utf8))
        XCTAssertEqual(parsed.traceContext?.tracestate, "x=y")
        try addTenant(endpoints: [])
        let refused = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "a.b", "--data", "{}", "--traceparent", "00-zz"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("traceparent"), refused.stderr)
        let accepted = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "a.b", "--data", "{}",
                                "--traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
        XCTAssertEqual(accepted.status, 0, accepted.stderr)
        let id = accepted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try store.eventRecord(eventID: id)?.event.traceContext?.traceID, "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    // MARK: - Operational events

    /// With an operations tenant, a circuit that opens and closes and a delivery that fails for
    /// good each become one event for its endpoints, delivered (and signed) like any; trouble
    /// delivering them raises none; enabling an endpoint the dispatcher disabled says so.
    func testOperationalEventsReachTheOperationsTenantWithoutLoops() throws {
        let ops = try makeReceiver { _, _ in .ok }
        let opsBroken = try makeReceiver { _, _ in .respond(status: 500) }
        let flaky = try makeReceiver { _, index in index < 2 ? .respond(status: 500) : .ok }
        let doomed = try makeReceiver { _, _ in .respond(status: 500) }
        var opsHook = endpoint("ops-hook", tenant: "ops", url: ops.url("/ops"))
        opsHook.signingSecrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        var slack = endpoint("ops-slack", tenant: "ops", url: ops.url("/slack"))
        slack.bodyFormat = .slack
        try addTenant("ops", endpoints: [opsHook, endpoint("ops-broken", tenant: "ops", url: opsBroken.url("/ops")), slack])
        XCTAssertEqual(try store.endpoint(id: "ops-slack")?.bodyFormat, .slack)
        var circuit = endpoint("flaky", url: flaky.url("/flaky"), retry: .schedule(.init(delaysSeconds: [0.01, 0.01, 0.01, 0.01])))
        circuit.circuit = CircuitPolicy(failureThreshold: 2, cooldownSeconds: 0.3, disableAfterSeconds: 3_600)
        try addTenant(endpoints: [circuit, endpoint("doomed", url: doomed.url("/doomed"), retry: .oneRetry(delaySeconds: 0))])
        let opsStore = try openStore(options: StoreOptions(operationsTenant: "ops"))
        let service = DeliveryService(store: opsStore, configuration: DeliveryServiceConfiguration(
            concurrentRequests: 4, pollInterval: 0.02, leaseSeconds: 30,
            destinationPolicy: DestinationPolicy(allowPrivateAddresses: true), urlPolicy: URLPolicy(requireHTTPS: false), logger: .silent))
        try service.start()
        addTeardownBlock { service.stop() }
        try waitForFinalDeliveries(of: try enqueue().eventID)
        waitUntil("three operational events reach the operations endpoint") { ops.requests(on: "/ops").count >= 3 }
        let opsEvents = { try self.store.deliveries(matching: DeliveryFilter(tenantID: "ops", limit: 100)) }
        try waitUntil("every operational delivery is final", timeout: 20) { try opsEvents().allSatisfy { $0.status.isFinal } }

        let types = Set(try opsEvents().map(\.eventType))
        XCTAssertEqual(types, ["operations.endpoint.circuit_opened", "operations.endpoint.circuit_closed", "operations.delivery.exhausted"])
        XCTAssertEqual(try opsEvents().count, 9, "three events, each to the three operations endpoints, and nothing about their failures")
        waitUntil("the Slack endpoint has all three") { ops.requests(on: "/slack").count >= 3 }
        let texts = try ops.requests(on: "/slack").map { request -> String in
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            XCTAssertEqual(Array(object.keys), ["text"])
            return try XCTUnwrap(object["text"] as? String)
        }
        XCTAssertTrue(texts.contains { $0.contains("The circuit of endpoint `flaky` (tenant `tenant-a`) opened after 2 failures") }, "\(texts)")
        XCTAssertTrue(texts.contains { $0.contains("to endpoint `doomed` (tenant `tenant-a`) failed for good after 2 attempts") }, "\(texts)")
        let bodies = ops.requests(on: "/ops").map { String(decoding: $0.body, as: UTF8.self) }
        XCTAssertTrue(bodies.contains { $0.contains(#""type":"operations.endpoint.circuit_opened""#) && $0.contains(#""endpoint_id":"flaky""#) }, "\(bodies)")
        XCTAssertTrue(bodies.contains { $0.contains(#""type":"operations.delivery.exhausted""#) && $0.contains(#""endpoint_id":"doomed""#)
                                        && $0.contains(#""attempts":2"#) && $0.contains(#""last_status":500"#) }, "\(bodies)")
        XCTAssertTrue(ops.requests(on: "/ops").allSatisfy { $0.header("webhook-signature")?.hasPrefix("v1,") == true }, "signed like any delivery")

        try opsStore.withConnection { db in try db.execute("UPDATE endpoints SET enabled = 0, disabled_reason = 'failing since then' WHERE id = 'doomed'") }
        try opsStore.setEndpointEnabled(id: "doomed", enabled: true)
        try opsStore.setEndpointEnabled(id: "flaky", enabled: false)
        try opsStore.setEndpointEnabled(id: "flaky", enabled: true)
        let recovered = try opsEvents().filter { $0.eventType == "operations.endpoint.recovered" }
        XCTAssertEqual(recovered.count, 3, "one event, to each operations endpoint; enabling what was disabled by hand says nothing")
    }

    // MARK: - Rate limits

    /// 50 a second across two worker pools on one database (as two `serve` processes): the
    /// receiver never sees more than 55 in any one second, and the rate overall is within 10%.
    func testARateLimitHoldsAcrossWorkerPoolsSharingTheDatabase() throws {
        let arrivals = Mutex<[Date]>([])
        let receiver = try makeReceiver { _, _ in
            arrivals.withLock { $0.append(Date()) }
            return .ok
        }
        var limited = endpoint("limited", url: receiver.url("/limited"))
        limited.rateLimitPerSecond = 50
        limited.maxConcurrency = 16
        try addTenant(endpoints: [limited])
        XCTAssertEqual(try store.endpoint(id: "limited")?.rateLimitPerSecond, 50)
        _ = try store.enqueue(contentsOf: (0..<500).map { NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"n":\#($0)}"#) })
        let other = try openStore()
        for pool in [store!, other] {
            let service = DeliveryService(store: pool, configuration: DeliveryServiceConfiguration(
                concurrentRequests: 16, pollInterval: 0.02, leaseSeconds: 30,
                destinationPolicy: DestinationPolicy(allowPrivateAddresses: true), urlPolicy: URLPolicy(requireHTTPS: false), logger: .silent))
            try service.start()
            addTeardownBlock { service.stop() }
        }
        waitUntil("500 deliveries arrive", timeout: 30) { arrivals.withLock { $0.count } >= 500 }
        let times = arrivals.withLock { $0 }.sorted()
        var busiest = 0, start = 0
        for end in times.indices {
            while times[end].timeIntervalSince(times[start]) >= 1 { start += 1 }
            busiest = max(busiest, end - start + 1)
        }
        // The bucket spaces the claims: at most 55 in any second (5 held, 50 refilled). The
        // receiver sees arrivals, which add each transfer's own delay: a claim held up while the
        // next one is not brings them closer, by a request at a time (56 seen once in the full
        // suite on PostgreSQL). A tenth of a second of that allowed; two pools each keeping a
        // limit of their own would show about 100.
        XCTAssertLessThanOrEqual(busiest, 60, "the most requests in one second")
        let rate = Double(times.count - 1) / times[times.count - 1].timeIntervalSince(times[0])
        XCTAssertEqual(rate, 50, accuracy: 5, "requests a second overall")
    }

    /// A 429 with Retry-After holds the endpoint's other deliveries too, not only its own.
    func testA429WithRetryAfterHoldsTheWholeEndpoint() throws {
        let arrivals = Mutex<[Date]>([])
        let receiver = try makeReceiver { _, index in
            arrivals.withLock { $0.append(Date()) }
            return index == 0 ? .respond(status: 429, headers: [HeaderField("Retry-After", "1")]) : .ok
        }
        var throttled = endpoint("throttled", url: receiver.url("/throttled"), retry: .schedule(.init(delaysSeconds: [0.01])))
        throttled.maxConcurrency = 1
        try addTenant(endpoints: [throttled])
        let events = try store.enqueue(contentsOf: (0..<3).map { NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"n":\#($0)}"#) })
        try startService()
        for event in events { try waitForFinalDeliveries(of: event.eventID) }
        let times = arrivals.withLock { $0 }
        XCTAssertEqual(times.count, 4, "three deliveries, one of them twice")
        XCTAssertGreaterThanOrEqual(times[1].timeIntervalSince(times[0]), 0.9, "the next request waited for the Retry-After")
    }

    // MARK: - Retry policies

    func testSchedulesMaxAgeAndRetryAfter() {
        let schedule = RetryPolicy.schedule(.init(delaysSeconds: [5, 300, 1800]))
        XCTAssertEqual((1...4).map { schedule.delayAfterFailure(attemptsMade: $0) }, [5, 300, 1800, nil])
        XCTAssertEqual(schedule.maxAttempts, 4)
        let aged = RetryPolicy.schedule(.init(delaysSeconds: [5, 300], maxAgeSeconds: 100))
        XCTAssertEqual(aged.delayAfterFailure(attemptsMade: 1, ageSeconds: 10), 5)
        XCTAssertNil(aged.delayAfterFailure(attemptsMade: 2, ageSeconds: 10), "the next attempt would come after max_age")
        let exponential = RetryPolicy.exponential(.init(initialSeconds: 1, factor: 2, maxSeconds: 60, maxAttempts: 100, maxAgeSeconds: 30))
        XCTAssertNil(exponential.delayAfterFailure(attemptsMade: 3, ageSeconds: 29, unitRandom: 0.9))
        XCTAssertEqual(exponential.delayAfterFailure(attemptsMade: 1, retryAfterSeconds: 20, unitRandom: 0.5), 20)
        let unbounded = RetryPolicy.exponential(.init(initialSeconds: 1, factor: 2, maxSeconds: 60, maxAttempts: 100))
        XCTAssertEqual(unbounded.delayAfterFailure(attemptsMade: 1, retryAfterSeconds: 600, unitRandom: 0.5), 60, "capped at max_seconds")
        XCTAssertEqual(schedule.delayAfterFailure(attemptsMade: 1, retryAfterSeconds: 60), 60)
        XCTAssertEqual(schedule.delayAfterFailure(attemptsMade: 1, retryAfterSeconds: 99_999), 1800, "capped at the longest wait")
        XCTAssertEqual(RetryAfter.seconds(from: "120"), 120)
        let now = Date(timeIntervalSince1970: 784_111_777)
        XCTAssertEqual(RetryAfter.seconds(from: "Sun, 06 Nov 1994 08:49:37 GMT", now: now.addingTimeInterval(-30)), 30)
        XCTAssertNil(RetryAfter.seconds(from: "soon"))
    }

    func testRetryAfterOn503IsHonoured() throws {
        let receiver = try makeReceiver { _, index in
            index == 0 ? .respond(status: 503, headers: [HeaderField("Retry-After", "30")]) : .ok
        }
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: .schedule(.init(delaysSeconds: [0.1, 3_600])))])
        try startService()
        let event = try enqueue()
        try waitUntil("the first attempt is recorded") { try store.eventRecord(eventID: event.eventID)?.deliveries.first?.attempts.count == 1 }
        let attempt = try XCTUnwrap(store.eventRecord(eventID: event.eventID)?.deliveries.first?.attempts.first)
        guard case .retryScheduled(let at) = attempt.verdict else { return XCTFail("\(attempt.verdict)") }
        XCTAssertEqual(at.timeIntervalSince(attempt.startedAt), 30, accuracy: 2, "Retry-After 30 outweighs the 0.1 s schedule")
    }

    func testConfigReadsTheNewRetryPoliciesAndReceiverOptions() throws {
        let configuration = try DispatcherConfiguration.parse(Data("""
            {"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h",
              "retry": {"policy": "schedule", "delays_seconds": [5, 300, 1800], "max_age_seconds": 86400},
              "auth": {"type": "oauth2_client_credentials", "token_url": "https://auth.example/token",
                       "client_id": "c", "client_secret": "env:CLIENT_SECRET"},
              "signing": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "env:NEXT_SECRET"]},
              "ordered": true, "circuit": {"failure_threshold": 3, "cooldown_seconds": 30, "disable_after_seconds": 3600}}]}]}
            """.utf8))
        let endpoint = try XCTUnwrap(configuration.endpoints.first)
        XCTAssertEqual(endpoint.retry, .schedule(.init(delaysSeconds: [5, 300, 1800], maxAgeSeconds: 86400)))
        XCTAssertEqual(endpoint.signingSecrets.count, 2)
        XCTAssertTrue(endpoint.ordered)
        XCTAssertEqual(endpoint.circuit, CircuitPolicy(failureThreshold: 3, cooldownSeconds: 30, disableAfterSeconds: 3600))
        try store.upsert(tenants: configuration.tenants, endpoints: configuration.endpoints)
        XCTAssertEqual(try store.endpoint(id: "e"), endpoint, "the store keeps every option")
        XCTAssertThrowsError(try configuration.checkEnvironment()) { XCTAssertTrue("\($0)".contains("_SECRET is not set"), "\($0)") }

        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "signing": {"secret": "plain"}}]}]}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("tenants[0].endpoints[0].signing.secret"), "\($0)")
        }
        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "auth": {"type": "oauth2_client_credentials", "token_url": "http://auth.example/t", "client_id": "c", "client_secret": "s"}}]}]}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("auth.token_url"), "\($0)")
        }
    }

    // MARK: - Endpoint health

    func testTheCircuitOpensProbesOncePerCooldownAndClosesOnSuccess() throws {
        let healthy = Locked(false)
        let receiver = try makeReceiver { _, _ in healthy.value ? .ok : .respond(status: 500) }
        var flaky = endpoint(url: receiver.url(), retry: .schedule(.init(delaysSeconds: [0.05, 0.05, 0.05])))
        flaky.circuit = CircuitPolicy(failureThreshold: 3, cooldownSeconds: 0.4, disableAfterSeconds: 3_600)
        try addTenant(endpoints: [flaky])
        let ids = try (0..<10).map { _ in try enqueue().eventID }
        try startService()

        try waitUntil("the circuit opens") { try store.endpointStatuses().first?.isCircuitOpen() == true }
        let requestsWhenOpened = receiver.requests.count
        XCTAssertLessThanOrEqual(requestsWhenOpened, 3 + 4, "at most the attempts already in flight pass the threshold")
        // While failing, probes come one per cool-down.
        waitUntil("two probes have failed") { receiver.requests.count >= requestsWhenOpened + 2 }
        let statuses = try store.deliveries(matching: DeliveryFilter(limit: 100))
        XCTAssertEqual(statuses.filter { $0.status == .failed }.count, 0, "waiting deliveries are not failed")
        XCTAssertEqual(try store.endpointStatuses().first.map { JSONRepresentation.circuitState($0) }.map { ["open", "half_open"].contains($0) }, true)

        healthy.value = true
        for id in ids { try waitForFinalDeliveries(of: id) }
        let status = try XCTUnwrap(store.endpointStatuses().first)
        XCTAssertEqual(status.consecutiveFailures, 0)
        XCTAssertEqual(JSONRepresentation.circuitState(status), "closed")
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .succeeded, limit: 100)).count, 10)
    }

    func testAnEndpointFailingLongerThanAllowedIsDisabledUntilEnabled() throws {
        let receiver = try makeReceiver { _, _ in .respond(status: 500) }
        let config = try writeConfig(url: receiver.url(), endpointExtra: """
            , "retry": {"policy": "schedule", "delays_seconds": [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]},
              "circuit": {"failure_threshold": 100, "cooldown_seconds": 1, "disable_after_seconds": 1}
            """)
        let log = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: log)
        try waitUntil("serve stored the endpoint") { try store.endpoint(id: "ep-1") != nil }
        let event = try enqueue()
        try waitUntil("the endpoint is disabled") { try store.endpoint(id: "ep-1")?.enabled == false }
        let status = try XCTUnwrap(store.endpointStatuses().first)
        XCTAssertTrue(status.disabledReason?.contains("failing without a success since") ?? false, status.disabledReason ?? "")
        waitUntil("the log says why") { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("endpoint ep-1 disabled: failing") == true }
        let pending = try XCTUnwrap(store.eventRecord(eventID: event.eventID)?.deliveries.first?.delivery)
        XCTAssertEqual(pending.status, .pending, "its delivery waits")
        XCTAssertEqual(try stopProcess(serve, signal: SIGTERM), 0)

        let listed = try run(["endpoints", "list", "--json", "--config", config])
        XCTAssertTrue(listed.stdout.contains(#""enabled":false"#), listed.stdout)
        XCTAssertTrue(listed.stdout.contains("failing without a success"), listed.stdout)
        // A restart with the same config does not re-enable it; the command does.
        let restartLog = directory.file("restarted.log")
        let restarted = try startServe(config: config, logFile: restartLog)
        waitUntil("serve restarted") { (try? String(contentsOfFile: restartLog, encoding: .utf8))?.contains("delivering with") == true }
        XCTAssertEqual(try store.endpoint(id: "ep-1")?.enabled, false)
        XCTAssertEqual(try run(["endpoints", "enable", "ep-1", "--config", config]).status, 0)
        XCTAssertEqual(try store.endpoint(id: "ep-1")?.enabled, true)
        XCTAssertNil(try store.endpointStatuses().first?.disabledReason)
        try waitUntil("the delivery is attempted again") { try store.eventRecord(eventID: event.eventID)!.deliveries.first!.delivery.attemptCount > pending.attemptCount }
        XCTAssertEqual(try stopProcess(restarted, signal: SIGTERM), 0)
    }

    func testEndpointsListShowsNoSecrets() throws {
        var secretive = endpoint(url: "https://x.example/h", headers: ["Authorization": "Bearer list-secret-1", "X-Plain": "shown"])
        secretive.auth = .oauth2ClientCredentials(.init(tokenURL: "https://auth.example/t", clientID: "c", clientSecret: "list-secret-2"))
        secretive.signingSecrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        try addTenant(endpoints: [secretive])
        for arguments in [["endpoints", "list", "--json"], ["endpoints", "list"]] {
            let output = try run(arguments + ["--db", databaseLocation])
            XCTAssertEqual(output.status, 0, output.stderr)
            for secret in ["list-secret-1", "list-secret-2", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
                XCTAssertFalse(output.stdout.contains(secret), "\(arguments) shows \(secret)")
            }
            XCTAssertTrue(output.stdout.contains("ep-1"))
        }
        XCTAssertTrue(try run(["endpoints", "list", "--json", "--db", databaseLocation]).stdout.contains(#""X-Plain":"shown""#))
        XCTAssertEqual(try run(["endpoints", "enable", "nope", "--db", databaseLocation]).status, 1)
        XCTAssertEqual(try run(["endpoints", "frobnicate", "--db", databaseLocation]).status, 2)
    }

    // MARK: - Fairness and ordering

    func testAHangingEndpointDoesNotHoldUpAnotherTenant() throws {
        // A answers nothing until the test is done with it; its timeout is far beyond the test.
        let release = Gate()
        defer { release.open() }
        let hanging = try makeReceiver { _, _ in .wait(for: release, then: .init(status: 200)) }
        let healthy = try makeReceiver()
        try addTenant("slow", endpoints: [endpoint("a", tenant: "slow", url: hanging.url(), timeout: 25)])
        try addTenant("fast", endpoints: [endpoint("b", tenant: "fast", url: healthy.url())])
        // A's backlog is older than every one of B's deliveries.
        for _ in 0..<50 { try enqueue(tenant: "slow") }
        let ids = try (0..<100).map { _ in try enqueue(tenant: "fast").eventID }
        try startService(concurrentRequests: 8)
        for id in ids { try waitForFinalDeliveries(of: id) }
        XCTAssertEqual(healthy.requests.count, 100)
        waitUntil("A's four attempts reach its receiver") { hanging.requests.count >= 4 }
        XCTAssertEqual(hanging.requests.count, 4, "no more than max_concurrency attempts at A")
        let inFlight = try store.deliveries(matching: DeliveryFilter(endpointID: "a", status: .delivering))
        XCTAssertEqual(inFlight.count, 4, "A still holds its four (max_concurrency) attempts")
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(endpointID: "a", status: .failed)).count, 0)
    }

    func testOrderingCoversDeliveriesCreatedOrRedeliveredWhileTheEndpointIsOrdered() throws {
        var endpoint = endpoint(url: "http://127.0.0.1:9/hook")
        try addTenant(endpoints: [endpoint])
        func enqueue(_ n: Int) throws -> String {
            try store.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"n":\#(n)}"#, orderingKey: "K")).eventID
        }
        let before = try enqueue(1)
        endpoint.ordered = true
        try addTenant(endpoints: [endpoint])
        let first = try enqueue(2)
        let second = try enqueue(3)

        // The backlog from before does not hold the ordered ones back; they go one at a time.
        let claimed = try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(Set(claimed.map(\.eventID)), [before, first])

        // Redelivered while ordered, the old delivery joins the order: it is earlier than `second`.
        _ = try store.record(claimed.map { result($0, verdict: .succeeded) })
        XCTAssertEqual(try store.redeliver(deliveryIDs: [], eventIDs: [before]), 1)
        let redelivered = try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(redelivered.map(\.eventID), [before])
        _ = try store.record(redelivered.map { result($0, verdict: .succeeded) })
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).map(\.eventID), [second])
    }

    func testAnOrderedEndpointDeliversEachKeyInEnqueueOrder() throws {
        // A's first status fails once; everything else succeeds.
        let failedOnce = Locked(false)
        let receiver = try makeRequestReceiver { request, _ in
            let body = String(decoding: request.body, as: UTF8.self)
            guard body.contains(#""interviewId":"A","onboardingStatus":"ID_VALIDATION_FINISHED""#), !failedOnce.value else { return .ok }
            failedOnce.value = true
            return .respond(status: 503)
        }
        var ordered = endpoint(url: receiver.url(), retry: .schedule(.init(delaysSeconds: [0.3])))
        ordered.ordered = true
        try addTenant(endpoints: [ordered])
        let statuses = ["ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", "ONBOARDING_FINISHED"]
        var keyA: [String] = []
        var keyB: [String] = []
        for status in statuses {
            keyA.append(try store.enqueue(NewEvent(tenantID: "tenant-a", type: "onboarding.status_changed",
                                                   json: #"{"interviewId":"A","onboardingStatus":"\#(status)"}"#, orderingKey: "A")).eventID)
            keyB.append(try store.enqueue(NewEvent(tenantID: "tenant-a", type: "onboarding.status_changed",
                                                   json: #"{"interviewId":"B","onboardingStatus":"\#(status)"}"#, orderingKey: "B")).eventID)
        }
        try startService(concurrentRequests: 8)
        for id in keyA + keyB { try waitForFinalDeliveries(of: id) }

        let arrivals = receiver.requests.compactMap { $0.header("webhook-id") }
        XCTAssertEqual(arrivals.filter(keyA.contains), [keyA[0], keyA[0], keyA[1], keyA[2]], "A's first event failed once; the rest waited")
        XCTAssertEqual(arrivals.filter(keyB.contains), keyB)
        let firstRetry = arrivals.lastIndex(of: keyA[0])!
        XCTAssertLessThan(arrivals.firstIndex(of: keyB[2])!, firstRetry, "key B did not wait for key A's retry")
    }
}
