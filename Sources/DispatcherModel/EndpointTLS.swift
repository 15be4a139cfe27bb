import Foundation

/// TLS beyond the system's defaults, for receivers in healthcare and finance that demand a
/// client certificate, run their own certificate authority, or pin their key.
public struct EndpointTLS: Sendable, Equatable {
    /// The PEM client certificate: a file path, or `env:NAME` holding the PEM text.
    public var clientCertificate: String?
    /// The PEM private key of the client certificate: a file path, or `env:NAME` holding the PEM text.
    public var clientKey: String?
    /// A PEM file of the authorities that sign the receiver's certificate: trusted for this
    /// endpoint only, and instead of the system's.
    public var caFile: String?
    /// `sha256//<base64 SHA-256 of the receiver's public key>` (several joined by `;`): the
    /// receiver's key must be one of them, whoever signed its certificate.
    public var pinnedPublicKey: String?

    public init(clientCertificate: String? = nil, clientKey: String? = nil, caFile: String? = nil, pinnedPublicKey: String? = nil) {
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.caFile = caFile
        self.pinnedPublicKey = pinnedPublicKey
    }

    /// Decodes `{"client_cert"?, "client_key"?, "ca_file"?, "pinned_public_key"?}`. With
    /// `checkFiles`, named files must be readable now (the config and the CLI; not the store,
    /// which reads what was once checked).
    package static func decode(_ reader: JSONReader, checkFiles: Bool) throws -> EndpointTLS {
        let tls = EndpointTLS(clientCertificate: try reader.string("client_cert"), clientKey: try reader.string("client_key"),
                              caFile: try reader.string("ca_file"), pinnedPublicKey: try reader.string("pinned_public_key"))
        try reader.rejectUnknownKeys()
        if (tls.clientCertificate == nil) != (tls.clientKey == nil) {
            throw reader.fail(tls.clientCertificate == nil ? "client_cert" : "client_key", "client_cert and client_key go together")
        }
        if let pins = tls.pinnedPublicKey,
           !pins.split(separator: ";", omittingEmptySubsequences: false).allSatisfy({ $0.hasPrefix("sha256//") && $0.count > 8 }) {
            throw reader.fail("pinned_public_key", "must be sha256//<base64>, several joined by ';'")
        }
        if checkFiles {
            for (key, value) in [("client_cert", tls.clientCertificate), ("client_key", tls.clientKey), ("ca_file", tls.caFile)] {
                guard let value, EnvironmentReference(value) == nil || key == "ca_file" else { continue }
                guard FileManager.default.isReadableFile(atPath: value) else { throw reader.fail(key, "cannot read the file '\(value)'") }
            }
        }
        return tls
    }

    /// The config's `tls` object.
    package var configObject: [String: Any] {
        var object: [String: Any] = [:]
        object["client_cert"] = clientCertificate
        object["client_key"] = clientKey
        object["ca_file"] = caFile
        object["pinned_public_key"] = pinnedPublicKey
        return object
    }
}
