import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// `application/x-www-form-urlencoded` pairs, as query strings and HTML forms send them.
package struct FormData: Sendable, Equatable {
    package private(set) var pairs: [(name: String, value: String)] = []

    package init(_ encoded: String) {
        for part in encoded.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(pieces[0]), value = pieces.count > 1 ? Self.decode(pieces[1]) : ""
            pairs.append((name, value))
        }
    }

    /// The query of a request target (`/deliveries?status=failed`).
    package init(query target: String) {
        self.init(target.firstIndex(of: "?").map { String(target[target.index(after: $0)...]) } ?? "")
    }

    /// The first value for `name`; empty values count as absent (an untouched form field).
    package subscript(name: String) -> String? {
        guard let value = pairs.first(where: { $0.name == name })?.value, !value.isEmpty else { return nil }
        return value
    }

    package static func == (lhs: FormData, rhs: FormData) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Encodes pairs for a link, leaving out empty values.
    package static func encode(_ pairs: [(String, String?)]) -> String {
        pairs.compactMap { name, value in
            guard let value, !value.isEmpty else { return nil }
            return "\(escape(name))=\(escape(value))"
        }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~*")

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
