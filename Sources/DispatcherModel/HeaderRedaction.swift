/// Decides which header values are credentials, so the audit log and every printout show
/// `***` in their place.
package enum HeaderRedaction {
    static let placeholder = "***"

    private static let secretNames = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
    ]
    private static let secretFragments = ["token", "secret", "password", "passwd", "api-key", "apikey", "auth", "session", "credential"]

    /// Runs for every header of every attempt, so it compares bytes in place: no lowercased
    /// copy, no hashing.
    static func isSecret(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { name in
            func matches(_ word: [UInt8], at offset: Int) -> Bool {
                for index in word.indices {
                    let byte = name[offset + index]
                    if (byte >= 65 && byte <= 90 ? byte + 32 : byte) != word[index] { return false }
                }
                return true
            }
            if secretNameBytes.contains(where: { $0.count == name.count && matches($0, at: 0) }) { return true }
            return secretFragmentBytes.contains { fragment in
                fragment.count <= name.count && (0...(name.count - fragment.count)).contains { matches(fragment, at: $0) }
            }
        }
    }

    private static let secretNameBytes = secretNames.map { Array($0.utf8) }
    private static let secretFragmentBytes = secretFragments.map { Array($0.utf8) }

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
