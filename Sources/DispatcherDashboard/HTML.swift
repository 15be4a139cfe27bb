import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// HTML text in which every interpolated `String` is escaped: markup can only come from
/// literals in our own code or from other `HTML` values, so an event body or a receiver's
/// response full of `<script>` is always shown as text.
///
/// ```swift
/// let row: HTML = "<td>\(delivery.endpointID)</td>"   // escaped
/// let page: HTML = "<tr>\(row)</tr>"                   // nested as markup
/// ```
package struct HTML: ExpressibleByStringInterpolation, Sendable, Equatable {
    package private(set) var rendered: String

    package init(stringLiteral literal: String) { rendered = literal }

    package init(stringInterpolation: StringInterpolation) { rendered = stringInterpolation.output }

    package struct StringInterpolation: StringInterpolationProtocol {
        var output = ""

        package init(literalCapacity: Int, interpolationCount: Int) { output.reserveCapacity(literalCapacity * 2) }

        package mutating func appendLiteral(_ literal: String) { output += literal }
        package mutating func appendInterpolation(_ text: String) { output += HTML.escape(text) }
        package mutating func appendInterpolation(_ html: HTML) { output += html.rendered }
        package mutating func appendInterpolation(_ parts: [HTML]) { for part in parts { output += part.rendered } }
        package mutating func appendInterpolation<Number: BinaryInteger>(_ number: Number) { output += String(number) }
    }

    /// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attribute values.
    package static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Joins fragments (table rows, options).
    package static func join(_ parts: [HTML], separator: HTML = "") -> HTML {
        HTML(rendered: parts.map(\.rendered).joined(separator: separator.rendered))
    }

    private init(rendered: String) { self.rendered = rendered }
}
