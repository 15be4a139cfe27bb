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

    /// A host's verdict: the refusal (nil: allowed), under which policy, kept until when.
    private struct Verdict {
        let policy: DestinationPolicy
        let refusal: Refusal?
        let until: Date
    }

    private let verdicts = Mutex<[String: Verdict]>([:])

    /// True when `url`'s verdict is known and fresh: judging it will not block.
    package func isKnown(_ url: String, policy: DestinationPolicy) -> Bool {
        kept(Self.host(url), policy: policy, now: Date()) != nil
    }

    /// The refusal for `url` under `policy`, or nil when every address of its host is allowed.
    /// Resolves (blocking) when no fresh verdict is kept.
    package func judge(_ url: String, policy: DestinationPolicy) -> Refusal? {
        let host = Self.host(url), now = Date()
        if let kept = kept(host, policy: policy, now: now) { return kept.refusal }
        let refusal = Self.resolveAndJudge(url, policy: policy)
        // A failed lookup is not kept: the next request asks DNS again.
        if refusal?.kind != .dns {
            verdicts.withLock { kept in
                if kept.count >= Self.maxEntries { kept.removeAll() }
                kept[host] = Verdict(policy: policy, refusal: refusal, until: now.addingTimeInterval(Self.lifetime))
            }
        }
        return refusal
    }

    /// The fresh verdict kept for `host` under `policy`, if any.
    private func kept(_ host: String, policy: DestinationPolicy, now: Date) -> Verdict? {
        verdicts.withLock { verdicts in
            guard let kept = verdicts[host], kept.policy == policy, kept.until > now else { return nil }
            return kept
        }
    }

    private static func host(_ url: String) -> String { URLComponents(string: url)?.host ?? url }

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
