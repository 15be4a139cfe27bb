import CCrypto
import DispatcherModel
import Foundation

/// Signs deliveries by the endpoint's `SignatureScheme`: Standard Webhooks' `v1` (HMAC-SHA256)
/// and `v1a` (ed25519) over `id.timestamp.body`, one signature per secret, space-separated, so
/// receivers can rotate; or a hex HMAC-SHA256 of the body in a header of the endpoint's
/// choosing. The only place that calls libcrypto.
package enum WebhookSigner {
    /// The signature header for `secrets` (already resolved from `env:`); nil when none of them
    /// can sign (the config refuses such secrets, so only a bad environment value gets here).
    package static func signatureHeader(scheme: SignatureScheme, id: String, timestamp: Int, body: [UInt8],
                                        secrets: [String]) -> HeaderField? {
        switch scheme {
        case .standardWebhooks:
            let value = signature(id: id, timestamp: timestamp, body: body, secrets: secrets)
            return value.isEmpty ? nil : HeaderField("webhook-signature", value)
        case .standardWebhooksEd25519:
            let content = signedContent(id: id, timestamp: timestamp, body: body)
            let signatures = secrets.compactMap { secret -> String? in
                guard let seed = SigningSecret.ed25519Seed(of: secret), let signed = ed25519Sign(seed: seed, message: content) else { return nil }
                return "v1a," + Data(signed).base64EncodedString()
            }
            return signatures.isEmpty ? nil : HeaderField("webhook-signature", signatures.joined(separator: " "))
        case .hmacSHA256Hex(let header, let prefix):
            guard let secret = secrets.first else { return nil }
            return HeaderField(header, prefix + Hex.lowercase(hmacSHA256(key: Array(secret.utf8), message: body)))
        }
    }

    /// Standard Webhooks `v1` signatures of `id.timestamp.body`, one per `whsec_` secret.
    package static func signature(id: String, timestamp: Int, body: [UInt8], secrets: [String]) -> String {
        let message = signedContent(id: id, timestamp: timestamp, body: body)
        return secrets.compactMap { secret -> String? in
            guard let key = SigningSecret.key(of: secret) else { return nil }
            return "v1," + Data(hmacSHA256(key: key, message: message)).base64EncodedString()
        }.joined(separator: " ")
    }

    static func signedContent(id: String, timestamp: Int, body: [UInt8]) -> [UInt8] {
        Array("\(id).\(timestamp).".utf8) + body
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

    // MARK: - ed25519

    /// A new `whsk_` secret key and its `whpk_` public key.
    package static func newEd25519Key() -> (secret: String, publicKey: String)? {
        let secret = SigningSecret.ed25519Prefix + Data(Digest.randomBytes(32)).base64EncodedString()
        return publicKey(ofSecret: secret).map { (secret, $0) }
    }

    /// The `whpk_` public key of a `whsk_` secret, or nil when it is not one.
    package static func publicKey(ofSecret secret: String) -> String? {
        guard let seed = SigningSecret.ed25519Seed(of: secret), let key = ed25519PublicKey(seed: seed) else { return nil }
        return SigningSecret.publicKeyPrefix + Data(key).base64EncodedString()
    }

    /// The ed25519 private key of a 32-byte seed; the caller frees it.
    private static func ed25519PrivateKey(seed: [UInt8]) -> OpaquePointer? {
        guard seed.count == 32 else { return nil }
        return seed.withUnsafeBufferPointer { EVP_PKEY_new_raw_private_key(dispatcher_evp_pkey_ed25519(), nil, $0.baseAddress, 32) }
    }

    static func ed25519PublicKey(seed: [UInt8]) -> [UInt8]? {
        guard let key = ed25519PrivateKey(seed: seed) else { return nil }
        defer { EVP_PKEY_free(key) }
        var publicKey = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &publicKey, &length) == 1, length == 32 else { return nil }
        return publicKey
    }

    static func ed25519Sign(seed: [UInt8], message: [UInt8]) -> [UInt8]? {
        guard let key = ed25519PrivateKey(seed: seed) else { return nil }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64 else { return nil }
        return signature
    }

    static func ed25519Verify(publicKey: [UInt8], signature: [UInt8], message: [UInt8]) -> Bool {
        guard publicKey.count == 32,
              let key = publicKey.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(dispatcher_evp_pkey_ed25519(), nil, $0.baseAddress, 32) })
        else { return false }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        return EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
            && EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
    }
}

/// The receiving side of Standard Webhooks signatures, for `dispatcher receive --secret` and
/// for producers who test their receivers.
public enum SignatureVerifier {
    /// Why `secret` cannot verify: it must be a `whsec_` secret (`v1`) or a `whpk_` public key (`v1a`).
    public static func problem(withSecret secret: String) -> String? {
        if secret.hasPrefix(SigningSecret.publicKeyPrefix) {
            return SigningSecret.ed25519PublicKey(of: secret) == nil ? "the part after whpk_ must be the base64 of a 32-byte ed25519 public key" : nil
        }
        return SigningSecret.problem(with: secret).map { "\($0), or a whpk_ public key" }
    }

    /// True when a signature in `signature` matches: a `v1,` one made with the `whsec_` secret,
    /// or a `v1a,` one made with the private key of the `whpk_` public key.
    public static func verify(id: String?, timestamp: String?, signature: String?, body: [UInt8], secret: String) -> Bool {
        guard let id, let timestamp = timestamp.flatMap(Int.init), let signature else { return false }
        if let publicKey = SigningSecret.ed25519PublicKey(of: secret) {
            let content = WebhookSigner.signedContent(id: id, timestamp: timestamp, body: body)
            return signature.split(separator: " ").contains { part in
                guard part.hasPrefix("v1a,"), let bytes = Data(base64Encoded: String(part.dropFirst(4))) else { return false }
                return WebhookSigner.ed25519Verify(publicKey: publicKey, signature: [UInt8](bytes), message: content)
            }
        }
        let expected = WebhookSigner.signature(id: id, timestamp: timestamp, body: body, secrets: [secret])
        return signature.split(separator: " ").contains { Digest.constantTimeEquals(String($0), expected) }
    }
}
