/// Aligned plain-text columns for human output.
struct Table {
    let headers: [String]
    private(set) var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(Self.visibleWidth).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).enumerated().map { index, pair in
                index == cells.count - 1 ? pair.0 : pair.0 + String(repeating: " ", count: max(0, pair.1 - Self.visibleWidth(pair.0)))
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}

extension Table {
    /// Characters a terminal shows: ANSI colour sequences take no room.
    static func visibleWidth(_ text: String) -> Int {
        var width = 0, inEscape = false
        for character in text {
            if inEscape { if character == "m" { inEscape = false } } else if character == "\u{1B}" { inEscape = true } else { width += 1 }
        }
        return width
    }
}
