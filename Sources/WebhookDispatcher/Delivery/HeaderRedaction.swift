/// Decides which header values are credentials, so the audit log and every printout show
/// `***` in their place.
enum HeaderRedaction {
    static let placeholder = "***"

    private static let secretNames: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
    ]
    private static let secretFragments = ["token", "secret", "password", "passwd", "api-key", "apikey", "auth", "session", "credential"]

    static func isSecret(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return secretNames.contains(lowered) || secretFragments.contains { lowered.contains($0) }
    }

    /// Replaces credential values with `***`; `alsoSecret` adds names (any case) to redact.
    static func redact(_ headers: [HeaderField], alsoSecret: Set<String> = []) -> [HeaderField] {
        headers.map { isSecret($0.name) || alsoSecret.contains($0.name.lowercased()) ? HeaderField($0.name, placeholder) : $0 }
    }
}
