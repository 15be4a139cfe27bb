import Foundation
import Glibc
import DispatcherServer
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// Receivers behind enterprise networks, each played by a real server from Debian on 127.0.0.1:
/// nginx demanding a client certificate from a private CA made here with the `openssl`
/// command, `openssl s_server` refusing the handshake, and tinyproxy as the egress proxy.
final class EnterpriseNetworkTests: DispatcherTestCase {
    /// A throwaway PKI: a CA, the receiver's certificate for 127.0.0.1 and its key's pin, a
    /// client certificate from the CA and one from a stranger CA.
    struct PKI {
        let folder: String
        var ca: String { folder + "/ca.pem" }
        var serverCertificate: String { folder + "/server.pem" }
        var serverKey: String { folder + "/server.key" }
        var clientCertificate: String { folder + "/client.pem" }
        var clientKey: String { folder + "/client.key" }
        var strangerCertificate: String { folder + "/stranger.pem" }
        var strangerKey: String { folder + "/stranger.key" }
        let pin: String
    }

    func makePKI() throws -> PKI {
        let folder = directory.file("pki")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let script = #"""
            set -e
            cd "$1"
            key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            openssl req -x509 $key -keyout ca.key -out ca.pem -days 2 -subj /CN=dispatcher-test-ca
            openssl req -x509 $key -keyout stranger-ca.key -out stranger-ca.pem -days 2 -subj /CN=stranger-ca
            sign() {  # sign NAME CA SUBJECT EXTENSIONS
                printf "$4" > "$1.ext"
                openssl req -new $key -keyout "$1.key" -out "$1.csr" -subj "$3"
                openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext"
            }
            sign server ca /CN=127.0.0.1 "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            sign client ca /CN=dispatcher-client "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
            sign stranger stranger-ca /CN=stranger-client "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
            openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
            """#
        let made = try Self.runTool(["bash", "-c", script, "pki", folder])
        XCTAssertEqual(made.status, 0, made.stderr)
        return PKI(folder: folder, pin: "sha256//" + made.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Waits until something accepts connections on `port`.
    func waitForListener(_ port: Int, _ what: String) {
        waitUntil("\(what) listens on 127.0.0.1:\(port)") { (try? LoopbackSocket(port: port)) != nil }
    }

    /// nginx on 127.0.0.1 with TLS from `pki`: on `port` it answers only clients with a
    /// certificate from the CA (`ssl_verify_client on`); on `openPort` anyone, over HTTP/2 when
    /// offered, closing each connection after its answer, which says the protocol and whether
    /// the TLS session was resumed.
    func startNginx(_ pki: PKI) throws -> (port: Int, openPort: Int) {
        let port = try freePort(), openPort = try freePort()
        let folder = pki.folder
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(folder)/nginx.pid;
            error_log \(folder)/nginx-error.log;
            events { worker_connections 64; }
            http {
                access_log \(folder)/nginx-access.log;
                client_body_temp_path \(folder)/body;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(pki.serverCertificate);
                    ssl_certificate_key \(pki.serverKey);
                    ssl_client_certificate \(pki.ca);
                    ssl_verify_client on;
                    default_type application/json;
                    location / { return 200 '{"client":"$ssl_client_s_dn"}'; }
                }
                server {
                    listen 127.0.0.1:\(openPort) ssl http2;
                    ssl_certificate \(pki.serverCertificate);
                    ssl_certificate_key \(pki.serverKey);
                    # TLS 1.2: Debian's libcurl 7.88 resumes no TLS 1.3 session (nor does its curl command).
                    ssl_protocols TLSv1.2;
                    ssl_session_cache shared:test:1m;
                    keepalive_timeout 0;
                    default_type application/json;
                    location / { return 200 '{"protocol":"$server_protocol","reused":"$ssl_session_reused"}'; }
                }
            }
            """
        try config.write(toFile: folder + "/nginx.conf", atomically: true, encoding: .utf8)
        try startDaemon(URL(fileURLWithPath: "/usr/sbin/nginx"), ["-e", folder + "/nginx-error.log", "-c", folder + "/nginx.conf"],
                        logFile: folder + "/nginx.out")
        waitForListener(port, "nginx")
        waitForListener(openPort, "nginx")
        return (port, openPort)
    }

    func attempt(of record: EventRecord, endpoint id: String) throws -> Attempt {
        let delivery = try XCTUnwrap(record.deliveries.first { $0.delivery.endpointID == id }, "a delivery to \(id)")
        return try XCTUnwrap(delivery.attempts.first, "an attempt to \(id)")
    }

    /// A client certificate from the private CA gets through; none, or one from another CA,
    /// is turned away by nginx; the private CA is trusted for its endpoint only; a pinned key
    /// must match; a certificate and key may come from the environment as PEM text.
    func testMutualTLSPrivateCAAndPinnedKeysAgainstNginx() throws {
        let pki = try makePKI()
        let url = "https://127.0.0.1:\(try startNginx(pki).port)/hook"
        func tlsEndpoint(_ id: String, _ tls: EndpointTLS?) -> Endpoint {
            var endpoint = self.endpoint(id, url: url)
            endpoint.tls = tls
            return endpoint
        }
        let certificatePEM = try String(contentsOfFile: pki.clientCertificate, encoding: .utf8)
        let keyPEM = try String(contentsOfFile: pki.clientKey, encoding: .utf8)
        setenv("DISPATCHER_TEST_CLIENT_CERT", certificatePEM, 1)
        setenv("DISPATCHER_TEST_CLIENT_KEY", keyPEM, 1)
        defer {
            unsetenv("DISPATCHER_TEST_CLIENT_CERT")
            unsetenv("DISPATCHER_TEST_CLIENT_KEY")
        }
        try addTenant(endpoints: [
            tlsEndpoint("mtls", EndpointTLS(clientCertificate: pki.clientCertificate, clientKey: pki.clientKey, caFile: pki.ca)),
            tlsEndpoint("mtls-env", EndpointTLS(clientCertificate: "env:DISPATCHER_TEST_CLIENT_CERT", clientKey: "env:DISPATCHER_TEST_CLIENT_KEY",
                                                caFile: pki.ca, pinnedPublicKey: pki.pin)),
            tlsEndpoint("no-client-cert", EndpointTLS(caFile: pki.ca)),
            tlsEndpoint("stranger-cert", EndpointTLS(clientCertificate: pki.strangerCertificate, clientKey: pki.strangerKey, caFile: pki.ca)),
            tlsEndpoint("system-cas", EndpointTLS(clientCertificate: pki.clientCertificate, clientKey: pki.clientKey)),
            tlsEndpoint("wrong-pin", EndpointTLS(clientCertificate: pki.clientCertificate, clientKey: pki.clientKey, caFile: pki.ca,
                                                 pinnedPublicKey: "sha256//" + Data(repeating: 1, count: 32).base64EncodedString())),
        ])
        XCTAssertEqual(try store.endpoint(id: "mtls-env")?.tls?.pinnedPublicKey, pki.pin, "the store keeps the TLS settings")
        try startService()
        let record = try waitForFinalDeliveries(of: try enqueue().eventID)

        for id in ["mtls", "mtls-env"] {
            let succeeded = try attempt(of: record, endpoint: id)
            XCTAssertEqual(succeeded.responseStatus, 200, "\(id): \(succeeded.errorMessage ?? "")")
            XCTAssertTrue(String(decoding: succeeded.responseBody ?? [], as: UTF8.self).contains("CN=dispatcher-client"), id)
        }
        for id in ["no-client-cert", "stranger-cert"] {
            // nginx finishes the handshake and answers 400 itself rather than failing it.
            let refused = try attempt(of: record, endpoint: id)
            XCTAssertEqual(refused.responseStatus, 400, id)
            XCTAssertTrue(String(decoding: refused.responseBody ?? [], as: UTF8.self).contains("SSL certificate"), id)
        }
        for id in ["system-cas", "wrong-pin"] {
            let failed = try attempt(of: record, endpoint: id)
            XCTAssertNil(failed.responseStatus, id)
            XCTAssertEqual(failed.errorKind, .tls, "\(id): \(failed.errorMessage ?? "")")
        }
        // Secrets stay out of the audit log: the PEM text never reaches a recorded header.
        let recorded = try attempt(of: record, endpoint: "mtls-env").requestHeaders.map(\.value).joined()
        XCTAssertFalse(recorded.contains("PRIVATE KEY"))
    }

    /// HTTP/1.1 unless the endpoint offers HTTP/2, which nginx then takes; and new connections
    /// resume the TLS session another slot's connection made (the slots share their sessions).
    func testHTTP2WhenOfferedAndTLSSessionsSharedAcrossConnections() throws {
        let pki = try makePKI()
        let url = "https://127.0.0.1:\(try startNginx(pki).openPort)/hook"
        var one = endpoint("h1", url: url)
        one.tls = EndpointTLS(caFile: pki.ca)
        var two = endpoint("h2", url: url)
        two.tls = EndpointTLS(caFile: pki.ca)
        two.http2 = true
        try addTenant(endpoints: [one, two])
        var burst = endpoint("burst", tenant: "tenant-b", url: url)
        burst.tls = EndpointTLS(caFile: pki.ca)
        try addTenant("tenant-b", endpoints: [burst])
        XCTAssertEqual(try store.endpoint(id: "h2")?.http2, true)
        try startService(concurrentRequests: 8)

        let record = try waitForFinalDeliveries(of: try enqueue().eventID)
        let body = { (record: EventRecord, id: String) in String(decoding: try self.attempt(of: record, endpoint: id).responseBody ?? [], as: UTF8.self) }
        XCTAssertTrue(try body(record, "h1").contains(#""protocol":"HTTP/1.1""#))
        XCTAssertTrue(try body(record, "h2").contains(#""protocol":"HTTP/2.0""#))

        // One delivery makes a session; then four at once, on four slots and four new
        // connections (nginx closes each after its answer), all resume it.
        _ = try waitForFinalDeliveries(of: try enqueue(tenant: "tenant-b").eventID)
        let four = try store.enqueue(contentsOf: (0..<4).map { _ in NewEvent(tenantID: "tenant-b", type: "checkin.outcome", json: "{}") })
        let bodies = try four.map { try body(try waitForFinalDeliveries(of: $0.eventID), "burst") }
        XCTAssertEqual(bodies.filter { $0.contains(#""reused":"r""#) }.count, 4, "\(bodies)")
    }

    /// A receiver that refuses the handshake without a certificate from its CA (openssl
    /// s_server -verify_return_error) is recorded with error kind tls.
    func testAHandshakeRefusedForWantOfAClientCertificateIsATLSError() throws {
        let pki = try makePKI()
        let port = try freePort()
        try startDaemon(URL(fileURLWithPath: "/usr/bin/openssl"),
                        ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", pki.serverCertificate, "-key", pki.serverKey,
                         "-CAfile", pki.ca, "-Verify", "1", "-verify_return_error", "-naccept", "5", "-quiet"],
                        logFile: pki.folder + "/s_server.log")
        waitForListener(port, "openssl s_server")
        var refused = endpoint("refused", url: "https://127.0.0.1:\(port)/hook")
        refused.tls = EndpointTLS(caFile: pki.ca)
        try addTenant(endpoints: [refused])
        try startService()
        let failed = try attempt(of: try waitForFinalDeliveries(of: try enqueue().eventID), endpoint: "refused")
        XCTAssertNil(failed.responseStatus)
        XCTAssertEqual(failed.errorKind, .tls, failed.errorMessage ?? "")
    }

    /// The config names files it cannot read, half a key pair, or a malformed pin, and says so.
    func testTLSSettingsAreCheckedWhenTheConfigIsRead() throws {
        let pki = try makePKI()
        func problem(_ tls: [String: Any], url: String = "https://example.com/hook") -> String? {
            do {
                _ = try Endpoint.fromConfigObject(["id": "e", "url": url, "tls": tls], tenantID: "t")
                return nil
            } catch {
                return "\(error)"
            }
        }
        XCTAssertNil(problem(["client_cert": pki.clientCertificate, "client_key": pki.clientKey, "ca_file": pki.ca, "pinned_public_key": pki.pin]))
        XCTAssertNil(problem(["client_cert": "env:CERT", "client_key": "env:KEY"]))
        XCTAssertEqual(problem(["client_cert": pki.clientCertificate]), "invalid configuration at tls.client_key: client_cert and client_key go together")
        XCTAssertTrue(problem(["ca_file": pki.folder + "/missing.pem"])?.contains("cannot read the file") ?? false)
        XCTAssertTrue(problem(["pinned_public_key": "49JdkqXRrX0QVf3JA9Yj"])?.contains("sha256//") ?? false)
        XCTAssertTrue(problem(["ca_file": pki.ca], url: "http://example.com/hook")?.contains("https") ?? false)
        XCTAssertTrue(problem(["ca_file": pki.ca, "crl": "x"])?.contains("crl") ?? false)
    }

    /// `endpoints add/update` set the same keys with the config's validator; the JSON list
    /// shows them, the proxy's password as ***.
    func testTheCLISetsTLSProxyHTTP2AndRateLimit() throws {
        let pki = try makePKI()
        let added = try run(["endpoints", "add", "--db", databaseLocation, "--tenant", "tenant-a", "--id", "bank", "--url", "https://example.com/h",
                             "--rate-limit", "25", "--proxy", "http://u:pw@proxy.example:3128", "--http2", "true",
                             "--tls-client-cert", pki.clientCertificate, "--tls-client-key", pki.clientKey, "--tls-ca-file", pki.ca, "--tls-pin", pki.pin])
        XCTAssertEqual(added.status, 0, added.stderr)
        let stored = try XCTUnwrap(try store.endpoint(id: "bank"))
        XCTAssertEqual(stored.rateLimitPerSecond, 25)
        XCTAssertEqual(stored.proxy, "http://u:pw@proxy.example:3128")
        XCTAssertTrue(stored.http2)
        XCTAssertEqual(stored.tls, EndpointTLS(clientCertificate: pki.clientCertificate, clientKey: pki.clientKey, caFile: pki.ca, pinnedPublicKey: pki.pin))
        let listed = try run(["endpoints", "list", "--json", "--db", databaseLocation])
        XCTAssertTrue(listed.stdout.contains("http://u:***@proxy.example:3128"), listed.stdout)
        XCTAssertFalse(listed.stdout.contains("pw@"))
        let refused = try run(["endpoints", "update", "bank", "--db", databaseLocation, "--tls-ca-file", pki.folder + "/missing.pem", "--rate-limit", "none"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("tls.ca_file"), refused.stderr)
        XCTAssertEqual(try store.endpoint(id: "bank")?.rateLimitPerSecond, 25, "nothing is written when a value is wrong")
        let lifted = try run(["endpoints", "update", "bank", "--db", databaseLocation, "--rate-limit", "none", "--proxy", "default", "--tls-pin", ""])
        XCTAssertEqual(lifted.status, 0, lifted.stderr)
        XCTAssertNil(try store.endpoint(id: "bank")?.rateLimitPerSecond)
        XCTAssertNil(try store.endpoint(id: "bank")?.proxy)
        XCTAssertNil(try store.endpoint(id: "bank")?.tls?.pinnedPublicKey)
    }

    // MARK: - doctor

    /// `dispatcher doctor` against a real TLS receiver: the handshake with the endpoint's CA
    /// passes and reports the certificate's days left (a warning under 14), without it fails;
    /// a destination the guard refuses and an unset env: variable fail; the database passes.
    func testDoctorChecksTheEnvironmentTheGuardTLSAndTheDatabase() throws {
        let pki = try makePKI()
        let port = try startNginx(pki).openPort
        func config(_ endpoints: String) throws -> String {
            let path = directory.file("doctor-\(UUID().uuidString).json")
            try """
                {"database": "\(databaseLocation)", "require_https": false, "allowed_networks": ["127.0.0.1/32"],
                 "tenants": [{"id": "tenant-a", "endpoints": [\(endpoints)]}]}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let good = #"{"id": "tls-ok", "url": "https://127.0.0.1:\#(port)/hook", "tls": {"ca_file": "\#(pki.ca)"}}"#
        let bad = try config(good + #"""
            , {"id": "tls-untrusted", "url": "https://127.0.0.1:\#(port)/hook"},
              {"id": "blocked", "url": "http://127.0.0.2:\#(port)/hook"},
              {"id": "envy", "url": "https://127.0.0.1:\#(port)/hook", "tls": {"ca_file": "\#(pki.ca)"}, "headers": {"X-Key": "env:DOCTOR_TEST_UNSET"}}
            """#)
        let failed = try run(["doctor", "--config", bad, "--json"])
        XCTAssertEqual(failed.status, 1, failed.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(failed.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["ok"] as? Bool, false)
        let checks = try XCTUnwrap(report["checks"] as? [[String: String]])
        func result(_ check: String, _ subject: String) -> String? {
            checks.first { $0["check"] == check && $0["subject"]?.hasPrefix(subject) == true }?["result"]
        }
        XCTAssertEqual(result("tls", "tls-ok"), "warn", "a two-day certificate: \(checks)")
        XCTAssertTrue(checks.contains { $0["subject"] == "tls-ok" && $0["detail"]?.contains("certificate expires") == true }, "\(checks)")
        XCTAssertEqual(result("tls", "tls-untrusted"), "fail")
        XCTAssertEqual(result("destination", "blocked"), "fail")
        XCTAssertEqual(result("environment", "envy"), "fail")
        XCTAssertEqual(result("database", ""), "pass")

        let fine = try run(["doctor", "--config", try config(good)])
        XCTAssertEqual(fine.status, 0, fine.stdout + fine.stderr)
        XCTAssertTrue(fine.stdout.contains("0 failed"), fine.stdout)
    }

    // MARK: - Egress proxy

    /// tinyproxy on 127.0.0.1 with Basic credentials; returns its port and log file.
    func startTinyproxy() throws -> (port: Int, log: String) {
        let port = try freePort()
        let folder = directory.file("tinyproxy")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = """
            Port \(port)
            Listen 127.0.0.1
            Timeout 30
            LogFile "\(folder)/tinyproxy.log"
            LogLevel Connect
            PidFile "\(folder)/tinyproxy.pid"
            MaxClients 20
            Allow 127.0.0.1
            BasicAuth dispatcher s3cret-pass
            """
        try config.write(toFile: folder + "/tinyproxy.conf", atomically: true, encoding: .utf8)
        try startDaemon(URL(fileURLWithPath: "/usr/bin/tinyproxy"), ["-d", "-c", folder + "/tinyproxy.conf"], logFile: folder + "/tinyproxy.out")
        waitForListener(port, "tinyproxy")
        return (port, folder + "/tinyproxy.log")
    }

    /// Deliveries go through the configured proxy (credentials from the environment) and its
    /// log shows them; an endpoint may opt out; a destination the guard refuses is judged
    /// before anything reaches the proxy, though the proxy itself is on a loopback address the
    /// guard would refuse as a destination.
    func testDeliveriesGoThroughTheEgressProxyAndTheGuardStillJudgesTheDestination() throws {
        let proxy = try startTinyproxy()
        let viaProxy = try makeReceiver { _, _ in .ok }
        let direct = try makeReceiver { _, _ in .ok }
        setenv("DISPATCHER_TEST_PROXY", "http://dispatcher:s3cret-pass@127.0.0.1:\(proxy.port)", 1)
        defer { unsetenv("DISPATCHER_TEST_PROXY") }
        var opted = endpoint("direct", url: direct.url("/direct"))
        opted.proxy = "none"
        let blockedPort = try freePort()
        try addTenant(endpoints: [endpoint("proxied", url: viaProxy.url("/proxied")), opted,
                                  endpoint("blocked", url: "http://127.0.0.2:\(blockedPort)/blocked")])
        // Only 127.0.0.1 is allowed as a destination: 127.0.0.2 is loopback like it, but not named.
        try startService(policy: DestinationPolicy(allowPrivateAddresses: false, allowedNetworks: [try XCTUnwrap(IPNetwork("127.0.0.1/32"))]),
                         proxy: "env:DISPATCHER_TEST_PROXY")
        let record = try waitForFinalDeliveries(of: try enqueue().eventID)

        XCTAssertEqual(try attempt(of: record, endpoint: "proxied").responseStatus, 200)
        XCTAssertEqual(try attempt(of: record, endpoint: "direct").responseStatus, 200)
        let blocked = try attempt(of: record, endpoint: "blocked")
        XCTAssertEqual(blocked.errorKind, .blocked, blocked.errorMessage ?? "")
        XCTAssertTrue(blocked.errorMessage?.contains("nothing was sent to the proxy") ?? false, blocked.errorMessage ?? "")
        XCTAssertEqual(viaProxy.requests(on: "/proxied").count, 1)
        XCTAssertEqual(direct.requests(on: "/direct").count, 1)

        let log = try String(contentsOfFile: proxy.log, encoding: .utf8)
        XCTAssertTrue(log.contains("CONNECT 127.0.0.1:\(URL(string: viaProxy.url("/"))?.port ?? 0)"), log)
        XCTAssertFalse(log.contains(":\(URL(string: direct.url("/"))?.port ?? 0)"), "the opted-out endpoint went direct")
        XCTAssertFalse(log.contains("127.0.0.2"), "the refused destination never reached the proxy")
        // The proxy's credentials stay out of the audit log.
        let recorded = try attempt(of: record, endpoint: "proxied")
        XCTAssertFalse((recorded.requestHeaders.map(\.value) + [recorded.url, recorded.errorMessage ?? ""]).joined().contains("s3cret-pass"))
    }

    /// Wrong proxy credentials fail the attempt (the proxy answers 407) and nothing reaches the
    /// receiver; a proxy address in the config is checked when it is read.
    func testAProxyThatRefusesTheCredentialsFailsTheAttempt() throws {
        let proxy = try startTinyproxy()
        let receiver = try makeReceiver { _, _ in .ok }
        var wrong = endpoint("wrong", url: receiver.url("/wrong"))
        wrong.proxy = "http://dispatcher:not-it@127.0.0.1:\(proxy.port)"
        try addTenant(endpoints: [wrong])
        try startService()
        let failed = try attempt(of: try waitForFinalDeliveries(of: try enqueue().eventID), endpoint: "wrong")
        XCTAssertNil(failed.responseStatus)
        XCTAssertNotNil(failed.errorKind)
        XCTAssertTrue(receiver.requests(on: "/wrong").isEmpty)

        for bad in ["127.0.0.1:3128", "socks5://127.0.0.1:1080", "http://proxy.example", "http://proxy.example:3128/path"] {
            XCTAssertThrowsError(try Endpoint.fromConfigObject(["id": "e", "url": "https://example.com/h", "proxy": bad], tenantID: "t"), bad)
        }
        XCTAssertNoThrow(try Endpoint.fromConfigObject(["id": "e", "url": "https://example.com/h", "proxy": "http://u:p@proxy.example:3128"], tenantID: "t"))
    }
}
