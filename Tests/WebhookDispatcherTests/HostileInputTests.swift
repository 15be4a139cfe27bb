import Foundation
import XCTest
@testable import DispatcherModel
@testable import DispatcherStore
import WebhookDispatcher

/// What an attacker or a clumsy operator tries against each surface, and what is refused:
/// header injection, control characters, a rebinding web page, terminal escapes, a start-up
/// stampede, a corrupt or vanished database.
final class HostileInputTests: DispatcherTestCase {
    // MARK: - Header and URL injection

    static let injectedValue = "v\r\nX-Injected: 1\r\n\r\nSMUGGLED"

    func testTheConfigRefusesCRLFInAHeaderValueNamingTheKey() throws {
        let config = #"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "headers": {"X-A": "v\r\nX-Injected: 1\r\n\r\nSMUGGLED"}}]}]}"#
        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(config.utf8))) { error in
            guard case .invalidConfiguration(let path, let message)? = error as? DispatcherError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "tenants[0].endpoints[0].headers.X-A")
            XCTAssertTrue(message.contains("carriage return"), message)
        }
        for value in ["a\u{0}b", "a\u{7F}b", "a\u{1B}[2Jb", "a\nb"] {
            XCTAssertNotNil(HeaderRules.problem(withValue: value), value.debugDescription)
        }
        XCTAssertNil(HeaderRules.problem(withValue: "Bearer abc\tdef"))
    }

    /// Every request's last check (`HeaderRules.isSendable`, by table) says what RFC 9110 says:
    /// a name of token characters only, a value without control characters but tab; for every
    /// character up to U+00FF in a name and in a value, and for the empty name.
    func testTheSendCheckOfHeadersFollowsTheRFC() {
        let token = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".unicodeScalars)
        var refused = 0
        for character in (0..<256).map({ String(UnicodeScalar(UInt8($0))) }) + ["", "\r\n", "é"] {
            for (name, value) in [("X-" + character, "v"), (character, "v"), ("X-A", "a" + character + "b"), ("X-A", character)] {
                let expected = !name.isEmpty && name.unicodeScalars.allSatisfy(token.contains)
                    && !value.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }
                XCTAssertEqual(HeaderRules.isSendable(name: name, value: value), expected, "\(name.debugDescription): \(value.debugDescription)")
                XCTAssertEqual(HeaderRules.problem(withName: name) == nil && HeaderRules.problem(withValue: value) == nil, expected)
                if !expected { refused += 1 }
            }
        }
        XCTAssertGreaterThan(refused, 400, "both answers are exercised")
    }

    func testTheLibraryRefusesEndpointsWithControlCharactersInHeadersOrURLs() throws {
        let bad = [
            Endpoint(id: "e1", tenantID: "tenant-a", url: "https://x.example/h", headers: ["X-A": Self.injectedValue]),
            Endpoint(id: "e2", tenantID: "tenant-a", url: "https://x.example/h", headers: ["X-A\r\nX-B": "v"]),
            Endpoint(id: "e3", tenantID: "tenant-a", url: "https://x.example/a\r\nX-Injected: 1"),
            Endpoint(id: "e4", tenantID: "tenant-a", url: "https://x.example/a b"),
        ]
        for endpoint in bad {
            XCTAssertThrowsError(try addTenant(endpoints: [endpoint]), endpoint.id) { error in
                guard case .invalidConfiguration(let path, _)? = error as? DispatcherError else { return XCTFail("\(error)") }
                XCTAssertTrue(path.hasPrefix("endpoint \(endpoint.id)."), path)
            }
            XCTAssertNil(try store.endpoint(id: endpoint.id), "nothing of \(endpoint.id) was stored")
        }
    }

    func testTheCLIRefusesCRLFInAHeaderAndInAURL() throws {
        try addTenant(endpoints: [])
        let header = try run(["endpoints", "add", "--db", databaseLocation, "--tenant", "tenant-a", "--id", "e",
                              "--url", "https://x.example/h", "--header", "X-A: v\r\nX-Injected: 1"])
        XCTAssertEqual(header.status, 1, header.stderr)
        XCTAssertTrue(header.stderr.contains("headers.X-A"), header.stderr)
        let url = try run(["endpoints", "add", "--db", databaseLocation, "--tenant", "tenant-a", "--id", "e",
                           "--url", "https://x.example/a\r\nX-Injected: 1"])
        XCTAssertEqual(url.status, 1, url.stderr)
        XCTAssertTrue(url.stderr.contains("url"), url.stderr)
        XCTAssertNil(try store.endpoint(id: "e"))
    }

    /// An endpoint row written by other means (SQL, an older version) still never puts a CR/LF
    /// on the wire: the request is refused before anything is sent.
    func testARequestWithAControlCharacterInAHeaderIsNeverSent() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try store.withConnection { db in
            try db.execute("UPDATE endpoints SET headers = ?, revision = revision + 1", [#"{"X-A":"v\r\nX-Injected: 1"}"#])
        }
        let id = try enqueue().eventID
        try startService()
        let record = try waitForFinalDeliveries(of: id)
        let attempt = try XCTUnwrap(record.deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.errorKind, .blocked)
        XCTAssertEqual(receiver.requests.count, 0, "nothing reached the receiver")
    }

    // MARK: - Terminal escapes

    /// A receiver's answer is shown to an operator by `show`, `log` and `receive`: its escape
    /// sequences are printed as text, never acted on; `--json` stays exact JSON.
    func testAReceiversEscapeSequencesNeverReachTheTerminal() throws {
        let attack = "\u{1B}]0;pwned\u{07}\u{1B}[2J"
        let receiver = try makeReceiver { _, _ in
            .respond(status: 500, body: #"{"error":"\#(attack)"}"#, headers: [HeaderField("X-Evil", attack)])
        }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let id = try enqueue().eventID
        try startService()
        _ = try waitForFinalDeliveries(of: id)

        for arguments in [["show", id], ["log"]] {
            let output = try run(arguments + ["--db", databaseLocation])
            XCTAssertEqual(output.status, 0, output.stderr)
            XCTAssertFalse(output.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 },
                           "\(arguments[0]) printed a raw escape: \(output.stdout.debugDescription)")
        }
        let shown = try run(["show", id, "--db", databaseLocation]).stdout
        XCTAssertTrue(shown.contains("X-Evil: \\x1B]0;pwned\\x07\\x1B[2J"), shown)
        let json = try run(["show", id, "--json", "--db", databaseLocation]).stdout
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "--json is JSON")
        XCTAssertTrue("\(record)".contains("pwned"))
    }
}


extension HostileInputTests {
    // MARK: - Start-up

    /// Processes starting together on a brand-new file each set WAL mode and migrate; SQLite
    /// answers a lock upgrade two of them race for with SQLITE_BUSY at once, without waiting,
    /// so start-up must wait and retry like every other write. (Before: about one process in
    /// a hundred failed with "database is locked".)
    func testManyProcessesStartingOnANewFileAtOnceAllSucceed() throws {
        try requireSQLite("SQLite's start-up pragmas and migrations")
        for round in 0..<25 {
            let path = directory.file("fresh-\(round).sqlite")
            let launched = try (0..<14).map { index in
                try launch(index % 3 == 0 ? ["endpoints", "list", "--db", path] : ["stats", "--db", path])
            }
            for (process, _, errors) in launched {
                waitUntil("a start-up finishes", timeout: 30) { !process.isRunning }
                process.waitUntilExit()
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                XCTAssertEqual(process.terminationStatus, 0, "round \(round): \(message)")
            }
        }
    }

    /// `serve --exit-when-idle` on an empty store stops at once, every time: the stop it
    /// sends may come before the service has started (it used to hang about one run in 45).
    func testServeExitsWhenIdleEveryTimeOnAnEmptyStore() throws {
        let config = try writeConfig(url: "http://127.0.0.1:9/hook")
        for run in 0..<20 {
            let output = try self.run(["serve", "--config", config, "--exit-when-idle"], timeout: 15)
            XCTAssertEqual(output.status, 0, "run \(run): \(output.stderr)")
        }
    }

    // MARK: - Error positions

    /// The position names the escape itself, not whatever follows it.
    func testALoneSurrogateEscapeIsReportedWhereItIs() {
        let cases: [(String, Int)] = [
            (#"{"a":"\ud800"}"#, 6), (#"{"a":"x\udc00"}"#, 7), (#"{"a":"\uD800\u0041"}"#, 6), (#"{"a":"\ud800x"}"#, 6),
        ]
        for (text, offset) in cases {
            XCTAssertThrowsError(try JSONValidation.requireObject(Array(text.utf8)), text) { error in
                XCTAssertTrue("\(error)".contains("surrogate"), "\(error)")
                XCTAssertTrue("\(error)".contains("at byte \(offset),"), "\(text): \(error)")
            }
        }
        XCTAssertNoThrow(try JSONValidation.requireObject(Array(#"{"a":"\ud83d\ude00"}"#.utf8)), "a pair is fine")
    }

    // MARK: - Storage errors

    /// A storage error in the middle of `enqueue --ndjson` still tells what was committed.
    func testNDJSONEnqueueSaysWhatWasCommittedBeforeAStorageError() throws {
        try requireSQLite("a trigger that fails the write")
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        try store.withConnection { db in
            try db.execute("CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        }
        let lines = ["ok.one", "ok.two", "ok.three", "boom", "ok.five"].map { #"{"tenant":"tenant-a","type":"\#($0)","data":{}}"# }
        let output = try run(["enqueue", "--ndjson", "--batch-size", "2", "--db", databaseLocation], stdin: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(output.status, 1)
        XCTAssertTrue(output.stdout.contains("accepted 2, duplicates 0, rejected 0"), output.stdout)
        XCTAssertTrue(output.stderr.contains("stopped at line 3"), output.stderr)
        XCTAssertTrue(output.stderr.contains("disk on fire"), output.stderr)
        XCTAssertEqual(try store.pendingCount(), 2, "the first batch is stored, the failed one is not")
    }

    /// A database file deleted under a running `serve` is noticed (everything written to the
    /// unlinked file would vanish with the process): serve stops and exits 1, saying why.
    func testServeExitsWhenItsDatabaseFileIsDeleted() throws {
        try requireSQLite("a database file")
        let receiver = try makeReceiver()
        let config = try writeConfig(url: receiver.url())
        let logFile = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: logFile)
        waitUntil("serve is delivering") { (try? String(contentsOfFile: logFile, encoding: .utf8))?.contains("transfer slots") == true }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databaseLocation + suffix) }
        waitUntil("serve exits", timeout: 30) { !serve.isRunning }
        serve.waitUntilExit()
        XCTAssertEqual(serve.terminationStatus, 1)
        let log = try String(contentsOfFile: logFile, encoding: .utf8)
        XCTAssertTrue(log.contains("was deleted or replaced"), log)
        XCTAssertTrue(log.contains("error: stopped delivering: the store cannot be used"), log)
    }

    func testOnlyErrorsThatRetryingCannotMendStopTheService() {
        XCTAssertTrue(SQLiteError(code: 11, message: "database disk image is malformed", sql: nil).cannotHeal)
        XCTAssertTrue(SQLiteError(code: 26, message: "file is not a database", sql: nil).cannotHeal)
        XCTAssertTrue(SQLiteError(code: 8 | (4 << 8), message: "moved", sql: nil).cannotHeal)
        XCTAssertFalse(SQLiteError(code: 5, message: "database is locked", sql: nil).cannotHeal)
        XCTAssertFalse(SQLiteError(code: 13, message: "database or disk is full", sql: nil).cannotHeal)
    }

    // MARK: - Hostile receivers

    /// A receiver answering with 2,000 headers gets the first hundred recorded and the rest
    /// counted, not 50 KB of audit log per attempt.
    func testAFloodOfResponseHeadersIsCappedAndSaysSo() throws {
        let flood = (0..<2_000).map { HeaderField("X-Flood-\($0)", "value-\($0)") }
        let receiver = try makeReceiver { _, _ in .respond(status: 200, headers: flood) }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let id = try enqueue().eventID
        try startService()
        let attempt = try XCTUnwrap(try waitForFinalDeliveries(of: id).deliveries.first?.attempts.first)
        let headers = try XCTUnwrap(attempt.responseHeaders)
        XCTAssertEqual(attempt.verdict, .succeeded)
        XCTAssertLessThanOrEqual(headers.count, ResponseHeaderCap().count + 1)
        XCTAssertLessThanOrEqual(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }, ResponseHeaderCap().bytes + 100)
        let marker = try XCTUnwrap(headers.last)
        XCTAssertEqual(marker.name, ResponseHeaderCap.truncationHeader)
        XCTAssertTrue(marker.value.hasSuffix("not recorded"), marker.value)
        let config = try DispatcherConfiguration.parse(Data(#"{"response_header_cap_count": 10, "response_header_cap_bytes": 2048}"#.utf8))
        XCTAssertEqual(config.serviceConfiguration(logger: .silent).responseHeaderCap, ResponseHeaderCap(count: 10, bytes: 2048))
    }
}

