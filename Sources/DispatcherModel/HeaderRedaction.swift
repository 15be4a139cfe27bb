/// Decides which header values are credentials, so the audit log and every printout show
/// `***` in their place.
package enum HeaderRedaction {
    static let placeholder = "***"

    /// Whole names that are credentials, and fragments that make any name containing them one
    /// (both lowercase; names compare in any case).
    static let secretNames = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
    ]
    static let secretFragments = ["token", "secret", "password", "passwd", "api-key", "apikey", "auth", "session", "credential"]

    /// Runs for every header of every attempt, so it compares bytes in place: no lowercased
    /// copy, no hashing, and at each offset only the fragments that start with its byte (most
    /// offsets start none).
    static func isSecret(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { name in
            func lowered(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte + 32 : byte }
            func matches(_ word: [UInt8], at offset: Int) -> Bool {
                guard word.count <= name.count - offset else { return false }
                for index in word.indices where lowered(name[offset + index]) != word[index] { return false }
                return true
            }
            if secretNameBytes.contains(where: { $0.count == name.count && matches($0, at: 0) }) { return true }
            for offset in name.indices {
                for fragment in fragmentsByFirstByte[Int(lowered(name[offset]))] where matches(fragment, at: offset) { return true }
            }
            return false
        }
    }

    private static let secretNameBytes = secretNames.map { Array($0.utf8) }
    /// `secretFragments` as bytes, listed under their first byte.
    private static let fragmentsByFirstByte: [[[UInt8]]] = {
        let fragments = secretFragments.map { Array($0.utf8) }
        return (0..<256).map { byte in fragments.filter { $0.first == UInt8(byte) } }
    }()

    /// Header names (lowercased) an endpoint makes secret beyond the usual credential names:
    /// those it lists in `secret_headers`, and those whose value comes from the environment.
    package static func secretNames(of endpoint: Endpoint) -> Set<String> {
        Set(endpoint.secretHeaders.map { $0.lowercased() })
            .union(endpoint.headers.filter { EnvironmentReference($0.value) != nil }.keys.map { $0.lowercased() })
    }

    /// Replaces credential values with `***`; `alsoSecret` adds names (any case) to redact.
    /// Runs twice per attempt; usually nothing is secret, and then the same array comes back
    /// without a copy.
    package static func redact(_ headers: [HeaderField], alsoSecret: Set<String> = []) -> [HeaderField] {
        func secret(_ header: HeaderField) -> Bool {
            isSecret(header.name) || (!alsoSecret.isEmpty && alsoSecret.contains(header.name.lowercased()))
        }
        guard let first = headers.firstIndex(where: secret) else { return headers }
        var redacted = headers
        for index in first..<redacted.count where secret(redacted[index]) {
            redacted[index] = HeaderField(redacted[index].name, placeholder)
        }
        return redacted
    }
}
