import Foundation
import Glibc
import XCTest
import DispatcherServer
import WebhookDispatcher

/// The event-loop server under the dashboard, the ingest API and the receivers: idle
/// connections cost no thread, and a stop lets requests in progress be answered.
final class HTTPServerTests: XCTestCase {
    static func threadCount() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last ?? "") ?? 0
    }

    func testThousandsOfIdleConnectionsAreHeldWithoutAThreadEach() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxConnections: 5_000, readTimeout: 60) { _ in .respond(.json(200, "{}")) }
        defer { server.stop() }
        // Both ends of every connection are descriptors of this process: take what the system allows.
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let count = min(2_000, Int(limit.rlim_cur) / 2 - 200)
        try XCTSkipIf(count < 500, "the descriptor limit (\(limit.rlim_cur)) is too low to hold many connections")
        let before = Self.threadCount()
        let idle = try (0..<count).map { _ in try LoopbackSocket(port: server.port) }
        let deadline = Date().addingTimeInterval(20)
        while server.connectionsAccepted < idle.count && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(server.connectionsAccepted, idle.count)
        XCTAssertLessThan(Self.threadCount() - before, 20, "no thread per idle connection")
        // A request on a new connection is still answered at once.
        XCTAssertEqual(try LoopbackHTTP(port: server.port).request("GET", "/").status, 200)
        // And one on an old, idle connection.
        idle[0].send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(idle[0].readAll(timeout: 5).hasPrefix("HTTP/1.1 200"))
    }

    func testStopLetsARequestInProgressBeAnswered() throws {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let server = try HTTPServer(host: "127.0.0.1", port: 0, gracePeriod: 10) { _ in
            entered.signal()
            _ = release.wait(timeout: .now() + 10)
            return .respond(.json(200, #"{"finished":true}"#))
        }
        let client = try LoopbackSocket(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(entered.wait(timeout: .now() + 5), .success)
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            server.stop()
            stopped.signal()
        }
        XCTAssertEqual(stopped.wait(timeout: .now() + 0.2), .timedOut, "stop waits for the request in progress")
        XCTAssertThrowsError(try LoopbackSocket(port: server.port), "no new connections once stopping")
        release.signal()
        let answer = client.readAll(timeout: 5)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
        XCTAssertTrue(answer.contains(#"{"finished":true}"#), answer)
        XCTAssertEqual(stopped.wait(timeout: .now() + 5), .success)
    }

    func testRequestsPastTheCapInProgressAreTurnedAway() throws {
        let release = DispatchSemaphore(value: 0)
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxRequestsInProgress: 2) { _ in
            _ = release.wait(timeout: .now() + 10)
            return .respond(.json(200, "{}"))
        }
        defer {
            for _ in 0..<2 { release.signal() }
            server.stop()
        }
        let busy = try (0..<2).map { _ in try LoopbackSocket(port: server.port) }
        for socket in busy { socket.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }
        var status = 0
        let deadline = Date().addingTimeInterval(5)
        while status != 503 && Date() < deadline {
            status = (try? LoopbackHTTP(port: server.port).request("GET", "/").status) ?? 0
        }
        XCTAssertEqual(status, 503)
    }

    /// A client that sends its request and then closes its sending side still gets the answer.
    func testAHalfClosedClientStillGetsItsAnswer() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0) { request in .respond(.json(200, #"{"path":"\#(request.path)"}"#)) }
        defer { server.stop() }
        let client = try LoopbackSocket(port: server.port)
        client.send("GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
        shutdown(client.descriptor, Int32(SHUT_WR))
        let answer = client.readAll(timeout: 5)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
        XCTAssertTrue(answer.contains(#"{"path":"/half"}"#), answer)
    }
}

