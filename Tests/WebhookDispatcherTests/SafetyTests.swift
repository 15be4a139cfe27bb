import Foundation
import XCTest
import WebhookDispatcher

/// Default-on safety: the destination guard, and receivers that hang, trickle, flood, lie or
/// reset, each recorded with its error kind while other endpoints keep being served.
final class SafetyTests: DispatcherTestCase {
    func testEveryLoopbackSpellingIsRefusedAndTheReceiverSeesNothing() throws {
        let v4 = try makeReceiver()
        let v6 = try makeReceiver(host: "::1")
        let urls = [
            "http://127.0.0.1:\(v4.port)/a", "http://[::1]:\(v6.port)/b", "http://localhost:\(v4.port)/c",
            "http://127.1:\(v4.port)/d", "http://0x7f000001:\(v4.port)/e", "http://2130706433:\(v4.port)/f",
            "http://0177.0.0.1:\(v4.port)/g", "http://[::ffff:127.0.0.1]:\(v4.port)/h", "http://0.0.0.0:\(v4.port)/i",
        ]
        try addTenant(endpoints: urls.enumerated().map { index, url in endpoint("e\(index)", url: url) })
        try startService(policy: DestinationPolicy(), urlPolicy: URLPolicy(requireHTTPS: false))
        let record = try waitForFinalDeliveries(of: enqueue().eventID)

        XCTAssertEqual(record.deliveries.count, urls.count)
        for delivery in record.deliveries {
            let attempt = try XCTUnwrap(delivery.attempts.first)
            XCTAssertEqual(attempt.errorKind, .blocked, "\(attempt.url): \(attempt.errorKind?.rawValue ?? "none") \(attempt.errorMessage ?? "")")
            XCTAssertEqual(delivery.delivery.status, .failed)
        }
        XCTAssertEqual(v4.requests.count + v6.requests.count, 0)
        XCTAssertEqual(v4.connectionsAccepted + v6.connectionsAccepted, 0, "no connection was even opened")
    }

    func testAnAllowedNetworkIsReachable() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService(policy: DestinationPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!]), urlPolicy: URLPolicy(requireHTTPS: false))
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .succeeded)
    }

    func testPlainHTTPIsRefusedByDefaultEvenForAStoredEndpoint() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService(urlPolicy: URLPolicy())
        let attempt = try XCTUnwrap(waitForFinalDeliveries(of: enqueue().eventID).deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.errorKind, .blocked)
        XCTAssertTrue(attempt.errorMessage?.contains("not https") ?? false, attempt.errorMessage ?? "")
        XCTAssertEqual(receiver.connectionsAccepted, 0)
    }

    func testARedirectToAnInternalAddressIsRecordedAndNotFollowed() throws {
        let metadata = try makeReceiver()
        let receiver = try makeReceiver { _, _ in
            .respond(status: 307, contentType: nil, body: "", headers: [HeaderField("Location", metadata.url("/latest/meta-data"))])
        }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService()
        let attempt = try XCTUnwrap(waitForFinalDeliveries(of: enqueue().eventID).deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.responseStatus, 307)
        XCTAssertEqual(attempt.errorKind, .http)
        XCTAssertEqual(attempt.responseHeaders?.first { $0.name == "Location" }?.value, metadata.url("/latest/meta-data"))
        XCTAssertEqual(metadata.connectionsAccepted, 0)
    }

    func testHostileReceiversAreRecordedWithTheirKindsWhileOthersAreServed() throws {
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".utf8)
        let hugeBody = 50 * 1024 * 1024
        let hugeBytesSent = Locked(0)
        let hostile = try makeReceiver { path, _ in
            switch path {
            case "/silent":
                return .delay(seconds: 30, then: .init(status: 200))
            case "/trickle":
                return .reply(.stream { stream in
                    guard stream.write(head) else { return }
                    for _ in 0..<100 {
                        if stream.isServerStopping || !stream.write([UInt8(ascii: "x")]) { return }
                        Thread.sleep(forTimeInterval: 0.2)
                    }
                })
            case "/huge":
                return .reply(.stream { stream in
                    let chunk = [UInt8](repeating: UInt8(ascii: "y"), count: 64 * 1024)
                    guard stream.write(Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(hugeBody)\r\n\r\n".utf8)) else { return }
                    for _ in 0..<(hugeBody / chunk.count) {
                        guard stream.write(chunk) else { return }
                        hugeBytesSent.withLock { $0 += chunk.count }
                    }
                })
            case "/garbage":
                return .reply(.raw(Array("SMTP ready, not HTTP at all\r\n\r\n".utf8)))
            case "/reset":
                return .reply(.reset)
            default:
                return .ok
            }
        }
        let good = try makeReceiver()
        let paths = ["/silent", "/trickle", "/huge", "/garbage", "/reset"]
        try addTenant("hostile", endpoints: paths.map { path in
            endpoint(String(path.dropFirst()), tenant: "hostile", url: hostile.url(path), timeout: path == "/silent" ? 5 : 1.5)
        })
        try addTenant("friendly", endpoints: [endpoint("good", tenant: "friendly", url: good.url())])
        try startService(concurrentRequests: 8)

        let hostileEvent = try enqueue(tenant: "hostile")
        let goodEvents = try (0..<20).map { _ in try enqueue(tenant: "friendly").eventID }
        for id in goodEvents { try waitForFinalDeliveries(of: id) }
        XCTAssertEqual(good.requests.count, 20)
        let silent = try XCTUnwrap(store.deliveries(matching: DeliveryFilter(endpointID: "silent")).first)
        XCTAssertEqual(silent.status, .delivering, "the silent receiver still holds its attempt while the others are served")

        try waitUntil("the four fast hostile deliveries are final", timeout: 15) {
            try ["trickle", "huge", "garbage", "reset"].allSatisfy {
                try store.deliveries(matching: DeliveryFilter(endpointID: $0)).first?.status.isFinal == true
            }
        }
        let record = try XCTUnwrap(store.eventRecord(eventID: hostileEvent.eventID))
        let attempts = Dictionary(uniqueKeysWithValues: record.deliveries.compactMap { entry in
            entry.attempts.first.map { (entry.delivery.endpointID, $0) }
        })
        XCTAssertEqual(attempts["trickle"]?.errorKind, .timeout)
        XCTAssertLessThan(attempts["trickle"]?.durationMicroseconds ?? .max, 5_000_000, "the total timeout holds against a trickle")
        XCTAssertEqual(attempts["huge"]?.responseStatus, 200)
        XCTAssertEqual(attempts["huge"]?.responseBody?.count, 64 * 1024, "only the cap is kept")
        XCTAssertEqual(attempts["huge"]?.responseTruncated, true)
        XCTAssertLessThan(hugeBytesSent.value, hugeBody / 4, "the client stopped reading at the cap: the 50 MB never crossed")
        XCTAssertEqual(attempts["garbage"]?.errorKind, .protocol)
        XCTAssertEqual(attempts["reset"]?.errorKind, .network)
    }
}
