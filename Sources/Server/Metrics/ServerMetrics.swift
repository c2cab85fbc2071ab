import Core
import Foundation
import Prometheus

/// The Prometheus metrics `GET /metrics` exposes. One registry per server instance (tests run several servers in
/// one process, so nothing is bootstrapped globally). Label values are connector ids, outcomes and HTTP statuses:
/// never target names, hosts or anything secret.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let queueDepth: Gauge
    private let runningDeployments: Gauge

    public init() {
        queueDepth = registry.makeGauge(
            descriptor: Self.name("deployments_queued", unit: "", help: "Deployments waiting in the queue (all replicas)."), labels: [])
        runningDeployments = registry.makeGauge(
            descriptor: Self.name("deployments_running", unit: "", help: "Deployments this replica is running now."), labels: [])
    }

    private static func name(_ metric: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "certdeploy", metricName: metric, unitName: unit, helpText: help)
    }

    static let durationBuckets: [Duration] = [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
                                              .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300)]
    static let connectBuckets: [Duration] = [.milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                             .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10)]

    /// A finished deployment: totals by connector and outcome, its duration, rollbacks, and the SSH connect time.
    public func recordDeployment(connector: String, status: String, duration: Duration, result: DeploymentResult?) {
        registry.makeCounter(
            descriptor: Self.name("deployments", unit: "total", help: "Finished deployments by connector and outcome."),
            labels: [("connector", connector), ("outcome", status)]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: Self.name("deployment_duration", unit: "seconds", help: "How long deployments took, by connector."),
            labels: [("connector", connector)], buckets: Self.durationBuckets
        ).record(duration)
        guard let result else { return }
        if let rollback = result.steps.last(where: { $0.name == .rollback }), rollback.outcome != .skipped {
            // `not_answering`: restored, but the target answered no handshake afterwards (nor during verify).
            let outcome = switch rollback.outcome {
            case .ok: "restored"
            case .warning: "not_answering"
            default: "failed"
            }
            registry.makeCounter(
                descriptor: Self.name("rollbacks", unit: "total", help: "Deployments that rolled a target back, by connector and how the rollback ended."),
                labels: [("connector", connector), ("outcome", outcome)]
            ).increment()
        }
        if let connect = result.steps.first(where: { $0.name == .connect && $0.outcome == .ok }), let end = connect.endedAt {
            registry.makeDurationHistogram(
                descriptor: Self.name("ssh_connect_duration", unit: "seconds", help: "Time to open the transport session (SSH or Kubernetes API)."),
                labels: [("connector", connector)], buckets: Self.connectBuckets
            ).record(.microseconds(Int64(end.timeIntervalSince(connect.startedAt) * 1_000_000)))
        }
    }

    /// A rollout this replica moved to `halted`, `waiting_approval` or an end (`succeeded`, `failed`).
    public func recordRolloutTransition(_ outcome: String) {
        registry.makeCounter(
            descriptor: Self.name("rollout_transitions", unit: "total",
                                  help: "Rollouts this replica moved to halted, waiting_approval, succeeded or failed, by the state they entered."),
            labels: [("state", outcome)]
        ).increment()
    }

    /// An HTTP request answered, by method, route pattern and status class.
    public func recordRequest(method: String, route: String, status: Int) {
        registry.makeCounter(
            descriptor: Self.name("http_requests", unit: "total", help: "HTTP requests by method, route and status."),
            labels: [("method", method), ("route", route), ("status", String(status))]
        ).increment()
    }

    public func setQueueDepth(_ depth: Int) { queueDepth.set(Double(depth)) }
    public func setRunning(_ running: Int) { runningDeployments.set(Double(running)) }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}
