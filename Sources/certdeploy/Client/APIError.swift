import CertdeployAPI
import Foundation

/// Why a call to the certdeploy server failed.
enum APIError: Error, CustomStringConvertible {
    /// The server answered with an `application/problem+json` body.
    case problem(Problem)
    /// The server answered with a status outside 2xx and a body that is not a problem.
    case unexpectedStatus(status: Int, bodyTail: String)
    /// No answer: the connection could not be made or broke before the response head arrived.
    case unreachable(url: String, reason: String, refused: Bool)
    /// A 2xx answer whose body is not the JSON the API promises.
    case invalidResponse(path: String, reason: String)

    /// The HTTP status the server answered with, when it answered.
    var status: Int? {
        switch self {
        case .problem(let problem): problem.status
        case .unexpectedStatus(let status, _): status
        case .unreachable, .invalidResponse: nil
        }
    }

    /// Exit status for a command that failed with this error: 2 for bad input (4xx), 1 for everything else.
    var exitStatus: Int32 {
        if let status, (400..<500).contains(status) { return 2 }
        return 1
    }

    /// The lines printed to stderr: `error: <detail>`, then each field at fault.
    var messageLines: [String] {
        switch self {
        case .problem(let problem):
            var lines = ["error: \(problem.detail)"]
            for field in problem.errors ?? [] where !(problem.detail.contains(field.pointer) && problem.detail.contains(field.detail)) {
                lines.append("  \(field.pointer): \(field.detail)")
            }
            if problem.status == 401 {
                lines.append("hint: set CERTDEPLOY_API_KEY to an API key the server accepts")
            }
            return lines
        case .unexpectedStatus(let status, let bodyTail):
            return ["error: the server answered HTTP \(status)" + (bodyTail.isEmpty ? "" : ": \(bodyTail)")]
        case .unreachable(let url, let reason, let refused):
            var lines = ["error: cannot reach the certdeploy server at \(url): \(reason)"]
            if refused {
                lines.append("hint: start it with `certdeploy serve`, or point CERTDEPLOY_URL (or --server) at where it runs")
            } else {
                lines.append("hint: check CERTDEPLOY_URL (or --server)")
            }
            return lines
        case .invalidResponse(let path, let reason):
            return ["error: unexpected answer from the server for \(path): \(reason)"]
        }
    }

    var description: String { messageLines.joined(separator: "\n") }
}
