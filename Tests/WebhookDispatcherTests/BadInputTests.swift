import Foundation
import XCTest
@testable import DispatcherModel
@testable import DispatcherStore
import WebhookDispatcher

/// Random and hostile input to enqueue, the config and the CLI: always a clear error, never a
/// crash, never a partial write.
final class BadInputTests: DispatcherTestCase {
    /// A small deterministic generator, so a failure can be replayed from its seed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// The byte-level validator against JSONSerialization on thousands of near-JSON documents:
    /// the same verdict on each, and for accepted ones the same top-level keys and strings.
    func testJSONValidatorAgreesWithJSONSerialization() throws {
        let seeds = [
            #"{"status":"ok","items":[1,-0,2.5,-3e7,0.1E-2,4E+2,"x",null,true,false,{"k":"v"},[]],"e":{}}"#,
            #" { "esc\"aped" : "\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 \u0000" , "raw": "é 漢 🙂" } "#,
            "{\n\t\"nested\": {\"a\": [[[{\"b\": [1, {\"c\": null}]}]]]}\r\n}",
            #"{"numbers":[0,10,123.456,1e5,1E-5,-0.0,99999999999999999999]}"#,
            // Long strings, which the validator reads 8 bytes at a time.
            #"{"long":"abcdefghijklmnopqrstuvwxyz 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ","pad":"xxxxxxxxxxxxxxxxxxxx"yyyyyyyyyyyy\zzzzzzzzzzzzzzzzz"}"#,
        ]
        let alphabet = Array(#"{}[]":,.-+eE0123456789\u tfnrlsa/"#.utf8) + [0x00, 0x0A, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        var random = SplitMix64(state: 81)
        var documents = seeds.map { Array($0.utf8) }
        for _ in 0..<4_000 {
            var document = Array(seeds.randomElement(using: &random)!.utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let index = Int.random(in: 0..<document.count, using: &random)
                let byte = alphabet.randomElement(using: &random)!
                switch Int.random(in: 0..<3, using: &random) {
                case 0: document[index] = byte
                case 1: document.remove(at: index)
                default: document.insert(byte, at: index)
                }
                if document.isEmpty { document = [byte] }
            }
            documents.append(document)
        }

        var disagreements: [String] = []
        var accepted = 0
        for document in documents {
            let reference = (try? JSONSerialization.jsonObject(with: Data(document), options: [.fragmentsAllowed])) as? [String: Any]
            let members = try? JSONValidation.topLevelMembers(document)
            if members != nil { accepted += 1 }
            // JSONSerialization on Linux takes a trailing comma; RFC 8259 and most receivers do not.
            let trailingComma = String(decoding: document, as: UTF8.self).range(of: #",\s*[}\]]"#, options: .regularExpression) != nil
            guard (reference != nil) == (members != nil) || (trailingComma && members == nil) else {
                disagreements.append("\(reference != nil ? "only JSONSerialization" : "only ours") accepts \(String(decoding: document, as: UTF8.self).debugDescription)")
                continue
            }
            guard let reference, let members else { continue }
            // The parser builds what JSONSerialization read, but in document order (and digits
            // past a double's precision rounded correctly: Foundation's last digit may differ).
            XCTAssertEqual(comparable(try JSONValidation.parse(document)), comparable(JSONValue(foundation: reference)),
                           String(decoding: document, as: UTF8.self))
            XCTAssertEqual(Set(members.map(\.key)), Set(reference.keys))
            for member in members where document[member.value.lowerBound] == UInt8(ascii: "\"") {
                let decoded = document.withUnsafeBufferPointer { JSONValidation.decodeString($0, member.value) }
                if let expected = reference[member.key] as? String, members.last(where: { $0.key == member.key })!.value == member.value {
                    XCTAssertEqual(decoded, expected)
                }
            }
        }
        XCTAssertEqual(disagreements, [], "\(disagreements.count) of \(documents.count) disagree")
        XCTAssertGreaterThan(accepted, 100, "the mutations leave plenty of valid documents")
        XCTAssertLessThan(accepted, documents.count - 1_000, "and plenty of invalid ones")
    }

    /// A quote, a backslash or a control character at every place in a long string is seen,
    /// whichever of the 8-byte words read at once it falls in; bytes from 0x80 up are left to
    /// UTF-8 validation, which still refuses a broken sequence in an otherwise ASCII body.
    func testEveryByteOfALongStringIsLookedAt() throws {
        let plain = Array(String(repeating: "acdeghij", count: 5).utf8)  // no letter that escapes
        for offset in plain.indices {
            func document(_ bytes: [UInt8]) -> [UInt8] {
                var inner = plain
                inner.replaceSubrange(offset..<(offset + 1), with: bytes)
                return Array(#"{"s":""#.utf8) + inner + Array(#""}"#.utf8)
            }
            for control: UInt8 in [0x00, 0x0A, 0x1F] {
                XCTAssertThrowsError(try JSONValidation.topLevelMembers(document([control])), "control character at \(offset)")
            }
            XCTAssertThrowsError(try JSONValidation.topLevelMembers(document([UInt8(ascii: "\"")])), "a quote at \(offset) ends the string early")
            XCTAssertThrowsError(try JSONValidation.topLevelMembers(document([UInt8(ascii: "\\")])), "a backslash at \(offset) escapes the next byte")
            XCTAssertThrowsError(try JSONValidation.topLevelMembers(document([0xC3])), "a lone lead byte at \(offset)")
            for valid in [[UInt8(ascii: "\\"), UInt8(ascii: "\"")], [0xC3, 0xA9], [0x7F], Array(#"\u00e9"#.utf8)] {
                let members = try JSONValidation.topLevelMembers(document(valid))
                XCTAssertEqual(members.map(\.key), ["s"], "\(valid) at \(offset)")
            }
        }
    }

    /// Objects' keys sorted and a repeated key's last value kept, as `JSONValue(foundation:)` has
    /// them; doubles to 12 significant digits.
    private func comparable(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements): return .array(elements.map(comparable))
        case .object(let members):
            let last = Dictionary(members.map { ($0.0, comparable($0.1)) }, uniquingKeysWith: { _, last in last })
            return .object(last.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        case .number(let number): return .number(Double(String(format: "%.12g", number)) ?? number)
        default: return value
        }
    }

    func testRandomAndHostileBodiesAreRejectedCleanlyOrStoredWhole() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        var random = SplitMix64(state: 20261122)
        var bodies: [[UInt8]] = [
            Array(String(repeating: "[", count: 5_000).utf8),
            Array(("{\"a\":" + String(repeating: "{\"a\":", count: 2_000) + "1" + String(repeating: "}", count: 2_001)).utf8),
            Array(#"{"n": 1e999999}"#.utf8),
            Array(#"{"n": -123456789012345678901234567890123456789012345678901234567890}"#.utf8),
            Array(#"{"n": 0.000000000000000000000000000000000000000000000000000001}"#.utf8),
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D],   // {"a":"<invalid UTF-8>"}
            [0xEF, 0xBB, 0xBF] + Array("{}".utf8),                            // a byte-order mark
            Array("{\"a\":\"\u{0}\"}".utf8),
            Array(#"{"a": "\ud800"}"#.utf8),                                   // a lone surrogate escape
            Array(#"{"a": 1,}"#.utf8),
            Array(#"{"a": NaN}"#.utf8),
            Array("{\"a\":1}\u{0}garbage".utf8),
        ]
        let valid = Array(#"{"status":"ok","items":[1,2.5,"x",null,true,{"k":"v"}]}"#.utf8)
        for _ in 0..<1_500 {
            var body = valid
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let index = Int.random(in: 0..<body.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: body[index] = UInt8.random(in: 0...255, using: &random)
                case 1: body.remove(at: index)
                default: body.insert(UInt8.random(in: 0...255, using: &random), at: index)
                }
                if body.isEmpty { body = [0] }
            }
            bodies.append(body)
        }
        for _ in 0..<300 {
            bodies.append((0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        }

        var accepted = 0
        for body in bodies {
            do {
                try store.enqueue(NewEvent(tenantID: "tenant-a", type: "t", body: body))
                accepted += 1
            } catch let error as DispatcherError {
                guard case .invalidJSON = error else { return XCTFail("unexpected \(error) for \(body)") }
            }
        }
        let events = try store.withConnection { try $0.query("SELECT count(*) FROM events") { $0.int(0) } }.first
        let deliveries = try store.withConnection { try $0.query("SELECT count(*) FROM deliveries") { $0.int(0) } }.first
        XCTAssertEqual(events, accepted, "every accepted body was stored, no rejected one was")
        XCTAssertEqual(deliveries, accepted, "each stored event has its delivery: nothing half-written")
        XCTAssertGreaterThan(accepted, 0)
        XCTAssertLessThan(accepted, bodies.count)
    }

    func testMutatedConfigsAreEitherValidOrAClearConfigurationError() throws {
        let example = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config.example.json"))
        var random = SplitMix64(state: 7)
        let replacements: [Any] = [NSNull(), "text", -1, 0, 1.5, true, [Any](), [String: Any](), 1e300, "env:", "https://x.example/h"]

        func mutate(_ value: Any, depth: Int) -> Any {
            if var object = value as? [String: Any], !object.isEmpty {
                let key = object.keys.sorted()[Int.random(in: 0..<object.count, using: &random)]
                switch Int.random(in: 0..<4, using: &random) {
                case 0: object[key] = replacements[Int.random(in: 0..<replacements.count, using: &random)]
                case 1: object["unexpected_\(key)"] = 1
                case 2: object[key] = nil
                default: object[key] = mutate(object[key]!, depth: depth + 1)
                }
                return object
            }
            if var array = value as? [Any], !array.isEmpty {
                let index = Int.random(in: 0..<array.count, using: &random)
                array[index] = mutate(array[index], depth: depth + 1)
                return array
            }
            return replacements[Int.random(in: 0..<replacements.count, using: &random)]
        }

        let original = try JSONSerialization.jsonObject(with: example)
        var rejected = 0
        for _ in 0..<500 {
            let data = try JSONSerialization.data(withJSONObject: mutate(original, depth: 0))
            do {
                _ = try DispatcherConfiguration.parse(data, baseDirectory: "/tmp")
            } catch let error as DispatcherError {
                guard case .invalidConfiguration(_, let message) = error, !message.isEmpty else { return XCTFail("unexpected \(error)") }
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 100)
    }

    func testBadCommandLinesExitWithUsageOrRuntimeErrorsNeverACrash() throws {
        try addTenant(endpoints: [])
        let cases: [[String]] = [
            ["enqueue"], ["enqueue", "--tenant"], ["enqueue", "--tenant", "tenant-a", "--type", "t", "--id", "not-a-uuid"],
            ["enqueue", "--tenant", "tenant-a", "--type", "bad type", "--data", "{}"],
            ["enqueue", "--tenant", "tenant-a", "--type", "t", "--data", "@/nonexistent/file"],
            ["enqueue", "--tenant", "tenant-a", "--type", "t", "--data", "[]", "extra"],
            ["log", "--limit", "-5"], ["log", "--limit", "ten"], ["log", "--status", ""], ["log", "--since", "5x"],
            ["log", "--json=yes"], ["log", "--tenant", "a", "--tenant", "b"], ["show"], ["show", "1", "2"], ["show", "'; DROP TABLE events; --"],
            ["serve", "--workers", "0"], ["serve", "--config", "/dev/null"], ["receive", "--port", "70000"],
            ["--nonsense"], ["log", "--db", "/nonexistent/dir/x.sqlite"],
        ]
        for arguments in cases {
            let result = try run(arguments + (arguments.contains("--db") || arguments.first == "receive" || arguments.first == "--nonsense" ? [] : ["--db", databaseLocation]))
            XCTAssertTrue([1, 2].contains(result.status), "\(arguments): exit \(result.status)")
            XCTAssertTrue(result.stderr.hasPrefix("error: "), "\(arguments): \(result.stderr)")
        }
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT count(*) FROM events") { $0.int(0) } }, [0])
    }
}
