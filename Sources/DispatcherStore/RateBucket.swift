import Foundation

/// An endpoint's token bucket as a claim reads it: `perSecond` tokens a second, holding at
/// most a tenth of a second's worth (at least one), so no second sees more than 1.1 times the
/// limit. The bucket lives in the endpoint's row and every claim, in any process, reads and
/// spends it under the claim's lock, so the limit holds across processes. A tenth of a second
/// is also the store loop's default poll interval: an idle loop wakes to a full bucket.
struct RateBucket {
    let perSecond: Double
    /// The tokens now (`asOf` a row's last spend, refilled since).
    let tokens: Double

    init(perSecond: Double, tokens stored: Double?, asOf: Int64?, now: Int64) {
        self.perSecond = perSecond
        let capacity = Self.capacity(perSecond: perSecond)
        guard let stored, let asOf else {
            tokens = capacity
            return
        }
        tokens = min(capacity, stored + Double(max(0, now - asOf)) / 1000 * perSecond)
    }

    static func capacity(perSecond: Double) -> Double { max(1, perSecond / 10) }

    /// Whole tokens: deliveries a claim may take now.
    var whole: Int { Int(max(0, tokens).rounded(.down)) }
}
