/// Aligned text columns, two spaces between columns, no trailing spaces.
enum TextTable {
    /// A header row, then the data rows.
    static func render(_ header: [String], _ rows: [[String]]) -> [String] {
        columns([header] + rows)
    }

    /// Rows aligned in columns; each column is as wide as its widest cell (counted in characters).
    static func columns(_ rows: [[String]]) -> [String] {
        let count = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            var line = ""
            for (index, cell) in row.enumerated() {
                if index > 0 { line += "  " }
                line += index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }
}
