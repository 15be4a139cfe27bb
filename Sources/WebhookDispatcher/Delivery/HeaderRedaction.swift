/// Decides which header values are credentials, so the audit log and every printout show
/// `***` in their place.
enum HeaderRedaction {
    static let placeholder = "***"

    private static let secretNames: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
    ]
    private static let secretFragments = ["token", "secret", "password", "passwd", "api-key", "apikey", "auth", "session", "credential"]

    /// Runs for every header of every attempt, so it works on bytes, without Foundation.
    static func isSecret(_ name: String) -> Bool {
        let lowered = Array(name.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 })
        if secretNames.contains(String(decoding: lowered, as: UTF8.self)) { return true }
        return secretFragmentBytes.contains { fragment in
            lowered.count >= fragment.count
                && (0...(lowered.count - fragment.count)).contains { lowered[$0..<($0 + fragment.count)].elementsEqual(fragment) }
        }
    }

    private static let secretFragmentBytes = secretFragments.map { Array($0.utf8) }

    /// Header names (lowercased) an endpoint makes secret beyond the usual credential names:
    /// those it lists in `secret_headers`, and those whose value comes from the environment.
    static func secretNames(of endpoint: Endpoint) -> Set<String> {
        Set(endpoint.secretHeaders.map { $0.lowercased() })
            .union(endpoint.headers.filter { EnvironmentReference($0.value) != nil }.keys.map { $0.lowercased() })
    }

    /// Replaces credential values with `***`; `alsoSecret` adds names (any case) to redact.
    static func redact(_ headers: [HeaderField], alsoSecret: Set<String> = []) -> [HeaderField] {
        headers.map { isSecret($0.name) || alsoSecret.contains($0.name.lowercased()) ? HeaderField($0.name, placeholder) : $0 }
    }
}
