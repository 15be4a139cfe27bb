import CCurl  // its headers bring the socket constants (SOCK_STREAM) getaddrinfo takes
import DispatcherModel
import Foundation
import Glibc
import Synchronization

/// The destination guard for requests a proxy connects onward, which the socket check cannot
/// see: the endpoint's host is resolved here and each of its addresses judged before anything
/// is sent to the proxy. Verdicts are kept for `lifetime`, so only the first request to a host
/// in that time waits for DNS: `TransferLoop` hands a request whose verdict is not known to a
/// helper thread, since resolving blocks. (The proxy resolves the name again; its own rules
/// are the last line against a name that changes its answer in between, with or without the
/// cache.)
package final class ProxiedDestinations: Sendable {
    package static let shared = ProxiedDestinations()

    /// Why a destination is refused: the error kind and message of the attempt.
    package typealias Refusal = (kind: AttemptErrorKind, message: String)

    static let lifetime: TimeInterval = 30
    static let maxEntries = 10_000

    private let verdicts = Mutex<[String: (refusal: Refusal?, until: Date)]>([:])

    /// True when `url`'s verdict is known and fresh: judging it will not block.
    package func isKnown(_ url: String, policy: DestinationPolicy) -> Bool {
        let key = Self.key(url, policy)
        return verdicts.withLock { $0[key].map { $0.until > Date() } ?? false }
    }

    /// The refusal for `url` under `policy`, or nil when every address of its host is allowed.
    /// Resolves (blocking) when no fresh verdict is kept.
    package func judge(_ url: String, policy: DestinationPolicy) -> Refusal? {
        let key = Self.key(url, policy)
        let now = Date()
        if let kept = verdicts.withLock({ $0[key] }), kept.until > now { return kept.refusal }
        let refusal = Self.resolveAndJudge(url, policy: policy)
        // A failed lookup is not kept: the next request asks DNS again.
        if refusal?.kind != .dns {
            verdicts.withLock { kept in
                if kept.count >= Self.maxEntries { kept.removeAll() }
                kept[key] = (refusal, now.addingTimeInterval(Self.lifetime))
            }
        }
        return refusal
    }

    private static func key(_ url: String, _ policy: DestinationPolicy) -> String {
        (URLComponents(string: url)?.host ?? url) + "|" + String(describing: policy)
    }

    static func resolveAndJudge(_ url: String, policy: DestinationPolicy) -> Refusal? {
        guard let components = URLComponents(string: url), var host = components.host, !host.isEmpty else {
            return (.blocked, "'\(url)' has no host")
        }
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, nil, &hints, &results)
        guard code == 0, let first = results else {
            return (.dns, "cannot resolve \(host) to check it against the destination guard (\(String(cString: gai_strerror(code))))")
        }
        defer { freeaddrinfo(first) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr, let reason = policy.refusal(for: address) {
                return (.blocked, reason)
            }
            entry = current.pointee.ai_next
        }
        return nil
    }
}
