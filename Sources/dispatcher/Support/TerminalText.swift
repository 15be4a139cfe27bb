/// Text for a person's terminal, safe by construction like the dashboard's `HTML`: what a
/// literal says is written as is, and everything interpolated into it has its control
/// characters shown as `\x1B` instead of acted on, so a receiver's response header, a body or a
/// tenant name cannot set the window title, clear the screen or rewrite a line. Newlines and
/// tabs in values stay (bodies are shown indented over several lines).
///
/// ```swift
/// Console.out("response \(header.value)\n")     // ESC in the value is printed as \x1B
/// ```
struct TerminalText: ExpressibleByStringInterpolation, CustomStringConvertible, Sendable {
    private(set) var rendered: String

    init(stringLiteral value: String) { rendered = value }

    init(stringInterpolation: Interpolation) { rendered = stringInterpolation.rendered }

    /// Text this program wrote itself (help, a colour sequence): not escaped.
    init(trusted text: String) { rendered = text }

    var description: String { rendered }

    struct Interpolation: StringInterpolationProtocol {
        var rendered = ""

        init(literalCapacity: Int, interpolationCount: Int) { rendered.reserveCapacity(literalCapacity * 2) }

        mutating func appendLiteral(_ literal: String) { rendered += literal }

        mutating func appendInterpolation(_ value: some CustomStringConvertible) { rendered += TerminalText.escaped(value.description) }

        /// Text already safe (a table, a status in colour).
        mutating func appendInterpolation(_ text: TerminalText) { rendered += text.rendered }
    }

    static func + (left: TerminalText, right: TerminalText) -> TerminalText { TerminalText(trusted: left.rendered + right.rendered) }
    static func += (left: inout TerminalText, right: TerminalText) { left.rendered += right.rendered }

    /// C0 controls but newline and tab, DEL and the C1 controls, as `\x1B`; the rest unchanged.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var output = ""
        output.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                output += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: return false
        case 0x00..<0x20, 0x7F, 0x80...0x9F: return true
        default: return false
        }
    }
}
