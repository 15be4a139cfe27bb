import Foundation

/// Which responses count as a successful delivery, as the receiver's documentation defines it.
public enum SuccessRule: String, Sendable, Equatable, CaseIterable, Codable {
    /// Any 2xx status (the default, and what Stripe, Svix and GitHub receivers expect).
    case any2xx = "2xx"
    /// 200 with a JSON content type, or 204: the onboarding seed's rule. A 200 `text/plain` fails.
    case json200Or204 = "json_200_or_204"

    public func isSuccess(status: Int, contentType: String?) -> Bool {
        switch self {
        case .any2xx:
            return (200...299).contains(status)
        case .json200Or204:
            if status == 204 { return true }
            guard status == 200, let contentType else { return false }
            let mediaType = contentType.split(separator: ";").first.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            } ?? ""
            return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
        }
    }
}
