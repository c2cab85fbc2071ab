import Foundation

/// Accumulates the step record of one deploy and reports each change to an observer as it happens.
struct StepLog {
    private(set) var steps: [StepRecord] = []
    let observer: (@Sendable (StepRecord) -> Void)?
    let redactor: Redactor
    let now: @Sendable () -> Date

    mutating func begin(_ name: StepRecord.Name, command: RemoteCommand? = nil) {
        let step = StepRecord(name: name, startedAt: now(), command: command.map { redactor.redact($0.description) })
        steps.append(step)
        observer?(step)
    }

    /// Finishes the step begun last.
    mutating func end(_ outcome: StepRecord.Outcome, _ detail: String? = nil, exitStatus: Int32? = nil, output: String? = nil) {
        guard var step = steps.popLast() else { return }
        step.outcome = outcome
        step.endedAt = now()
        step.detail = detail.map(redactor.redact)
        step.exitStatus = exitStatus
        step.outputTail = output.flatMap { $0.isEmpty ? nil : redactor.redact($0) }
        steps.append(step)
        observer?(step)
    }

    /// Records a step that needed no work.
    mutating func skip(_ name: StepRecord.Name, _ detail: String) {
        begin(name)
        end(.skipped, detail)
    }
}
