import CertdeployAPI
import Foundation

/// Where a client command writes: lines to standard output and error lines to standard error, or, in tests, to
/// whatever the closures collect. Each call writes one whole line, so lines from concurrent tasks do not interleave.
struct Console: Sendable {
    let writeOut: @Sendable (String) -> Void
    let writeError: @Sendable (String) -> Void

    init(out: @escaping @Sendable (String) -> Void, error: @escaping @Sendable (String) -> Void) {
        writeOut = out
        writeError = error
    }

    /// Unbuffered standard output and standard error.
    static let standard = Console(
        out: { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) },
        error: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })

    func line(_ text: String) { writeOut(text) }

    func error(_ text: String) { writeError(text) }

    /// Prints a value as the API's JSON, pretty-printed with sorted keys.
    func json<Value: Encodable>(_ value: Value) throws {
        let encoder = JSONEncoder.api
        encoder.outputFormatting.insert(.prettyPrinted)
        line(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}
