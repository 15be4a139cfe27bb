import Foundation
import Synchronization
import Glibc
import XCTest
@testable import DispatcherServer
import WebhookDispatcher

/// The event-loop server under the dashboard, the ingest API and the receivers: idle
/// connections cost no thread, and a stop lets requests in progress be answered.
final class HTTPServerTests: XCTestCase {
    static func threadCount() -> Int { processStatus("Threads") ?? 0 }

    /// Requests the handler holds: for `path` (every path when nil) it signals `entered`, then
    /// waits for `release` (10 s at most) before answering `{"path": ...}`.
    struct HeldRequests {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)

        func server(holding path: String? = nil, gracePeriod: Double = 0) throws -> HTTPServer {
            try HTTPServer(host: "127.0.0.1", port: 0, gracePeriod: gracePeriod) { [entered, release] request in
                if path == nil || request.path == path {
                    entered.signal()
                    _ = release.wait(timeout: .now() + 10)
                }
                return .respond(.json(200, #"{"path":"\#(request.path)"}"#))
            }
        }
    }

    /// What handlers read of a request: header names in any case, the path without its
    /// query, and the bearer token with the blanks around it dropped.
    func testHeadersPathAndBearerTokenAreReadByteByByte() {
        func request(target: String = "/", _ headers: [HeaderField]) -> HTTPServerRequest {
            HTTPServerRequest(method: "GET", target: target, version: "HTTP/1.1", headers: headers, body: [], remoteAddress: "")
        }
        XCTAssertTrue(HeaderField("Content-TYPE", "").hasName("content-type"))
        XCTAssertFalse(HeaderField("Content-Typf", "").hasName("content-type"))
        XCTAssertFalse(HeaderField("Content-Type-", "").hasName("content-type"))
        XCTAssertFalse(HeaderField("x-[", "").hasName("X-{"), "only letters fold")
        XCTAssertFalse(HeaderField("É", "").hasName("é"), "only ASCII folds")
        XCTAssertEqual(request(target: "/v1/events?x=1&y", []).path, "/v1/events")
        XCTAssertEqual(request(target: "/v1/é/x", []).path, "/v1/é/x")
        XCTAssertEqual(request(target: "?q", []).path, "")
        let tokens: [(String, String?)] = [
            ("Bearer dk_abc", "dk_abc"), ("bEARER \t dk_abc \t ", "dk_abc"), ("Bearer  ", ""), ("Bearer", nil),
            ("Bearer\tdk_abc", nil), ("Basic dk_abc", nil), ("Bearér dk", nil), ("Bearer dk é", "dk é"),
        ]
        for (value, expected) in tokens {
            XCTAssertEqual(request([HeaderField("authorization", value)]).bearerToken, expected, value.debugDescription)
        }
        XCTAssertNil(request([HeaderField("X-Authorization", "Bearer dk_abc")]).bearerToken)
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
        let held = HeldRequests(), entered = held.entered, release = held.release
        let server = try held.server(gracePeriod: 10)
        let client = try LoopbackSocket(port: server.port)
        client.send("GET /finished HTTP/1.1\r\nHost: x\r\n\r\n")
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
        XCTAssertTrue(answer.contains(#"{"path":"/finished"}"#), answer)
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

    /// An answer written in full from another thread on a kept-alive connection does not wake
    /// the loop: it settles the connection when the client's next request wakes it, and serves
    /// that request.
    func testAnAnswerWrittenFromAnotherThreadCostsTheLoopNoWakeUp() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, immediate: { request, responder in
            let path = request.path
            Thread.detachNewThread { responder.reply(.json(200, #"{"path":"\#(path)"}"#)) }
            return true
        }, handler: { _ in .respond(.json(500, "{}")) })
        defer { server.stop() }
        let client = try LoopbackSocket(port: server.port)
        client.send("GET /0 HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(client.readResponse(timeout: 5).contains(#"{"path":"/0"}"#))
        let before = server.loopWakeups, started = Date()
        for number in 1...20 {
            client.send("GET /\(number) HTTP/1.1\r\nHost: x\r\n\r\n")
            let answer = client.readResponse(timeout: 5)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200") && answer.contains(#"{"path":"/\#(number)"}"#), answer)
        }
        // One wake-up per request (its arrival), not two (30 of them before this), and one per
        // 100 ms sweep while it ran.
        let sweeps = Int(Date().timeIntervalSince(started) / 0.1) + 1
        XCTAssertLessThanOrEqual(server.loopWakeups - before, 20 + sweeps + 1, "the loop woke \(server.loopWakeups - before) times for 20 requests")
    }

    /// A request answered from another thread stops counting as in progress before the loop
    /// dispatches the next one, even though its answer did not wake the loop: with room for
    /// one request, a second connection's request right after the first's answer is served.
    func testAnAnsweredRequestNoLongerCountsInProgress() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxRequestsInProgress: 1) { request in
            .respond(.json(200, #"{"path":"\#(request.path)"}"#))
        }
        defer { server.stop() }
        // Both connections open first: a request on one then wakes the loop by itself.
        let clients = try (0..<2).map { _ in try LoopbackSocket(port: server.port) }
        for number in 1...20 {
            let client = clients[number % 2]
            client.send("GET /\(number) HTTP/1.1\r\nHost: x\r\n\r\n")
            let answer = client.readResponse(timeout: 5)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
        }
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

    /// A request that arrives while the one before it is being handled is kept and answered
    /// after it, in order, on the same connection.
    func testARequestSentDuringHandlingIsAnsweredNext() throws {
        let held = HeldRequests(), entered = held.entered, release = held.release
        let server = try held.server(holding: "/first")
        defer { server.stop() }
        let client = try LoopbackSocket(port: server.port)
        client.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(entered.wait(timeout: .now() + 5), .success)
        client.send("GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        release.signal()
        let answer = client.readAll(timeout: 5)
        let first = try XCTUnwrap(answer.range(of: #"{"path":"/first"}"#), answer)
        let second = try XCTUnwrap(answer.range(of: #"{"path":"/second"}"#), answer)
        XCTAssertLessThan(first.lowerBound, second.lowerBound)
    }

    /// A client that closes its sending side while its request is handled still gets the answer.
    func testAClientHalfClosingDuringHandlingStillGetsItsAnswer() throws {
        let held = HeldRequests(), entered = held.entered, release = held.release
        let server = try held.server()
        defer { server.stop() }
        let client = try LoopbackSocket(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(entered.wait(timeout: .now() + 5), .success)
        shutdown(client.descriptor, Int32(SHUT_WR))
        release.signal()
        XCTAssertTrue(client.readAll(timeout: 5).hasPrefix("HTTP/1.1 200"))
    }

    /// A client that resets its connection while its request is handled leaves the loop
    /// waiting, not spinning, and the server serves others.
    func testAClientResettingDuringHandlingDoesNotSpinTheLoop() throws {
        let held = HeldRequests(), entered = held.entered, release = held.release
        let server = try held.server(holding: "/slow")
        defer {
            release.signal()
            server.stop()
        }
        var client: LoopbackSocket? = try LoopbackSocket(port: server.port)
        client?.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(entered.wait(timeout: .now() + 5), .success)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(client!.descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        client = nil  // closed with a reset
        // One round trip lets the loop see the reset; a spinning loop would then wake hundreds
        // of times during the next ten.
        let other = LoopbackHTTP(port: server.port)
        XCTAssertEqual(try other.request("GET", "/").status, 200)
        let before = server.loopWakeups
        for _ in 0..<10 { XCTAssertEqual(try other.request("GET", "/").status, 200) }
        XCTAssertLessThan(server.loopWakeups - before, 100, "the loop woke \(server.loopWakeups - before) times for 10 requests")
        release.signal()
    }

    /// An immediate handler answers on the loop's thread or later from another; one that
    /// declines passes the request to the blocking handler; a responder dropped without an
    /// answer answers 500. All on one keep-alive connection, in order.
    func testImmediateHandlersAnswerNowLaterOrNotAtAll() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, immediate: { request, responder in
            switch request.path {
            case "/now":
                responder.reply(.json(200, #"{"answered":"now"}"#))
            case "/later":
                Thread.detachNewThread { responder.reply(.json(200, #"{"answered":"later"}"#)) }
            case "/dropped":
                break
            default:
                return false
            }
            return true
        }, handler: { _ in .respond(.json(200, #"{"answered":"by the handler"}"#)) })
        defer { server.stop() }
        let client = try LoopbackSocket(port: server.port)
        for path in ["/later", "/dropped", "/now", "/blocking"] {
            let close = path == "/blocking" ? "Connection: close\r\n" : ""
            client.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\(close)\r\n")
        }
        let answer = client.readAll(timeout: 5)
        let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        XCTAssertEqual(statuses, ["200", "500", "200", "200"], answer)
        let order = [#""later""#, "dropped without an answer", #""now""#, #""by the handler""#].map { answer.range(of: $0)?.lowerBound }
        XCTAssertFalse(order.contains(nil), answer)
        XCTAssertEqual(order.compactMap { $0 }, order.compactMap { $0 }.sorted(), answer)
    }

    /// A reply that comes after the server has stopped (a committer finishing late) goes
    /// nowhere: not to a descriptor the process has since reused for something else.
    func testAReplyAfterTheServerStoppedWritesNowhere() throws {
        let held = Mutex<[HTTPServerResponder]>([])
        let arrived = DispatchSemaphore(value: 0)
        let server = try HTTPServer(host: "127.0.0.1", port: 0, immediate: { _, responder in
            held.withLock { $0.append(responder) }
            arrived.signal()
            return true
        }, handler: { _ in .respond(.json(200, "{}")) })
        let client = try LoopbackSocket(port: server.port)
        client.send("GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(arrived.wait(timeout: .now() + 5), .success)
        server.stop()
        // The loop's descriptors are closed; new socket pairs take their numbers (the lowest
        // free ones), and bytes written to either end can be read at the other.
        let pairs = (0..<8).map { _ -> [Int32] in
            var ends: [Int32] = [0, 0]
            XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends), 0)
            for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK) }
            return ends
        }
        defer { for ends in pairs { close(ends[0]); close(ends[1]) } }
        held.withLock { responders in
            for responder in responders { responder.reply(.json(200, "{}")) }
            responders.removeAll()
        }
        for end in pairs.joined() {
            var byte: UInt8 = 0
            XCTAssertEqual(read(end, &byte, 1), -1, "nothing was written into descriptor \(end)'s pair")
        }
    }
}
