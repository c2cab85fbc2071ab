import Foundation

/// How a rollout stages a push to many targets: a canary first, then waves, stopping when more targets fail than
/// the failure budget allows. Every field is optional on the wire; the defaults are the safe ones (one canary, waves
/// of 25 % of the rest, the first failure halts).
///
/// JSON: `{"canary": 1 | ["web-1"], "waves": 10 | "20%", "maxParallel": 5, "failureBudget": 2 | "5%",
/// "pauseBetweenWaves": "30s", "approval": "none" | "after_canary" | "every_wave", "order": "name" | "label:zone"}`.
public struct RolloutStrategy: Codable, Sendable, Equatable {
    /// The first wave: a number of targets (taken in `order`), or named targets.
    public var canary: Canary
    /// The size of each later wave: a count, or a percentage of the targets after the canary.
    public var waves: Amount
    /// At most this many of the rollout's deployments queued or running at once; nil: as many as the workers take.
    public var maxParallel: Int?
    /// How many targets may end failed, rolled back or interrupted before the rollout halts: a count, or a
    /// percentage of all its targets (rounded down).
    public var failureBudget: Amount
    /// Wait this long after a wave finished before the next starts.
    public var pauseBetweenWaves: RolloutDuration?
    public var approval: Approval
    public var order: Order

    public static let `default` = RolloutStrategy()

    public init(canary: Canary = .count(1), waves: Amount = .percent(25), maxParallel: Int? = nil, failureBudget: Amount = .count(0),
                pauseBetweenWaves: RolloutDuration? = nil, approval: Approval = .none, order: Order = .name) {
        self.canary = canary
        self.waves = waves
        self.maxParallel = maxParallel
        self.failureBudget = failureBudget
        self.pauseBetweenWaves = pauseBetweenWaves
        self.approval = approval
        self.order = order
    }

    public enum Canary: Codable, Sendable, Equatable {
        case count(Int)
        /// Target names or ids.
        case targets([String])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let count = try? container.decode(Int.self) {
                self = .count(count)
            } else if let names = try? container.decode([String].self) {
                self = .targets(names)
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be a number of targets or a list of target names")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .count(let count): try container.encode(count)
            case .targets(let names): try container.encode(names)
            }
        }
    }

    /// A count (`3`) or a percentage (`"20%"`).
    public enum Amount: Codable, Sendable, Equatable, CustomStringConvertible {
        case count(Int)
        case percent(Double)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let count = try? container.decode(Int.self) {
                self = .count(count)
                return
            }
            guard let text = try? container.decode(String.self) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be a count (3) or a percentage (\"20%\")")
            }
            guard let amount = Amount(parsing: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text.debugDescription) is neither a count (3) nor a percentage (\"20%\")")
            }
            self = amount
        }

        /// `"3"` or `"20%"`.
        public init?(parsing text: String) {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix("%") {
                guard let value = Double(trimmed.dropLast()), value.isFinite else { return nil }
                self = .percent(value)
            } else {
                guard let count = Int(trimmed) else { return nil }
                self = .count(count)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .count(let count): try container.encode(count)
            case .percent: try container.encode(description)
            }
        }

        public var description: String {
            switch self {
            case .count(let count): return "\(count)"
            case .percent(let value):
                return value == value.rounded() ? "\(Int(value))%" : "\(value)%"
            }
        }
    }

    public enum Approval: String, Codable, Sendable, Equatable, CaseIterable {
        case none
        /// Wait for `approve` once, after the canary wave.
        case afterCanary = "after_canary"
        /// Wait for `approve` after every wave but the last.
        case everyWave = "every_wave"
    }

    /// The order targets are taken in: by name, or spread over a label's values (`label:zone`) so that a wave never
    /// holds every target of one zone.
    public enum Order: Codable, Sendable, Equatable, CustomStringConvertible {
        case name
        case label(String)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let order = Order(parsing: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text.debugDescription): use \"name\" or \"label:<key>\"")
            }
            self = order
        }

        public init?(parsing text: String) {
            if text == "name" {
                self = .name
            } else if text.hasPrefix("label:"), text.count > "label:".count {
                self = .label(String(text.dropFirst("label:".count)))
            } else {
                return nil
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }

        public var description: String {
            switch self {
            case .name: return "name"
            case .label(let key): return "label:\(key)"
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case canary, waves, maxParallel, failureBudget, pauseBetweenWaves, approval, order
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            canary: try container.decodeIfPresent(Canary.self, forKey: .canary) ?? .count(1),
            waves: try container.decodeIfPresent(Amount.self, forKey: .waves) ?? .percent(25),
            maxParallel: try container.decodeIfPresent(Int.self, forKey: .maxParallel),
            failureBudget: try container.decodeIfPresent(Amount.self, forKey: .failureBudget) ?? .count(0),
            pauseBetweenWaves: try container.decodeIfPresent(RolloutDuration.self, forKey: .pauseBetweenWaves),
            approval: try container.decodeIfPresent(Approval.self, forKey: .approval) ?? .none,
            order: try container.decodeIfPresent(Order.self, forKey: .order) ?? .name)
    }

    /// The first problem with the values, as (JSON field, reason); nil when they make sense.
    public func problem() -> (field: String, reason: String)? {
        if case .count(let count) = canary, count < 0 { return ("canary", "must be 0 or more") }
        if case .targets(let names) = canary, names.isEmpty { return ("canary", "name at least one target, or give a count") }
        switch waves {
        case .count(let count) where count < 1: return ("waves", "must be 1 or more targets per wave")
        case .percent(let value) where value <= 0 || value > 100: return ("waves", "a percentage must be more than 0% and at most 100%")
        default: break
        }
        if let maxParallel, maxParallel < 1 { return ("maxParallel", "must be 1 or more") }
        switch failureBudget {
        case .count(let count) where count < 0: return ("failureBudget", "must be 0 or more")
        case .percent(let value) where value < 0 || value > 100: return ("failureBudget", "a percentage must be between 0% and 100%")
        default: break
        }
        if case .label(let key) = order, key.isEmpty || key.contains(",") || key.contains("=") {
            return ("order", "label:<key> needs a label key")
        }
        return nil
    }

    /// How many failed targets the rollout tolerates, for `targetCount` targets.
    public func allowedFailures(targetCount: Int) -> Int {
        switch failureBudget {
        case .count(let count): return count
        case .percent(let value): return Int((Double(targetCount) * value / 100).rounded(.down))
        }
    }
}

/// A duration on the wire as `"90s"`, `"10m"`, `"2h"` or `"1d"` (or a number of seconds), at most a year.
public struct RolloutDuration: Codable, Sendable, Equatable, CustomStringConvertible {
    public var seconds: Int

    /// A year: longer is a mistake, not a pause.
    public static let maximumSeconds = 366 * 86_400

    public init(seconds: Int) { self.seconds = seconds }

    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var value: Int
        if let last = trimmed.last, let unit = units[last], let number = Int(trimmed.dropLast()) {
            let (product, overflow) = number.multipliedReportingOverflow(by: unit)
            guard !overflow else { return nil }
            value = product
        } else if let number = Int(trimmed) {
            value = number
        } else {
            return nil
        }
        guard (0...Self.maximumSeconds).contains(value) else { return nil }
        seconds = value
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            guard (0...Self.maximumSeconds).contains(value) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be between 0 and a year (\(Self.maximumSeconds) seconds)")
            }
            seconds = value
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = RolloutDuration(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(text.debugDescription) is not a duration such as \"30s\", \"10m\" or \"2h\" (at most a year)")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        if seconds > 0, seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds > 0, seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds > 0, seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
