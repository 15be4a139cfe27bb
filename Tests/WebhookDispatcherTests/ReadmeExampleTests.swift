import Foundation
import XCTest
import WebhookDispatcher

/// The README's "Producing events" code, compiled and run, so the documentation cannot drift
/// from the API.
final class ReadmeExampleTests: XCTestCase {
    func testProducingTheSeedEventFamilies() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try OutboxStore.sqlite(path: directory.file("app.sqlite"))
        try store.upsert(
            tenants: ["acme", "hmo-1", "clinic-a", "idv-client", "kyc-client"].map { Tenant(id: $0, name: $0) },
            endpoints: [Endpoint(id: "all", tenantID: "hmo-1", url: "https://hmo.example/hooks")])
        let confirmedAt = Date()
        let verificationJSON = #"{"id":"01234567-89ab-cdef-0123-456789abcdef","status":"completed"}"#

        let result = try store.enqueue(NewEvent(tenantID: "acme", type: "order.shipped",
                                                json: #"{"order_id":"A-17"}"#, id: UUID()))
        XCTAssertFalse(result.isDuplicate)

        try store.enqueue(CheckinOutcome(
            authType: .otp, hmoID: 1, providerID: 10, enrolleeID: 1346,
            result: .succeeded(checkinID: 98765, confirmedAt: confirmedAt), occurredAt: Date()
        ).event(tenantID: "hmo-1"))

        let visit = VisitDetails(id: "28540", memberID: "60610", providerID: nil, start: 1546950546,
                                 end: 1546951446, actualStart: 1546950546, actualEnd: 1546950555)
        try store.enqueue(VisitEventV1(kind: .ended, created: 1546950556, accountCode: "acme",
                                       visit: visit, statusCode: 40, completedBy: "60610").event(tenantID: "clinic-a"))
        try store.enqueue(VisitEventV2(kind: .invoiceProcessed, created: 1546950556, clinicCode: "acme", visit: visit,
                                       status: "completed", statusUpdatedBy: "60610",
                                       invoice: .init(id: "132", status: .paid, amountDue: 2500, amountPaid: 2500, currency: "USD")
        ).event(tenantID: "clinic-a"))

        try store.enqueue(OnboardingStatusChanged(interviewID: "664283755e0f8e1b87fcc2ce", status: .onboardingFinished,
                                                  externalCustomerID: "MyCustomerID#0001").event(tenantID: "idv-client"))
        try store.enqueue(WatchlistUpdated(interviewID: "664283755e0f8e1b87fcc2ce", ref: "R-1", searchID: "S-9")
            .event(tenantID: "idv-client"))

        try store.enqueue(VerificationEvent(key: .documented("verification.completed"),
                                            dataJSON: Array(verificationJSON.utf8)).event(tenantID: "kyc-client"))

        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter()).map(\.eventType), ["checkin.outcome"])
    }

    /// Every ```swift block of the README type-checks against the product as a producer sees
    /// it: `import WebhookDispatcher`, nothing `package` or `@testable`. Each block becomes a
    /// function whose parameters are the names the README's prose gives them (`store`, `body`, ...).
    func testEverySwiftSnippetOfTheReadmeCompiles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        var snippets: [String] = []
        var current: [String]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```swift" {
                current = []
            } else if let lines = current, line.hasPrefix("```") {
                snippets.append(lines.filter { !$0.hasPrefix("import ") }.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(String(line))
            }
        }
        XCTAssertGreaterThanOrEqual(snippets.count, 6)
        let assumed = "store: OutboxStore, body: String, event: NewEvent, confirmedAt: Date, verificationJSON: String"
        let source = "import Foundation\nimport WebhookDispatcher\n\n" + snippets.enumerated().map { index, snippet in
            "func readmeSnippet\(index + 1)(\(assumed)) throws {\n\(snippet)\n}\n"
        }.joined(separator: "\n")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.file("ReadmeSnippets.swift")
        try source.write(toFile: file, atomically: true, encoding: .utf8)

        // The modules this test was built with sit beside it (and beside the `dispatcher` it runs).
        let modules = DispatcherTestCase.executable.deletingLastPathComponent().appendingPathComponent("Modules").path
        // Every system library target's module map (the product's modules import them).
        let sources = root.appendingPathComponent("Sources")
        let moduleMaps = try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted()
            .map { sources.appendingPathComponent("\($0)/module.modulemap").path }
            .filter { FileManager.default.fileExists(atPath: $0) }
            .flatMap { ["-Xcc", "-fmodule-map-file=" + $0] }
        let typecheck = try DispatcherTestCase.runTool(["swiftc", "-typecheck", "-I", modules] + moduleMaps + [file], timeout: 120)
        XCTAssertEqual(typecheck.status, 0, "README snippets do not compile:\n\(typecheck.stderr)\n\(source)")
    }

    /// The README's public API list names every public type of the product, and nothing
    /// public is left out of it.
    func testTheReadmeListsThePublicAPI() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(readme.range(of: "### The public API").map { readme[$0.upperBound...] })
        let list = String(section).components(separatedBy: "\n#").first ?? ""
        let declaration = try NSRegularExpression(pattern: #"^public (?:final |indirect )?(?:struct|class|enum|protocol) (\w+)"#, options: .anchorsMatchLines)
        var missing: [String] = [], found = 0
        let sources = root.appendingPathComponent("Sources")
        let files = try XCTUnwrap(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for match in declaration.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let name = (text as NSString).substring(with: match.range(at: 1))
                found += 1
                if !list.contains("`\(name)`") { missing.append(name) }
            }
        }
        XCTAssertGreaterThan(found, 40, "the scan found the public declarations")
        XCTAssertEqual(missing, [], "public types the README's API list does not name")
    }
}

