import CCrypto
import DispatcherModel
import Foundation

/// Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
/// one signature per active secret, space-separated, so receivers can rotate secrets.
/// The only place that calls libcrypto.
package enum WebhookSigner {
    /// The header value for `secrets` (each `whsec_<base64>`, already resolved).
    package static func signature(id: String, timestamp: Int, body: [UInt8], secrets: [String]) -> String {
        let message = Array("\(id).\(timestamp).".utf8) + body
        return secrets.compactMap { secret -> String? in
            guard let key = SigningSecret.key(of: secret) else { return nil }
            return "v1," + Data(hmacSHA256(key: key, message: message)).base64EncodedString()
        }.joined(separator: " ")
    }

    package static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(key.count), messageBytes.bindMemory(to: UInt8.self).baseAddress,
                     message.count, &digest, &length)
            }
        }
        return Array(digest.prefix(Int(length)))
    }
}

/// The receiving side of Standard Webhooks signatures, for `dispatcher receive --secret` and
/// for producers who test their receivers.
public enum SignatureVerifier {
    public static func problem(withSecret secret: String) -> String? { SigningSecret.problem(with: secret) }

    /// True when any `v1,` signature in `signature` matches `secret` over id, timestamp and body.
    public static func verify(id: String?, timestamp: String?, signature: String?, body: [UInt8], secret: String) -> Bool {
        guard let id, let timestamp = timestamp.flatMap(Int.init), let signature else { return false }
        let expected = WebhookSigner.signature(id: id, timestamp: timestamp, body: body, secrets: [secret])
        return signature.split(separator: " ").contains { $0 == expected }
    }
}
