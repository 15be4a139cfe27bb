/// Aligned plain-text columns for human output; cells are `TerminalText`, so a value from a
/// receiver or a producer cannot carry a control sequence into the terminal.
struct Table {
    let headers: [String]
    private(set) var rows: [[TerminalText]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [TerminalText]) { rows.append(row) }

    func render() -> TerminalText {
        let cells = [headers.map { TerminalText(trusted: $0) }] + rows
        let widths = headers.indices.map { column in cells.map { Self.visibleWidth($0[column].rendered) }.max() ?? 0 }
        func line(_ cells: [TerminalText]) -> String {
            zip(cells, widths).enumerated().map { index, pair in
                let text = pair.0.rendered
                return index == cells.count - 1 ? text : text + String(repeating: " ", count: max(0, pair.1 - Self.visibleWidth(text)))
            }.joined(separator: "  ")
        }
        return TerminalText(trusted: cells.map(line).joined(separator: "\n") + "\n")
    }
}

extension Table {
    /// Characters a terminal shows: our own colour sequences take no room.
    static func visibleWidth(_ text: String) -> Int {
        var width = 0, inEscape = false
        for character in text {
            if inEscape { if character == "m" { inEscape = false } } else if character == "\u{1B}" { inEscape = true } else { width += 1 }
        }
        return width
    }
}
