import ArgumentParser
import Core
import Foundation

/// The flags that stage a deploy to many targets (`deploy --to`, `push`, `certs policy`). None given: the server
/// uses the certificate's policy, else its default strategy (one canary, waves of 25 %, the first failure halts).
struct RolloutStrategyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The canary wave: a number of targets, or target names (comma-separated). Default 1.", valueName: "n|names"))
    var canary: String?

    @Option(help: ArgumentHelp("Targets per later wave: a count or a percentage of the rest (20%). Default 25%.", valueName: "n|percent"))
    var waves: String?

    @Option(name: .customLong("max-parallel"), help: ArgumentHelp("At most this many of the rollout's deployments at once.", valueName: "n"))
    var maxParallel: Int?

    @Option(name: .customLong("failure-budget"),
            help: ArgumentHelp("Targets that may fail before the rollout halts: a count or a percentage. Default 0.", valueName: "n|percent"))
    var failureBudget: String?

    @Option(name: .customLong("pause-between-waves"), help: ArgumentHelp("Wait this long after each wave (30s, 10m, 1h).", valueName: "duration"))
    var pauseBetweenWaves: String?

    @Option(help: ArgumentHelp("none, after_canary or every_wave: wait for `certdeploy rollouts approve`.", valueName: "gate"))
    var approval: String?

    @Option(help: ArgumentHelp("name, or label:<key> to spread every wave over the label's values (label:zone).", valueName: "order"))
    var order: String?

    var isEmpty: Bool {
        canary == nil && waves == nil && maxParallel == nil && failureBudget == nil && pauseBetweenWaves == nil && approval == nil && order == nil
    }

    /// The strategy the flags describe (defaults for the rest), nil when no flag was given.
    func strategy(base: RolloutStrategy = .default) throws(InputError) -> RolloutStrategy? {
        guard !isEmpty else { return nil }
        var strategy = base
        if let canary {
            if let count = Int(canary) {
                strategy.canary = .count(count)
            } else {
                strategy.canary = .targets(canary.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            }
        }
        if let waves {
            guard let amount = RolloutStrategy.Amount(parsing: waves) else { throw InputError("--waves \(waves): give a count (10) or a percentage (20%)") }
            strategy.waves = amount
        }
        if let maxParallel { strategy.maxParallel = maxParallel }
        if let failureBudget {
            guard let amount = RolloutStrategy.Amount(parsing: failureBudget) else {
                throw InputError("--failure-budget \(failureBudget): give a count (2) or a percentage (5%)")
            }
            strategy.failureBudget = amount
        }
        if let pauseBetweenWaves {
            guard let duration = RolloutDuration(parsing: pauseBetweenWaves) else {
                throw InputError("--pause-between-waves \(pauseBetweenWaves): give a duration such as 30s, 10m or 1h")
            }
            strategy.pauseBetweenWaves = duration
        }
        if let approval {
            guard let gate = RolloutStrategy.Approval(rawValue: approval) else {
                throw InputError("--approval \(approval): one of \(RolloutStrategy.Approval.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            strategy.approval = gate
        }
        if let order {
            guard let parsed = RolloutStrategy.Order(parsing: order) else { throw InputError("--order \(order): use name or label:<key>") }
            strategy.order = parsed
        }
        if let problem = strategy.problem() {
            let flag = ["canary": "--canary", "waves": "--waves", "maxParallel": "--max-parallel", "failureBudget": "--failure-budget",
                        "order": "--order"][problem.field] ?? problem.field
            throw InputError("\(flag): \(problem.reason)")
        }
        return strategy
    }
}
