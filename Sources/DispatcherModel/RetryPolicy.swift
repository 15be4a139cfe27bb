import Foundation

/// When a failed attempt is tried again, and when the delivery is given up as `failed`.
public enum RetryPolicy: Sendable, Equatable {
    /// The onboarding seed's policy: on a timeout or any non-success, exactly one more identical
    /// try after `delaySeconds`; then the delivery has failed.
    case oneRetry(delaySeconds: Double)
    /// Exponential back-off with full jitter: retry `n` (1-based) waits a uniformly random
    /// time in `0 ... min(maxSeconds, initialSeconds * factor^(n-1))`.
    case exponential(Exponential)
    /// A fixed list of waits: retry `n` waits `delaysSeconds[n-1]`; one attempt more than
    /// there are delays.
    case schedule(Schedule)

    public struct Exponential: Sendable, Equatable {
        public var initialSeconds: Double
        public var factor: Double
        public var maxSeconds: Double
        /// Attempts in all, the first included.
        public var maxAttempts: Int
        /// Gives up once the next attempt would come later than this after the delivery was created.
        public var maxAgeSeconds: Double?

        public init(initialSeconds: Double = 5, factor: Double = 2, maxSeconds: Double = 3_600, maxAttempts: Int = 10,
                    maxAgeSeconds: Double? = nil) {
            self.initialSeconds = initialSeconds
            self.factor = factor
            self.maxSeconds = maxSeconds
            self.maxAttempts = maxAttempts
            self.maxAgeSeconds = maxAgeSeconds
        }
    }

    public struct Schedule: Sendable, Equatable {
        public var delaysSeconds: [Double]
        public var maxAgeSeconds: Double?

        public init(delaysSeconds: [Double], maxAgeSeconds: Double? = nil) {
            self.delaysSeconds = delaysSeconds
            self.maxAgeSeconds = maxAgeSeconds
        }

        /// Svix's retry waits: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
        public static let svix = Schedule(delaysSeconds: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000])
    }

    /// Ten attempts over roughly an hour and a half at most.
    public static let `default` = RetryPolicy.exponential(Exponential())

    /// How long a receiver's `Retry-After` may hold a retry back under one_retry.
    static let oneRetryRetryAfterCap: Double = 3_600

    /// The delay before the next attempt after `attemptsMade` attempts failed, or nil when the
    /// delivery has failed for good.
    ///
    /// - Parameters:
    ///   - ageSeconds: time since the delivery was created, for `maxAgeSeconds`.
    ///   - retryAfterSeconds: the receiver's `Retry-After` (429 and 503 only); it lengthens the
    ///     wait up to the policy's longest wait, never beyond.
    ///   - unitRandom: a number in `0..<1`, injected by tests.
    public func delayAfterFailure(attemptsMade: Int, ageSeconds: Double = 0, retryAfterSeconds: Double? = nil,
                                  unitRandom: Double = Double.random(in: 0..<1)) -> Double? {
        var delay: Double
        let cap: Double
        let maxAge: Double?
        switch self {
        case .oneRetry(let delaySeconds):
            guard attemptsMade < 2 else { return nil }
            delay = delaySeconds
            cap = max(delaySeconds, Self.oneRetryRetryAfterCap)
            maxAge = nil
        case .exponential(let policy):
            guard attemptsMade < policy.maxAttempts else { return nil }
            let exponent = Double(max(0, attemptsMade - 1))
            delay = min(policy.maxSeconds, policy.initialSeconds * pow(policy.factor, exponent)) * unitRandom
            cap = policy.maxSeconds
            maxAge = policy.maxAgeSeconds
        case .schedule(let schedule):
            guard attemptsMade >= 1, attemptsMade <= schedule.delaysSeconds.count else { return nil }
            delay = schedule.delaysSeconds[attemptsMade - 1]
            cap = schedule.delaysSeconds.max() ?? delay
            maxAge = schedule.maxAgeSeconds
        }
        if let retryAfterSeconds, retryAfterSeconds > delay {
            delay = max(delay, min(retryAfterSeconds, cap))
        }
        if let maxAge, ageSeconds + delay > maxAge { return nil }
        return delay
    }

    /// The most attempts this policy makes.
    public var maxAttempts: Int {
        switch self {
        case .oneRetry: return 2
        case .exponential(let policy): return policy.maxAttempts
        case .schedule(let schedule): return schedule.delaysSeconds.count + 1
        }
    }

    /// Whether retries must repeat the first request exactly (the onboarding seed), which pins
    /// `webhook-timestamp` (and so the signature) to the first attempt's.
    package var repeatsRequestExactly: Bool {
        if case .oneRetry = self { return true }
        return false
    }
}

/// A receiver's `Retry-After`: delay seconds or an HTTP date (RFC 9110 §10.2.3).
package enum RetryAfter {
    package static func seconds(from value: String?, now: Date = Date()) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value) { return seconds >= 0 ? Double(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}
