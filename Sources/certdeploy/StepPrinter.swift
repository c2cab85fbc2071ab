import Core
import Foundation

/// Prints steps as they finish, and a summary at the end.
enum StepPrinter {
    @Sendable static func print(_ step: StepRecord) {
        guard step.outcome != .running else { return }
        let mark: String = switch step.outcome {
        case .ok: "ok  "
        case .skipped: "skip"
        case .warning: "warn"
        case .failed: "FAIL"
        case .running: "... "
        }
        let milliseconds = step.duration.map { " (\(Int($0 * 1000)) ms)" } ?? ""
        var line = "  [\(mark)] \(step.name.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(step.detail ?? "")\(milliseconds)"
        if let command = step.command { line += "\n         $ \(command)" + (step.exitStatus.map { "  → exit \($0)" } ?? "") }
        if let output = step.outputTail, step.outcome == .failed {
            line += "\n" + output.split(separator: "\n").suffix(8).map { "         | \($0)" }.joined(separator: "\n")
        }
        // Unbuffered, so steps appear as they happen even when stdout is a pipe.
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func summary(_ result: DeploymentResult) {
        Swift.print("Outcome: \(result.outcome.rawValue)" + (result.dryRun ? " (dry run)" : ""))
        if let failure = result.failure {
            Swift.print("Reason: \(failure)")
        }
        if !result.attention.isEmpty {
            Swift.print("Operator action needed:")
            for item in result.attention { Swift.print("  - \(item)") }
        }
    }
}
