import Foundation
import Glibc

/// Which network addresses deliveries may connect to. By default only public unicast
/// addresses: a URL a customer typed must not reach the dispatcher's own network (SSRF).
///
/// The check runs on the address libcurl is about to connect to (see `HTTPClient`), so every
/// spelling of a host (`localhost`, `127.1`, `0x7f000001`, a DNS name that rebinds) is judged
/// by where it really goes.
public struct DestinationPolicy: Sendable, Equatable {
    /// Allows loopback, private, link-local and other non-public addresses (tests, internal use).
    public var allowPrivateAddresses: Bool
    /// Networks allowed even when `allowPrivateAddresses` is false.
    public var allowedNetworks: [IPNetwork]

    public init(allowPrivateAddresses: Bool = false, allowedNetworks: [IPNetwork] = []) {
        self.allowPrivateAddresses = allowPrivateAddresses
        self.allowedNetworks = allowedNetworks
    }

    /// Why connecting to `address` is refused, or nil when it is allowed.
    package func refusal(for address: UnsafePointer<sockaddr>) -> String? {
        guard let ip = IPAddress(address) else { return "address family \(address.pointee.sa_family) is not IPv4 or IPv6" }
        return refusal(for: ip)
    }

    package func refusal(for ip: IPAddress) -> String? {
        if allowPrivateAddresses || allowedNetworks.contains(where: { $0.contains(ip) }) { return nil }
        guard let range = IPNetwork.forbidden.first(where: { $0.network.contains(ip.unmappedIPv4 ?? ip) }) else { return nil }
        return "destination \(ip) is a \(range.name) address; set allow_private_addresses or allowed_networks to permit it"
    }
}

/// An IPv4 or IPv6 address as bytes (4 or 16).
package struct IPAddress: Sendable, Equatable, CustomStringConvertible {
    package let bytes: [UInt8]

    package init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    package init?(_ address: UnsafePointer<sockaddr>) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
            }
        case AF_INET6:
            bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
            }
        default:
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// 127.0.0.0/8, ::1, or either mapped into IPv6.
    package var isLoopback: Bool {
        let ip = unmappedIPv4 ?? self
        return ip.bytes.count == 4 ? ip.bytes[0] == 127 : ip.bytes == Array(repeating: 0, count: 15) + [1]
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`).
    var unmappedIPv4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    package var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var copy = bytes
        inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, &copy, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A CIDR block: `127.0.0.0/8`, `fc00::/7`.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    package let address: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let address = IPAddress(parts[0]) else { return nil }
        let maxLength = address.bytes.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : maxLength
        guard let length, (0...maxLength).contains(length) else { return nil }
        self.address = address
        self.prefixLength = length
    }

    package func contains(_ ip: IPAddress) -> Bool {
        guard ip.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for index in address.bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if ip.bytes[index] & mask != address.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// Every range that is not public unicast (RFC 6890 and friends).
    static let forbidden: [(network: IPNetwork, name: String)] = [
        ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local (cloud metadata)"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol"), ("192.0.2.0/24", "documentation"), ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"), ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("64:ff9b::/96", "NAT64"), ("100::/64", "discard"),
        ("2001:db8::/32", "documentation"), ("fc00::/7", "unique local (private)"), ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ].map { (IPNetwork($0.0)!, $0.1) }
}
