import Foundation

/// When a failed attempt is tried again, and when the delivery is given up as `failed`.
public enum RetryPolicy: Sendable, Equatable {
    /// The onboarding seed's policy: on a timeout or any non-success, exactly one more identical
    /// try after `delaySeconds`; then the delivery has failed.
    case oneRetry(delaySeconds: Double)
    /// Exponential back-off with full jitter: retry `n` (1-based) waits a uniformly random
    /// time in `0 ... min(maxSeconds, initialSeconds * factor^(n-1))`; after `maxAttempts`
    /// attempts in all the delivery has failed.
    case exponential(Exponential)

    public struct Exponential: Sendable, Equatable {
        public var initialSeconds: Double
        public var factor: Double
        public var maxSeconds: Double
        public var maxAttempts: Int

        public init(initialSeconds: Double = 5, factor: Double = 2, maxSeconds: Double = 3_600, maxAttempts: Int = 10) {
            self.initialSeconds = initialSeconds
            self.factor = factor
            self.maxSeconds = maxSeconds
            self.maxAttempts = maxAttempts
        }
    }

    /// Ten attempts over roughly an hour and a half at most.
    public static let `default` = RetryPolicy.exponential(Exponential())

    /// The delay before the next attempt after `attemptsMade` failed ones, or nil when the
    /// delivery has failed for good. `unitRandom` is a number in `0..<1` (injected for tests).
    public func delayAfterFailure(attemptsMade: Int, unitRandom: Double = Double.random(in: 0..<1)) -> Double? {
        switch self {
        case .oneRetry(let delaySeconds):
            return attemptsMade < 2 ? delaySeconds : nil
        case .exponential(let policy):
            guard attemptsMade < policy.maxAttempts else { return nil }
            let exponent = Double(max(0, attemptsMade - 1))
            let ceiling = min(policy.maxSeconds, policy.initialSeconds * pow(policy.factor, exponent))
            return ceiling * unitRandom
        }
    }

    /// The most attempts this policy makes.
    public var maxAttempts: Int {
        switch self {
        case .oneRetry: return 2
        case .exponential(let policy): return policy.maxAttempts
        }
    }
}
