import Core
import Foundation

/// Prints steps as they finish, and a summary at the end.
enum StepPrinter {
    @Sendable static func print(_ step: StepRecord) {
        guard let text = text(step) else { return }
        Self.line(text)
    }

    /// The mark of a finished step: `ok  `, `skip`, `warn` or `FAIL` (printed in brackets).
    static func mark(_ outcome: StepRecord.Outcome) -> String {
        switch outcome {
        case .ok: "ok  "
        case .skipped: "skip"
        case .warning: "warn"
        case .failed: "FAIL"
        case .running: "... "
        }
    }

    /// A finished step as printed: `<prefix>[ok  ] write     <detail> (<ms> ms)`, then the command and, for a failed
    /// step, the end of its output, indented under the step name. Nil for a step still running.
    static func text(_ step: StepRecord, prefix: String = "  ") -> String? {
        guard step.outcome != .running else { return nil }
        let indent = String(repeating: " ", count: prefix.count + 7)
        let milliseconds = step.duration.map { " (\(Int(($0 * 1000).rounded())) ms)" } ?? ""
        var line = "\(prefix)[\(mark(step.outcome))] \(step.name.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(step.detail ?? "")\(milliseconds)"
        if let command = step.command { line += "\n\(indent)$ \(command)" + (step.exitStatus.map { "  → exit \($0)" } ?? "") }
        if let output = step.outputTail, step.outcome == .failed {
            line += "\n" + output.split(separator: "\n").suffix(8).map { "\(indent)| \($0)" }.joined(separator: "\n")
        }
        return line
    }

    /// Unbuffered, so lines appear as they happen (and in order) even when stdout is a pipe.
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func summary(_ result: DeploymentResult) {
        for snippet in result.snippets where snippet.path == nil && result.outcome.isSuccess {
            line("Snippet (\(snippet.name)) — not written, place it \(snippet.placement):")
            line(snippet.contents.split(separator: "\n", omittingEmptySubsequences: false).map { "    \($0)" }.joined(separator: "\n"))
        }
        line("Outcome: \(result.outcome.rawValue)" + (result.dryRun ? " (dry run)" : ""))
        if let failure = result.failure {
            line("Reason: \(failure)")
        }
        if !result.attention.isEmpty {
            line("Operator action needed:")
            for item in result.attention { line("  - \(item)") }
        }
    }
}
