import Foundation
import Synchronization

/// Slows token guessing at the login form: after `freeFailures` wrong tokens from one client
/// address, each further try waits twice as long as the last (1 s, 2 s, ... up to 15 min),
/// the right token included, until a success. Guessing a 16-character token at that pace is
/// out of reach; a person who mistyped waits a second or two.
final class LoginThrottle: Sendable {
    private struct Record {
        var failures = 0
        var blockedUntil = Date.distantPast
        var lastSeen = Date()
    }

    static let freeFailures = 5
    static let maxDelay: Double = 15 * 60
    /// Clients remembered at most; the oldest are forgotten first (a flood of addresses cannot
    /// grow memory without bound).
    static let maxClients = 10_000

    private let records = Mutex<[String: Record]>([:])

    /// Seconds the client must wait before its next try, or nil when it may try now.
    func wait(for client: String, now: Date = Date()) -> Int? {
        records.withLock { records in
            guard let record = records[client], record.blockedUntil > now else { return nil }
            return max(1, Int(record.blockedUntil.timeIntervalSince(now).rounded(.up)))
        }
    }

    func recordFailure(for client: String, now: Date = Date()) {
        records.withLock { records in
            if records.count >= Self.maxClients, records[client] == nil,
               let oldest = records.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
                records[oldest] = nil
            }
            var record = records[client] ?? Record()
            record.failures += 1
            record.lastSeen = now
            let over = record.failures - Self.freeFailures
            if over >= 0 { record.blockedUntil = now.addingTimeInterval(min(Self.maxDelay, pow(2, Double(min(over, 20))))) }
            records[client] = record
        }
    }

    func recordSuccess(for client: String) {
        _ = records.withLock { $0.removeValue(forKey: client) }
    }
}
