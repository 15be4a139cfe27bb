import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// The PostgreSQL server the tests use: `$DISPATCHER_TEST_POSTGRES_URL` when given, else a
/// throwaway cluster that `scripts/pg-cluster` starts on 127.0.0.1 (once per test process,
/// stopped when the process exits). Each test gets a schema of its own.
final class PostgresTestServer: @unchecked Sendable {
    let url: String
    private static let lock = NSLock()
    nonisolated(unsafe) private static var started: Result<PostgresTestServer, Error>?
    nonisolated(unsafe) private static var clusterDirectory: String?

    private init(url: String) { self.url = url }

    /// The server, started on first use; a test skips (visibly) when none can start.
    static func shared() throws -> PostgresTestServer {
        let result = lock.withLock { () -> Result<PostgresTestServer, Error> in
            if let started { return started }
            let outcome = Result { try start() }
            started = outcome
            return outcome
        }
        do {
            return try result.get()
        } catch {
            throw XCTSkip("POSTGRES TESTS SKIPPED: no PostgreSQL server: \(error)")
        }
    }

    private static func start() throws -> PostgresTestServer {
        if let url = ProcessInfo.processInfo.environment["DISPATCHER_TEST_POSTGRES_URL"], !url.isEmpty {
            return PostgresTestServer(url: url)
        }
        let cluster = try startCluster()
        clusterDirectory = cluster.directory
        atexit { PostgresTestServer.stopCluster() }
        return PostgresTestServer(url: cluster.url)
    }

    /// `scripts/pg-cluster start` in a fresh temporary directory.
    private static func startCluster(durable: Bool = false) throws -> (url: String, directory: String) {
        let directory = NSTemporaryDirectory() + "dispatcher-pg-" + UUID().uuidString.prefix(8)
        let output = try runScript(["start", directory] + (durable ? ["--durable"] : []))
        guard output.status == 0, let url = output.stdout.split(separator: "\n").last.map(String.init), url.hasPrefix("postgresql://") else {
            throw BrowserError("scripts/pg-cluster start failed: \(output.stderr)")
        }
        return (url, directory)
    }

    /// A cluster of the caller's own, for a test that crashes and restarts it
    /// (`scripts/pg-cluster crash|restart|stop` with the returned directory). Durable: the
    /// shared cluster's `synchronous_commit = off` would lose the last commits in a crash.
    static func dedicatedCluster() throws -> (url: String, directory: String) {
        do {
            return try startCluster(durable: true)
        } catch {
            throw XCTSkip("POSTGRES TEST SKIPPED: \(error)")
        }
    }

    /// Runs `scripts/pg-cluster COMMAND DIRECTORY`; throws with its output when it fails.
    static func cluster(_ command: String, _ directory: String) throws {
        let output = try runScript([command, directory])
        guard output.status == 0 else { throw BrowserError("scripts/pg-cluster \(command) failed: \(output.stderr)") }
    }

    private static func stopCluster() {
        guard let directory = clusterDirectory else { return }
        _ = try? runScript(["stop", directory])
    }

    /// `scripts/pg-cluster`, found from this file's place in the repository.
    private static func runScript(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/pg-cluster")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    /// A fresh schema and a URL whose connections use it (libpq's `options=-csearch_path=`).
    func makeSchemaDatabase() throws -> TestDatabase {
        let schema = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try PostgresConnection(url: url)
        try admin.execute("CREATE SCHEMA \(schema)")
        let separator = url.contains("?") ? "&" : "?"
        let location = url + separator + "options=-csearch_path%3D\(schema)"
        let serverURL = url
        return TestDatabase(location: location, drop: {
            if let admin = try? PostgresConnection(url: serverURL) { try? admin.execute("DROP SCHEMA \(schema) CASCADE") }
        })
    }
}
