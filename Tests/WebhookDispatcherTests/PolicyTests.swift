import Foundation
import XCTest
@testable import DispatcherModel
import WebhookDispatcher

/// Retry schedules, success rules and the address policy, as pure functions.
final class PolicyTests: XCTestCase {
    func testOneRetryAllowsExactlyOneRetry() {
        let policy = RetryPolicy.oneRetry(delaySeconds: 5)
        XCTAssertEqual(policy.delayAfterFailure(attemptsMade: 1), 5)
        XCTAssertNil(policy.delayAfterFailure(attemptsMade: 2))
    }

    func testExponentialUsesFullJitterUnderACappedCeiling() {
        let policy = RetryPolicy.exponential(.init(initialSeconds: 2, factor: 3, maxSeconds: 30, maxAttempts: 5))
        XCTAssertEqual(policy.delayAfterFailure(attemptsMade: 1, unitRandom: 0.999_999)!, 2, accuracy: 0.001)
        XCTAssertEqual(policy.delayAfterFailure(attemptsMade: 2, unitRandom: 0.5), 3)
        XCTAssertEqual(policy.delayAfterFailure(attemptsMade: 3, unitRandom: 0.5), 9)
        XCTAssertEqual(policy.delayAfterFailure(attemptsMade: 4, unitRandom: 0.5), 15, "capped at max_seconds")
        XCTAssertEqual(policy.delayAfterFailure(attemptsMade: 4, unitRandom: 0), 0)
        XCTAssertNil(policy.delayAfterFailure(attemptsMade: 5))
        for _ in 0..<100 {
            let delay = policy.delayAfterFailure(attemptsMade: 3)!
            XCTAssertTrue((0..<18).contains(delay), "\(delay)")
        }
    }

    func testSuccessRules() {
        XCTAssertTrue(SuccessRule.any2xx.isSuccess(status: 200, contentType: nil))
        XCTAssertTrue(SuccessRule.any2xx.isSuccess(status: 299, contentType: "text/html"))
        XCTAssertFalse(SuccessRule.any2xx.isSuccess(status: 302, contentType: nil))
        XCTAssertTrue(SuccessRule.json200Or204.isSuccess(status: 204, contentType: nil))
        XCTAssertTrue(SuccessRule.json200Or204.isSuccess(status: 200, contentType: "application/json"))
        XCTAssertTrue(SuccessRule.json200Or204.isSuccess(status: 200, contentType: "Application/JSON; charset=utf-8"))
        XCTAssertTrue(SuccessRule.json200Or204.isSuccess(status: 200, contentType: "application/problem+json"))
        XCTAssertFalse(SuccessRule.json200Or204.isSuccess(status: 200, contentType: "text/plain"))
        XCTAssertFalse(SuccessRule.json200Or204.isSuccess(status: 200, contentType: nil))
        XCTAssertFalse(SuccessRule.json200Or204.isSuccess(status: 201, contentType: "application/json"))
    }

    func testDefaultDestinationPolicyRefusesEveryNonPublicRange() {
        let policy = DestinationPolicy()
        for address in ["127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                        "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "ff02::1"] {
            XCTAssertNotNil(policy.refusal(for: IPAddress(address)!), address)
        }
        for address in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            XCTAssertNil(policy.refusal(for: IPAddress(address)!), address)
        }
        XCTAssertNil(DestinationPolicy(allowPrivateAddresses: true).refusal(for: IPAddress("127.0.0.1")!))
    }

    func testCredentialHeadersAreRedacted() {
        let redacted = HeaderRedaction.redact([
            HeaderField("Authorization", "Bearer abc"), HeaderField("X-Api-Key", "k"), HeaderField("X-Auth-Token", "t"),
            HeaderField("X-Client-Secret", "s"), HeaderField("Content-Type", "application/json"), HeaderField("X-Clinic", "a"),
        ])
        XCTAssertEqual(redacted.map(\.value), ["***", "***", "***", "***", "application/json", "a"])
        // Any case, whole names and fragments anywhere in the name; near misses stay visible.
        for name in ["COOKIE", "Set-Cookie", "x-SESSION-id", "X-Upstream-PassWord", "token"] {
            XCTAssertTrue(HeaderRedaction.isSecret(name), name)
        }
        for name in ["Cookies-Allowed", "X-Tok", "Content-Length", ""] {
            XCTAssertFalse(HeaderRedaction.isSecret(name), name)
        }
        XCTAssertEqual(HeaderRedaction.redact([HeaderField("X-Clinic", "a")], alsoSecret: ["x-clinic"]).map(\.value), ["***"])
        // A secret after plain headers, and plain ones between and after secrets.
        XCTAssertEqual(HeaderRedaction.redact([
            HeaderField("Content-Type", "a"), HeaderField("X-Clinic", "b"), HeaderField("Cookie", "c"),
            HeaderField("Accept", "d"), HeaderField("X-Refresh-Token", "e"), HeaderField("X-Site", "f"),
        ], alsoSecret: ["x-site"]).map(\.value), ["a", "b", "***", "d", "***", "***"])
        let plain = [HeaderField("Content-Type", "application/json"), HeaderField("X-Clinic", "a")]
        XCTAssertEqual(HeaderRedaction.redact(plain, alsoSecret: ["x-other"]), plain)
    }

    /// `isSecret` compares bytes in place, fragment by first byte; it must say what the plain
    /// definition says (the lowercased name is a secret name, or contains a secret fragment) for
    /// names built from pieces of secret words, in mixed case.
    func testSecretHeaderNamesMatchThePlainDefinition() {
        let pieces = ["tok", "en", "TOKEN", "auth", "Au", "th", "x-", "SECRET", "sec", "ret", "pass", "wd", "word", "api", "-", "key",
                      "Cookie", "set-", "session", "Sess", "ion", "cred", "ential", "a", "T", "p", "k", "ey", "proxy-", "authorization"]
        var generator = BadInputTests.SplitMix64(state: 20261202)
        var secrets = 0
        for _ in 0..<5_000 {
            var name = ""
            for _ in 0..<(1 + generator.next() % 4) {
                let piece = pieces[Int(generator.next() % UInt64(pieces.count))]
                name += generator.next() % 3 == 0 ? piece.uppercased() : piece
            }
            let lower = name.lowercased()
            let expected = HeaderRedaction.secretNames.contains(lower) || HeaderRedaction.secretFragments.contains { lower.contains($0) }
            XCTAssertEqual(HeaderRedaction.isSecret(name), expected, name)
            if expected { secrets += 1 }
        }
        XCTAssertGreaterThan(secrets, 500, "the names exercise both answers")
        XCTAssertLessThan(secrets, 4_500, "the names exercise both answers")
    }

    func testEventTypePatterns() {
        XCTAssertTrue(EventType.glob("visit.*", matches: "visit.note.signed_and_sent"))
        XCTAssertFalse(EventType.glob("visit.*", matches: "visits"))
        XCTAssertTrue(EventType.glob("*.created", matches: "verification.created"))
        XCTAssertTrue(EventType.glob("a*b*c", matches: "abc"))
        XCTAssertFalse(EventType.glob("a*b*c", matches: "acb"))
        XCTAssertTrue(EventType.isValid("verification.frontIdCardResult.created"))
        XCTAssertFalse(EventType.isValid("visit.*"))
        XCTAssertTrue(EventType.isValidPattern("visit.*"))
    }
}
