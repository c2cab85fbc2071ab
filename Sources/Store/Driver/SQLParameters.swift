/// Numbered bind parameters (`$1`, `$2`, …) for a query built from optional filter conditions.
/// A class, so a condition string can bind a value while it is being appended to the condition list.
final class SQLParameters {
    private(set) var values: [SQLValue] = []

    /// Adds `value` and returns its placeholder.
    func bind(_ value: SQLValue) -> String {
        values.append(value)
        return "$\(values.count)"
    }

    /// `WHERE a AND b`, or nothing when there are no conditions.
    static func whereClause(_ conditions: [String]) -> String {
        conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
    }
}
