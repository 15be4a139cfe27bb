import Foundation

/// How much of a response's headers an attempt records: a receiver that answers with
/// thousands of headers must not grow the audit log by hundreds of kilobytes an attempt. What
/// is past the cap is counted in one last entry, `X-Dispatcher-Headers-Truncated`.
public struct ResponseHeaderCap: Sendable, Equatable {
    /// Headers recorded at most.
    public var count: Int
    /// Bytes of header lines recorded at most.
    public var bytes: Int

    public init(count: Int = 100, bytes: Int = 16 * 1024) {
        self.count = count
        self.bytes = bytes
    }

    /// The entry that says how many headers were left out.
    public static let truncationHeader = "X-Dispatcher-Headers-Truncated"
}
