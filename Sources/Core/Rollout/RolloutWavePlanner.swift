import Foundation

/// A target as the wave planner sees it.
public struct RolloutCandidate: Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var labels: [String: String]

    public init(id: UUID, name: String, labels: [String: String] = [:]) {
        self.id = id
        self.name = name
        self.labels = labels
    }
}

/// Why a strategy cannot be planned for the chosen targets.
public struct RolloutPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The strategy's JSON field.
    public var field: String
    public var reason: String
    public var description: String { "\(field): \(reason)" }
}

/// Splits a rollout's targets into waves: the canary first, then waves of the strategy's size. Pure: the same targets
/// and strategy always give the same waves, so a plan can be shown before it runs.
///
/// Spreading by a label (`order: label:zone`): targets are taken round-robin over the label's values (each value's
/// targets by name), and no wave holds every target of a value that has two or more; a target that would break that
/// moves to a later wave. (A value with one target cannot be spread; its wave takes it.)
public enum RolloutWavePlanner {
    public static func plan(_ candidates: [RolloutCandidate], strategy: RolloutStrategy) throws(RolloutPlanError) -> [[UUID]] {
        if let problem = strategy.problem() { throw RolloutPlanError(field: problem.field, reason: problem.reason) }
        guard !candidates.isEmpty else { return [] }
        let ordered = order(candidates, by: strategy.order)
        var canary: [RolloutCandidate]
        var rest: [RolloutCandidate]
        switch strategy.canary {
        case .count(let count):
            canary = Array(ordered.prefix(count))
            rest = Array(ordered.dropFirst(count))
        case .targets(let references):
            var chosen = Set<UUID>()
            for reference in references {
                guard let match = ordered.first(where: { $0.name == reference || $0.id.lowercasedText == reference.lowercased() }) else {
                    throw RolloutPlanError(field: "canary", reason: "\(reference.debugDescription) is not one of the rollout's targets")
                }
                chosen.insert(match.id)
            }
            canary = ordered.filter { chosen.contains($0.id) }
            rest = ordered.filter { !chosen.contains($0.id) }
        }
        let size: Int
        switch strategy.waves {
        case .count(let count): size = count
        case .percent(let value): size = max(1, Int((Double(rest.count) * value / 100).rounded(.up)))
        }
        var waves: [[RolloutCandidate]] = []
        if !canary.isEmpty {
            waves.append(canary)
        }
        guard case .label(let key) = strategy.order else {
            waves += stride(from: 0, to: rest.count, by: size).map { Array(rest[$0..<min($0 + size, rest.count)]) }
            return waves.map { $0.map(\.id) }
        }
        // Per wave, at most (members - 1) of a label value with two or more members.
        var members: [String: Int] = [:]
        for candidate in candidates { members[candidate.labels[key] ?? "", default: 0] += 1 }
        func cap(_ value: String) -> Int { max(1, (members[value] ?? 1) - 1) }
        if !canary.isEmpty, canary.count > 1 {
            // The canary is what the operator chose; only a counted canary is re-spread.
            if case .count = strategy.canary {
                let (kept, moved) = spread(canary, size: canary.count, key: key, cap: cap)
                waves[0] = kept
                rest = moved + rest
            }
        }
        while !rest.isEmpty {
            let (wave, left) = spread(rest, size: size, key: key, cap: cap)
            waves.append(wave)
            rest = left
        }
        return waves.map { $0.map(\.id) }
    }

    /// One wave of up to `size` from `queue` (in order) honouring the per-value cap, and what is left (in order).
    private static func spread(_ queue: [RolloutCandidate], size: Int, key: String, cap: (String) -> Int)
        -> (wave: [RolloutCandidate], left: [RolloutCandidate])
    {
        var wave: [RolloutCandidate] = []
        var left: [RolloutCandidate] = []
        var taken: [String: Int] = [:]
        for candidate in queue {
            let value = candidate.labels[key] ?? ""
            if wave.count < size, taken[value, default: 0] < cap(value) {
                wave.append(candidate)
                taken[value, default: 0] += 1
            } else {
                left.append(candidate)
            }
        }
        return (wave, left)
    }

    /// By name (then id); or round-robin over the label's values (values in byte order, targets without the label
    /// last as the value ""), each value's targets by name.
    static func order(_ candidates: [RolloutCandidate], by order: RolloutStrategy.Order) -> [RolloutCandidate] {
        let byName = candidates.sorted { ($0.name.utf8.lexicographicallyPrecedes($1.name.utf8)) || ($0.name == $1.name && $0.id.lowercasedText < $1.id.lowercasedText) }
        guard case .label(let key) = order else { return byName }
        var groups: [String: [RolloutCandidate]] = [:]
        for candidate in byName { groups[candidate.labels[key] ?? "", default: []].append(candidate) }
        let values = groups.keys.sorted { lhs, rhs in
            if lhs.isEmpty != rhs.isEmpty { return !lhs.isEmpty }
            return lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
        }
        var result: [RolloutCandidate] = []
        var index = 0
        while result.count < byName.count {
            for value in values where index < groups[value]!.count { result.append(groups[value]![index]) }
            index += 1
        }
        return result
    }
}
