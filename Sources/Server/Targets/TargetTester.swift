import CertdeployAPI
import Core
import Foundation
import KubernetesClient
import SSHTransport
import Store

/// `POST /targets/{id}/test`: a dry run that writes nothing. Over SSH it connects (host key, then authentication),
/// checks that the directories the plan writes into exist, and runs the vendor's validate command against the live
/// config; for Kubernetes it reaches the API and reads the Secret the plan names.
struct TargetTester {
    let environment: APIEnvironment

    func test(_ record: TargetRecord) async -> TargetTestReport {
        var checks: [TargetTestReport.Check] = []
        func finish() -> TargetTestReport { TargetTestReport(ok: checks.allSatisfy(\.ok), checks: checks) }

        let runtime: TargetCodec.Runtime
        do {
            runtime = try environment.codec.runtime(record)
            checks.append(.init(name: "config", ok: true, detail: "the \(record.connectorID) config is valid"))
        } catch {
            checks.append(.init(name: "config", ok: false, detail: "\(error)"))
            return finish()
        }
        // A plan needs a certificate: the bound one's newest version, if any.
        var plan: DeploymentPlan?
        if let certificateName = record.certificateName {
            do {
                let version = try await environment.store.certificateVersion(name: certificateName, version: nil)
                plan = try TargetRoutes.plan(record, version: version, env: environment).0
                checks.append(.init(name: "plan", ok: true, detail: "planned \(certificateName) v\(version.version): \(plan!.files.count) file(s)"))
            } catch {
                checks.append(.init(name: "plan", ok: false, detail: "\(error)"))
            }
        } else {
            checks.append(.init(name: "plan", ok: true, detail: "no certificate bound: file paths and the validate command are not checked"))
        }

        if let kubernetes = runtime.kubernetes {
            await testCluster(kubernetes, plan: plan, checks: &checks)
        } else if let ssh = runtime.ssh {
            await testSSH(ssh, plan: plan, checks: &checks)
        }
        return finish()
    }

    private func testSSH(_ ssh: SSHTarget, plan: DeploymentPlan?, checks: inout [TargetTestReport.Check]) async {
        let host: SSHRemoteHost
        do {
            host = try await SSHConnector().connect(ssh)
            checks.append(.init(name: "connect", ok: true, detail: "reached \(ssh.host):\(ssh.port)"))
            checks.append(.init(name: "host_key", ok: true, detail: host.connectionDetail))
            checks.append(.init(name: "auth", ok: true, detail: "authenticated as \(ssh.user)"))
        } catch let error as RemoteError {
            switch error.code {
            case .hostKeyMismatch, .hostKeyUnknown:
                checks.append(.init(name: "connect", ok: true, detail: "reached \(ssh.host):\(ssh.port)"))
                checks.append(.init(name: "host_key", ok: false, detail: error.message))
            case .authentication:
                checks.append(.init(name: "connect", ok: true, detail: "reached \(ssh.host):\(ssh.port)"))
                checks.append(.init(name: "host_key", ok: true, detail: "the host key matched"))
                checks.append(.init(name: "auth", ok: false, detail: error.message))
            default:
                checks.append(.init(name: "connect", ok: false, detail: error.description))
            }
            return
        } catch {
            checks.append(.init(name: "connect", ok: false, detail: "\(error)"))
            return
        }
        defer { Task { await host.close() } }
        guard let plan else { return }
        let directories = Set(plan.files.map { ($0.path as NSString).deletingLastPathComponent }).sorted()
        var missing: [String] = []
        for directory in directories {
            do {
                _ = try await host.listDirectory(directory)
            } catch {
                missing.append("\(directory) (\(error))")
            }
        }
        checks.append(.init(
            name: "paths", ok: missing.isEmpty,
            detail: missing.isEmpty ? "directories exist: \(directories.joined(separator: ", "))" : "cannot list: \(missing.joined(separator: "; "))"))
        if let validate = plan.validateCommand {
            do {
                let result = try await host.run(validate.argv, timeout: .seconds(Int64(ssh.commandTimeoutSeconds)))
                checks.append(.init(
                    name: "validate", ok: result.exitStatus == 0,
                    detail: "\(validate) " + (result.exitStatus == 0 ? "exited 0" : result.exitSummary(limit: 500))))
            } catch {
                checks.append(.init(name: "validate", ok: false, detail: "\(validate): \(error)"))
            }
        }
    }

    private func testCluster(_ kubernetes: KubernetesTarget, plan: DeploymentPlan?, checks: inout [TargetTestReport.Check]) async {
        let connection: any ClusterConnection
        do {
            let access = try kubernetes.access()
            let options = KubernetesClientOptions(userAgent: KubernetesClientOptions.userAgent(version: CertdeployServer.version))
            connection = try await KubernetesConnection.connect(access, options: options)
            checks.append(.init(name: "api", ok: true, detail: "reached \(connection.endpointDescription)"))
        } catch {
            checks.append(.init(name: "api", ok: false, detail: "\(error)"))
            return
        }
        defer { Task { await connection.close() } }
        guard let secret = plan?.secret else { return }
        do {
            let existing = try await connection.getSecret(namespace: secret.namespace, name: secret.name)
            checks.append(.init(
                name: "secret", ok: true,
                detail: existing == nil ? "secret \(secret.namespace)/\(secret.name) does not exist yet (it will be created)"
                    : "can read secret \(secret.namespace)/\(secret.name)"))
        } catch {
            checks.append(.init(name: "secret", ok: false, detail: "\(error)"))
        }
    }
}
