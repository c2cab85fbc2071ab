import Foundation
import Prometheus

/// The watch's metrics. Per-target gauges are labelled by target id (a UUID), never by name or host.
extension ServerMetrics {
    private static func watchName(_ metric: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "certdeploy", metricName: metric, unitName: unit, helpText: help)
    }

    private static var stapleRemaining: MetricNameDescriptor {
        watchName("staple_next_update", unit: "seconds", help: "Seconds until the nextUpdate of the OCSP staple on the target (negative: expired).")
    }

    private static var certificateRemaining: MetricNameDescriptor {
        watchName("certificate_expiry", unit: "seconds", help: "Seconds until the certificate deployed on the target expires (notAfter).")
    }

    /// Seconds until the target's staple `nextUpdate`; nil removes the gauge.
    func setStapleSecondsRemaining(target: UUID, seconds: Double?) {
        setTargetGauge(Self.stapleRemaining, target: target, value: seconds)
    }

    /// Seconds until the deployed certificate's `notAfter`; nil removes the gauge.
    func setCertificateSecondsRemaining(target: UUID, seconds: Double?) {
        setTargetGauge(Self.certificateRemaining, target: target, value: seconds)
    }

    private func setTargetGauge(_ descriptor: MetricNameDescriptor, target: UUID, value: Double?) {
        let gauge = registry.makeGauge(descriptor: descriptor, labels: [("target", target.lowercasedText)])
        if let value {
            gauge.set(value)
        } else {
            registry.unregisterGauge(gauge)
        }
    }

    /// How many targets the last checks found drifted.
    func setDriftedTargets(_ count: Int) {
        registry.makeGauge(descriptor: Self.watchName("targets_drifted", unit: "", help: "Targets whose last drift check found them serving another leaf."), labels: [])
            .set(Double(count))
    }

    func setBehindTargets(_ count: Int) {
        registry.makeGauge(descriptor: Self.watchName("targets_behind", unit: "",
                                                      help: "Targets whose bound certificate was renewed and whose last drift check found the new version not live."),
                           labels: []).set(Double(count))
    }

    /// One staple refresh of one certificate: `refreshed` (a fresh response queued for its targets), `unchanged`
    /// (every target already had it), `failed`, `revoked`.
    func recordStapleRefresh(outcome: String) {
        registry.makeCounter(
            descriptor: Self.watchName("staple_refreshes", unit: "total", help: "OCSP staple refreshes by outcome (refreshed, unchanged, failed, revoked)."),
            labels: [("outcome", outcome)]
        ).increment()
    }

    /// A target's staple turned `staple_expiring`, `staple_expired` or `revoked`.
    func recordStapleWarning(state: String) {
        registry.makeCounter(
            descriptor: Self.watchName("staple_warnings", unit: "total", help: "Targets whose staple turned staple_expiring, staple_expired or revoked."),
            labels: [("state", state)]
        ).increment()
    }

    /// One drift check of one target, by the state found.
    func recordDriftCheck(state: String) {
        registry.makeCounter(
            descriptor: Self.watchName("drift_checks", unit: "total", help: "Drift checks by the state found."), labels: [("state", state)]
        ).increment()
    }

    /// A drifted target redeployed automatically.
    func recordRemediation() {
        registry.makeCounter(
            descriptor: Self.watchName("drift_remediations", unit: "total", help: "Deployments queued to put a drifted target back."), labels: []
        ).increment()
    }
}
