import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// Secrets reach the receiver and nowhere else: not the audit log, `log`, `show`, nor the
/// process's own log.
final class SecretsTests: DispatcherTestCase {
    func testSecretValuesAppearInNoRecordOutputOrLog() throws {
        let secrets = ["Bearer top-secret-token-123", "key-456", "custom-secret-789", "env-secret-000", "cookie-secret-111"]
        let receiver = try makeReceiver { _, index in
            index == 0
                ? .respond(status: 503, body: #"{"retry":true}"#, headers: [HeaderField("Set-Cookie", "session=cookie-secret-111")])
                : .respond(status: 200)
        }
        let config = try writeConfig(url: receiver.url(), endpointExtra: """
            , "headers": {"Authorization": "Bearer top-secret-token-123", "X-Api-Key": "key-456",
                          "X-Partner-Seed": "custom-secret-789", "X-From-Env": "env:DISPATCHER_TEST_SECRET", "X-Plain": "visible"},
              "secret_headers": ["X-Partner-Seed"]
            """)
        let serveLog = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: serveLog, environment: ["DISPATCHER_TEST_SECRET": "env-secret-000"], verbose: true)
        try waitUntil("serve has stored the endpoint") { try store.endpoint(id: "ep-1") != nil }
        let event = try enqueue(#"{"visible":"body"}"#, type: "order.created")
        try waitForFinalDeliveries(of: event.eventID)
        XCTAssertEqual(try stopProcess(serve, signal: SIGTERM), 0)

        // The receiver got the real values.
        let request = try XCTUnwrap(receiver.requests.last)
        XCTAssertEqual(request.header("Authorization"), "Bearer top-secret-token-123")
        XCTAssertEqual(request.header("X-From-Env"), "env-secret-000")
        XCTAssertEqual(request.header("X-Partner-Seed"), "custom-secret-789")

        var places: [String: String] = ["serve log": try String(contentsOfFile: serveLog, encoding: .utf8)]
        for (name, arguments) in [("log", ["log"]), ("log --json", ["log", "--json"]), ("show", ["show", event.eventID]),
                                  ("show --json", ["show", "--json", event.eventID])] {
            let output = try run(arguments + ["--config", config])
            XCTAssertEqual(output.status, 0, output.stderr)
            places[name] = output.stdout + output.stderr
        }
        places["attempts table"] = try store.withConnection { db in
            try db.rows("SELECT * FROM attempts").map { row in row.map { "\($0)" }.joined(separator: " ") }.joined(separator: "\n")
        }
        places["deliveries table"] = try store.withConnection { db in
            try db.rows("SELECT * FROM deliveries").map { "\($0)" }.joined(separator: "\n")
        }
        XCTAssertTrue(places["show"]!.contains("X-Plain: visible"), "a control: ordinary headers are shown")
        XCTAssertTrue(places["show --json"]!.contains("***"))
        for (place, text) in places {
            for secret in secrets {
                XCTAssertFalse(text.contains(secret), "\(place) contains \(secret)")
            }
        }
        // The endpoints table keeps the reference, not the environment's value.
        let endpoints = try store.withConnection { db in try db.rows("SELECT headers FROM endpoints").map { "\($0)" }.joined() }
        XCTAssertTrue(endpoints.contains("env:DISPATCHER_TEST_SECRET"))
        XCTAssertFalse(endpoints.contains("env-secret-000"))
    }

    func testServeRefusesToStartWhenAnEnvironmentSecretIsMissing() throws {
        let config = try writeConfig(url: "http://127.0.0.1:9/x", endpointExtra: #", "headers": {"X-Token": "env:DISPATCHER_TEST_UNSET_VARIABLE"}"#)
        let result = try run(["serve", "--config", config])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("DISPATCHER_TEST_UNSET_VARIABLE is not set"), result.stderr)
    }
}
