import CertdeployAPI
import Core
import Store

/// `components.schemas`: one JSON Schema per type in `CertdeployAPI`, written to match exactly what its `Codable`
/// conformance produces. An optional Swift property is encoded only when set (never as `null`), so it is simply
/// left out of `required`; `Date` is an ISO 8601 `date-time` string, `UUID` a `uuid` string, `JSONValue` any JSON
/// (`{}`). Every object says `additionalProperties: false`: requests with unknown fields are refused, and a
/// response carrying a field not listed here is drift the schemathesis run reports.
enum OpenAPISchemas {
    static func all(registry: ConnectorRegistry) -> SpecValue {
        .object([
            // Errors
            ("Problem", problem),
            ("ProblemFieldError", problemFieldError),
            // Service
            ("HealthResponse", healthResponse),
            ("ReadinessResponse", readinessResponse),
            ("VersionResponse", versionResponse),
            ("AuthInfoResponse", authInfoResponse),
            // Shared values
            ("Name", name),
            ("Labels", labels),
            ("LabelSelector", labelSelector),
            // Connectors
            ("ConnectorID", connectorID(registry)),
            ("ConnectorView", connectorView),
            ("ConnectorDescriptor", connectorDescriptor),
            ("ConnectorCapabilities", connectorCapabilities),
            ("VendorSupport", vendorSupport),
            ("ConfigField", configField),
            ("ConfigFieldKind", configFieldKind),
            ("ConnectorList", list(of: "ConnectorView")),
            // Certificates
            ("CertificateUpload", certificateUpload),
            ("CertificateVersionView", certificateVersionView),
            ("CertificateView", certificateView),
            ("CertificateList", list(of: "CertificateView")),
            // Targets
            ("TargetInput", targetInput),
            ("TargetView", targetView),
            ("TargetStatusView", targetStatusView),
            ("DeploymentSummary", deploymentSummary),
            ("TargetTestReport", targetTestReport),
            ("TargetTestCheck", targetTestCheck),
            ("StaplingConfigView", staplingConfigView),
            ("StaplingDecision", staplingDecision),
            ("StaplingMode", staplingMode),
            ("EmittedSnippet", emittedSnippet),
            ("TargetList", list(of: "TargetView")),
            // Deployments
            ("DeploymentRequest", deploymentRequest),
            ("DeploymentOptions", deploymentOptions),
            ("DeploymentView", deploymentView),
            ("DeploymentStatus", deploymentStatus),
            ("StepRecord", stepRecord),
            ("StepName", stepName),
            ("StepOutcome", stepOutcome),
            ("DeployFailure", deployFailure),
            ("DeploymentList", list(of: "DeploymentView")),
            ("DeploymentEvent", deploymentEvent),
            // Audit
            ("AuditEventView", auditEventView),
            ("AuditEventList", list(of: "AuditEventView")),
        ] + rolloutSchemas)
    }

    /// The request bodies (`TargetInput`, …): each refuses unknown fields. The tests check this list.
    static let requestSchemas = ["CertificateUpload", "TargetInput", "DeploymentRequest", "DeploymentOptions", "RolloutStrategy",
                                 "RolloutActionRequest", "RolloutActionEmptyRequest", "WindowRequest", "CertificatePolicyRequest"]

    // MARK: - Errors

    static let problem = Schema.object("An RFC 9457 problem: the body of every error answer (`application/problem+json`).", [
        .required("type", Schema.string.adding([("format", "uri")]), "A URI naming the kind of problem (`https://certdeploy.dev/problems/<slug>`)."),
        .required("title", Schema.string, "Short, the same for every problem of this type."),
        .required("status", ["type": "integer", "minimum": 400, "maximum": 599], "The HTTP status code."),
        .required("detail", Schema.string, "What went wrong this time, naming the field."),
        .optional("instance", Schema.string, "The request path."),
        .optional("errors", Schema.array(Schema.ref("ProblemFieldError")),
                  "The fields at fault, as JSON pointers into the request body (or `query:<name>` / `path:<name>`)."),
    ])

    static let problemFieldError = Schema.object("One field at fault.", [
        .required("pointer", Schema.string, "A JSON pointer into the request body, or `query:<name>` / `path:<name>`."),
        .required("detail", Schema.string),
    ])

    // MARK: - Service

    static let healthResponse = Schema.object("`GET /health`: the process is up.", [
        .required("status", Schema.string),
    ])

    static let readinessResponse = Schema.object("`GET /ready`: 200 when the store answers and the workers run, 503 otherwise.", [
        .required("status", Schema.string),
        .required("store", Schema.string),
        .required("workers", Schema.string),
    ])

    static let versionResponse = Schema.object("`GET /api/v1/version`.", [
        .required("version", Schema.string, "The certdeploy version."),
        .required("apiVersion", Schema.string, "The HTTP API version."),
    ])

    static let authInfoResponse = Schema.object("How to authenticate, and who the presented key (if any) is.", [
        .required("scheme", Schema.string, "`bearer`: send `Authorization: Bearer <key>`."),
        .required("header", Schema.string, "The header that carries the key."),
        .required("authenticated", Schema.boolean, "Whether the request presented a valid key."),
        .optional("name", Schema.string, "The key's name (present when authenticated)."),
        .optional("admin", Schema.boolean, "Whether the key is an admin key (present when authenticated)."),
    ])

    // MARK: - Shared values

    /// Certificate and target names, as the API accepts them.
    static let namePattern = "^[A-Za-z0-9._-]{1,128}$"

    static let name: SpecValue = [
        "description": "A certificate or target name: 1–128 of `A-Z a-z 0-9 . _ -`.",
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "pattern": .string(namePattern),
    ]

    static let labelKeyPattern = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$"
    static let labelValuePattern = "^[A-Za-z0-9._-]{0,253}$"
    /// `key=value[,key=value…]` with the label rules above.
    static let labelSelectorPattern = "^[A-Za-z0-9][A-Za-z0-9._/-]*=[A-Za-z0-9._-]*(,[A-Za-z0-9][A-Za-z0-9._/-]*=[A-Za-z0-9._-]*)*$"

    static let labels: SpecValue = [
        "description": "Labels: keys are 1–253 of `A-Z a-z 0-9 . _ / -` starting with a letter or digit; values are 0–253 of `A-Z a-z 0-9 . _ -`.",
        "type": "object",
        "propertyNames": ["pattern": .string(labelKeyPattern)],
        "additionalProperties": ["type": "string", "pattern": .string(labelValuePattern)],
    ]

    static let labelSelector: SpecValue = [
        "description": "`key=value[,key=value…]`: every target carrying all these labels.",
        "type": "string",
        "minLength": 2,
        "pattern": .string(labelSelectorPattern),
    ]

    // MARK: - Connectors

    /// The registry's ids, in registry order: the only list of connectors the document has.
    static func connectorID(_ registry: ConnectorRegistry) -> SpecValue {
        ["description": "A connector id from this server's registry.", "type": "string", "enum": .strings(registry.ids)]
    }

    static let connectorView = Schema.object("A connector: its descriptor and the JSON Schema of its target config.", [
        .required("descriptor", Schema.ref("ConnectorDescriptor")),
        .required("configSchema", Schema.any, "JSON Schema (2020-12) of the `config` a target of this connector takes."),
    ])

    static let connectorDescriptor = Schema.object("Everything a connector says about itself.", [
        .required("id", Schema.ref("ConnectorID")),
        .required("displayName", Schema.string),
        .required("summary", Schema.string),
        .required("transport", Schema.enumeration(SwiftEnums.transports.map(\.rawValue)),
                  "How certdeploy reaches a target: `ssh` (the target's `ssh` section) or `kubernetes` (its `kubernetes` section)."),
        .required("configFields", Schema.array(Schema.ref("ConfigField"))),
        .required("capabilities", Schema.ref("ConnectorCapabilities")),
        .required("vendorVersions", Schema.array(Schema.ref("VendorSupport"))),
        .required("sampleConfig", Schema.any, "A config an operator can start from."),
    ])

    static let connectorCapabilities = Schema.object(nil, [
        .required("atomicFiles", Schema.boolean),
        .required("validate", Schema.boolean),
        .required("hotReload", Schema.boolean),
        .required("staplingModes", Schema.array(Schema.ref("StaplingMode"))),
        .required("verify", Schema.boolean),
        .required("rollback", Schema.boolean),
    ])

    static let vendorSupport = Schema.object("One vendor version range and how it was tested.", [
        .required("vendor", Schema.string),
        .required("versionRange", Schema.string),
        .optional("testedVersion", Schema.string),
        .required("status", Schema.enumeration(SwiftEnums.vendorStatuses.map(\.rawValue))),
        .required("tests", Schema.array(Schema.string)),
        .required("quirks", Schema.array(Schema.string)),
    ])

    static let configField = Schema.object("One field of a connector's config.", [
        .required("name", Schema.string),
        .required("kind", Schema.ref("ConfigFieldKind")),
        .required("required", Schema.boolean),
        .optional("defaultValue", Schema.any),
        .required("summary", Schema.string),
        .required("secret", Schema.boolean),
    ])

    /// `ConfigField.Kind` is an enum with associated values; Swift encodes a case as an object with one member
    /// named after the case, holding the labelled values (`{"integer": {"minimum": 1}}`) or `_0` for an unlabelled
    /// one (`{"choice": {"_0": ["a", "b"]}}`).
    static var configFieldKind: SpecValue {
        ["description": "The field's type: an object with exactly one member, named after the kind.",
         "oneOf": .array(SwiftEnums.configFieldKinds.map { kind in
             let (name, payload) = configFieldKindVariant(kind)
             return Schema.object(nil, [.required(name, payload)])
         })]
    }

    private static func configFieldKindVariant(_ kind: ConfigField.Kind) -> (String, SpecValue) {
        let noValues = Schema.object(nil, [])
        let nestedFields = Schema.object(nil, [.required("_0", Schema.array(Schema.ref("ConfigField")))])
        switch kind {
        case .string: return ("string", noValues)
        case .integer: return ("integer", Schema.object(nil, [.optional("minimum", Schema.integer), .optional("maximum", Schema.integer)]))
        case .boolean: return ("boolean", noValues)
        case .choice: return ("choice", Schema.object(nil, [.required("_0", Schema.array(Schema.string))]))
        case .absolutePath: return ("absolutePath", noValues)
        case .fileMode: return ("fileMode", noValues)
        case .pemCertificates: return ("pemCertificates", noValues)
        case .argv: return ("argv", noValues)
        case .stringArray: return ("stringArray", noValues)
        case .stringMap: return ("stringMap", noValues)
        case .object: return ("object", nestedFields)
        case .objectArray: return ("objectArray", nestedFields)
        }
    }

    // MARK: - Certificates

    static let certificateUpload = Schema.object("Adds a version to the named certificate, creating the certificate on its first upload.", [
        .required("name", Schema.ref("Name")),
        .required("certificatePEM", Schema.string, "The leaf, optionally followed by its chain (a fullchain.pem)."),
        .optional("chainPEM", Schema.string, "Extra intermediates, in any order."),
        .required("privateKeyPEM", Schema.string.adding([("writeOnly", true)]), "The private key. Write-only: never returned."),
        .optional("rolloutOptions", Schema.ref("DeploymentOptions"), "When the certificate's policy starts a rollout on this upload: its deploy options."),
        .optional("rolloutStrategy", Schema.ref("RolloutStrategy"), "When the certificate's policy starts a rollout on this upload: a strategy instead of the policy's."),
    ])

    static let certificateVersionView = Schema.object("One version of a certificate. Never carries the private key.", [
        .required("name", Schema.string),
        .required("version", Schema.integer.adding([("minimum", 1)])),
        .required("sha256", Schema.string, "SHA-256 of the leaf's DER, hex."),
        .required("subject", Schema.string),
        .required("issuer", Schema.string),
        .required("notBefore", Schema.dateTime),
        .required("notAfter", Schema.dateTime),
        .required("subjectAlternativeNames", Schema.array(Schema.string)),
        .required("mustStaple", Schema.boolean),
        .optional("ocspURL", Schema.string, "The leaf's OCSP responder (AIA), when it names one."),
        .required("certificatePEM", Schema.string, "The leaf (public material)."),
        .required("chainPEM", Schema.string, "The chain (public material); may be empty."),
        .required("privateKey", Schema.enumeration([redactedPlaceholder]), "Always `<redacted>`: the key is stored encrypted and never returned."),
        .required("createdAt", Schema.dateTime),
        .required("notes", Schema.array(Schema.string), "Notes from preflight (chain reordered, …)."),
        .optional("autoRollout", Schema.uuid, "The rollout this upload started (the certificate's policy has `autoRollout`)."),
    ])

    static let certificateView = Schema.object("A named certificate. `versions` is present only on `GET /api/v1/certificates/{name}`.", [
        .required("name", Schema.string),
        .required("createdAt", Schema.dateTime),
        .required("updatedAt", Schema.dateTime),
        .optional("latestVersion", Schema.integer.adding([("minimum", 1)])),
        .optional("latest", Schema.ref("CertificateVersionView"), "The newest version, when there is one."),
        .optional("versions", Schema.array(Schema.ref("CertificateVersionView")), "Every version, oldest first."),
    ])

    // MARK: - Targets

    static var targetInput: SpecValue {
        Schema.object(
            """
            A target to create (`POST`) or replace (`PUT`). Give exactly one of `ssh` and `kubernetes`, the one the \
            connector's `transport` names. Secret fields (`ssh.privateKey`, `ssh.passphrase`, `ssh.password` and the \
            connector's secret config fields) are write-only: on `PUT`, leaving one out or sending `<redacted>` keeps \
            the stored value.
            """,
            [
                .required("name", Schema.ref("Name"), "Unique among targets."),
                .required("connector", Schema.ref("ConnectorID")),
                .optional("labels", Schema.ref("Labels")),
                .optional("certificate", Schema.ref("Name"), "The certificate this target serves, by name."),
                .optional("ssh", Schema.any, "How to reach the target over SSH: the `ssh` section of a target file (see the configuration reference)."),
                .optional("kubernetes", Schema.any, "How to reach the cluster's API: the `kubernetes` section of a target file."),
                .required("config", Schema.any, "The connector's config; its JSON Schema is `configSchema` in `GET /api/v1/connectors/{id}`."),
                .optional("version", Schema.integer.adding([("minimum", 1)]), "On `PUT`: the version this change is based on; a mismatch is 409."),
                .optional("autoRemediate", Schema.boolean,
                          "Redeploy the last deployed certificate version when the drift check finds the target serving another leaf (or without its staple). Off unless set; on `PUT`, absent keeps the current setting."),
            ]
        ).adding([("oneOf", [["required": ["ssh"]], ["required": ["kubernetes"]]])])
    }

    static let targetView = Schema.object("A stored target. Secret values show as `<redacted>`.", [
        .required("id", Schema.uuid),
        .required("name", Schema.string),
        .required("connector", Schema.string, "The connector id."),
        .required("labels", Schema.ref("Labels")),
        .optional("certificate", Schema.string, "The bound certificate's name."),
        .optional("ssh", Schema.any),
        .optional("kubernetes", Schema.any),
        .required("config", Schema.any),
        .required("createdAt", Schema.dateTime),
        .required("updatedAt", Schema.dateTime),
        .required("version", Schema.integer.adding([("minimum", 1)]), "1 at creation, +1 on every update."),
        .optional("lastDeployment", Schema.ref("DeploymentSummary"), "The newest finished deployment, if any."),
        .optional("autoRemediate", Schema.boolean, "Whether a drifted target is redeployed automatically."),
        .optional("status", Schema.ref("TargetStatusView"), "Drift and staple state from the server's watch; absent before anything was observed."),
    ])

    static let targetStatusView = Schema.object(
        "What the server last observed about a target: whether it serves what certdeploy deployed, and the OCSP staple certdeploy keeps fresh on it.", [
        .optional("sync", Schema.enumeration(TargetSyncState.allCases.map(\.rawValue)),
                  "`drifted`: serves another leaf; `staple_missing`/`staple_stale`: serves the leaf without the staple certdeploy deployed, or with one near or past expiry; `not_deployed`: no successful deployment to compare with; `not_verifiable`: no verify endpoint; `behind`: serves what was deployed, but the bound certificate has a newer version, uploaded longer ago than its policy's `behindAfter`, that is not live. Absent before the first check."),
        .optional("detail", Schema.string, "Why, in a sentence."),
        .optional("checkedAt", Schema.dateTime, "When the last drift check ran."),
        .optional("servedSHA256", Schema.string, "SHA-256 of the leaf the last check saw served."),
        .optional("expectedSHA256", Schema.string, "SHA-256 of the leaf certdeploy last deployed (in the answer of a verify)."),
        .optional("staple", Schema.enumeration(TargetStapleState.allCases.map(\.rawValue)),
                  "For targets certdeploy writes staples to. `staple_expiring`: within the configured margin of nextUpdate and no fresh response could be fetched; `staple_expired`: past nextUpdate; `revoked`: the responder says the certificate is revoked."),
        .optional("stapleDetail", Schema.string),
        .optional("stapleThisUpdate", Schema.dateTime, "thisUpdate of the staple deployed on the target."),
        .optional("stapleNextUpdate", Schema.dateTime, "nextUpdate of the staple deployed on the target."),
        .optional("stapleCheckedAt", Schema.dateTime, "When the staple refresher last looked at the target."),
    ])

    static let deploymentSummary = Schema.object("A short view of a deployment.", [
        .required("id", Schema.uuid),
        .required("status", Schema.ref("DeploymentStatus")),
        .required("certificate", Schema.string),
        .required("certificateVersion", Schema.integer),
        .optional("finishedAt", Schema.dateTime),
    ])

    static let targetTestReport = Schema.object("A dry run against the target that writes nothing live.", [
        .required("ok", Schema.boolean, "True when every check passed."),
        .required("checks", Schema.array(Schema.ref("TargetTestCheck"))),
    ])

    static let targetTestCheck = Schema.object(nil, [
        .required("name", Schema.string, "`config`, `connect`, `host_key`, `auth`, `paths`, `validate`, `api`, …"),
        .required("ok", Schema.boolean),
        .required("detail", Schema.string),
    ])

    static let staplingConfigView = Schema.object("What the connector would emit for the bound certificate.", [
        .required("target", Schema.uuid),
        .required("connector", Schema.string),
        .required("certificate", Schema.string),
        .required("certificateVersion", Schema.integer),
        .required("stapling", Schema.ref("StaplingDecision")),
        .required("snippets", Schema.array(Schema.ref("EmittedSnippet"))),
    ])

    static let staplingDecision = Schema.object("How the target will serve OCSP staples, and why.", [
        .required("mode", Schema.ref("StaplingMode")),
        .required("reason", Schema.string),
    ])

    static let staplingMode = Schema.enumeration(StaplingDecision.Mode.allCases.map(\.rawValue),
        "`vendor_fetched`: the server fetches staples itself; `staple_file`: certdeploy fetches and writes the staple; `none`: no staple.")

    static let emittedSnippet = Schema.object("Config text the connector emits, with where it belongs.", [
        .required("name", Schema.string),
        .optional("path", Schema.string, "Where certdeploy writes it; absent when it is for the operator to place."),
        .required("placement", Schema.string),
        .required("contents", Schema.string),
    ])

    // MARK: - Deployments

    static var deploymentRequest: SpecValue {
        // "targets or selector" is stated in prose, not as an `anyOf`: the server enforces it (422 naming `/targets`), and
        // schemathesis 4.32's negative generation for `anyOf` crashes inside Hypothesis on CPython 3.11.
        Schema.object(
            "Deploy a certificate version to targets named by id or name, chosen by label selector, or both. At least one of `targets` and `selector` is required (422 otherwise).", [
            .required("certificate", Schema.ref("Name"), "The certificate's name."),
            .optional("version", Schema.integer.adding([("minimum", 1)]), "The version; the newest when absent."),
            .optional("targets", Schema.array(Schema.ref("Name")), "Target ids or names."),
            .optional("selector", Schema.ref("LabelSelector")),
            .optional("options", Schema.ref("DeploymentOptions")),
            .optional("strategy", Schema.ref("RolloutStrategy"), "More than one target: how the rollout stages them (default: the certificate's policy, else the default strategy)."),
            .optional("ignoreWindows", Schema.boolean, "Deploy even outside the targets' maintenance windows (admin; audited)."),
        ])
    }

    static let deploymentOptions = Schema.object(nil, [
        .optional("dryRun", Schema.boolean, "Run preflight, plan and compare only; write nothing."),
        .optional("force", Schema.boolean, "Write and reload even when every file already matches."),
        .optional("allowMustStapleWithoutStapling", Schema.boolean, "Deploy a Must-Staple leaf to a target that will not staple."),
    ])

    static let deploymentView = Schema.object("One deployment: one certificate version to one target.", [
        .required("id", Schema.uuid),
        .required("targetID", Schema.uuid),
        .optional("targetName", Schema.string, "Absent when the target is gone."),
        .required("certificate", Schema.string),
        .required("certificateVersion", Schema.integer),
        .required("status", Schema.ref("DeploymentStatus")),
        .required("options", Schema.ref("DeploymentOptions")),
        .required("steps", Schema.array(Schema.ref("StepRecord")), "The steps so far (live while running)."),
        .optional("failure", Schema.ref("DeployFailure")),
        .optional("attention", Schema.array(Schema.string), "For `rollback_failed`: what an operator must look at."),
        .optional("statusNote", Schema.string),
        .required("attempts", Schema.integer.adding([("minimum", 0)])),
        .required("createdAt", Schema.dateTime),
        .optional("startedAt", Schema.dateTime),
        .optional("finishedAt", Schema.dateTime),
        .required("actor", Schema.string, "The API key name that asked for it."),
        .optional("rolloutID", Schema.uuid, "The rollout it belongs to."),
        .optional("wave", Schema.integer.adding([("minimum", 1)]), "Its wave in the rollout (1 is the first)."),
        .optional("superseded", Schema.boolean, "True when a rollout's retry replaced it (its outcome no longer counts)."),
    ])

    static let deploymentStatus = Schema.enumeration(DeploymentStatus.allCases.map(\.rawValue),
        "`pending` (a rollout's wave has not started), `waiting_window` (outside its maintenance window), `queued` and `running` are live; the rest are final.")

    static let stepRecord = Schema.object("One stage of a deploy. Never holds secrets.", [
        .required("name", Schema.ref("StepName")),
        .required("outcome", Schema.ref("StepOutcome")),
        .required("startedAt", Schema.dateTime),
        .optional("endedAt", Schema.dateTime),
        .optional("detail", Schema.string),
        .optional("command", Schema.string),
        .optional("exitStatus", ["type": "integer", "format": "int32"]),
        .optional("outputTail", Schema.string, "The end of the command's output, redacted."),
    ])

    static let stepName = Schema.enumeration(StepRecord.Name.allCases.map(\.rawValue))
    static let stepOutcome = Schema.enumeration(SwiftEnums.stepOutcomes.map(\.rawValue))

    static let deployFailure = Schema.object("The failure that ended a deploy.", [
        .required("targetID", Schema.string),
        .required("step", Schema.ref("StepName")),
        .required("message", Schema.string),
    ])

    // MARK: - Audit

    static let auditEventView = Schema.object("Who did what to which object, when, and how it went.", [
        .required("id", ["type": "integer", "format": "int64"], "Increasing in insertion order."),
        .required("time", Schema.dateTime),
        .required("actor", Schema.string, "An API key name, a worker id, or `system`."),
        .required("action", Schema.string, "`certificate.create`, `target.update`, `deployment.cancel`, …"),
        .required("objectType", Schema.string, "`certificate`, `target`, `deployment`, …"),
        .required("objectID", Schema.string),
        .required("outcome", Schema.string),
        .optional("detail", Schema.string),
    ])

    // MARK: - Lists

    /// `ListResponse<Item>`.
    /// One Server-Sent Event of `GET /api/v1/deployments/{id}/events` (in OpenAPI 3.1 an event stream's `schema`
    /// describes each event).
    static let deploymentEvent = Schema.object("One event of the stream: its name and its data, a JSON text.", [
        .optional("event", Schema.enumeration([DeploymentEventName.step, DeploymentEventName.status, DeploymentEventName.end, "error"]),
                  "`step`: a `StepRecord`; `status`: a `DeploymentView`, on every status change; `end`: the final `DeploymentView`; `error`: `{\"detail\": …}`."),
        .required("data", Schema.string.adding([("contentMediaType", "application/json")]), "The event's JSON."),
        .optional("id", Schema.string),
        .optional("retry", Schema.integer),
    ])

    static func list(of item: String) -> SpecValue {
        Schema.object("One page. Pass `nextCursor` as `cursor` to get the next page; it is absent on the last page.", [
            .required("items", Schema.array(Schema.ref(item))),
            .optional("nextCursor", Schema.string),
        ])
    }
}

/// Case lists of the Swift enums the schemas enumerate that are not `CaseIterable`. Each switch is exhaustive, so
/// adding a case stops the build here until the list below it names the new case too.
enum SwiftEnums {
    static let transports: [ConnectorDescriptor.Transport] = {
        func covered(_ value: ConnectorDescriptor.Transport) { switch value { case .ssh, .kubernetes: break } }
        return [.ssh, .kubernetes]
    }()

    static let vendorStatuses: [ConnectorDescriptor.VendorSupport.Status] = {
        func covered(_ value: ConnectorDescriptor.VendorSupport.Status) { switch value { case .tested, .untested: break } }
        return [.tested, .untested]
    }()

    static let stepOutcomes: [StepRecord.Outcome] = {
        func covered(_ value: StepRecord.Outcome) { switch value { case .running, .ok, .skipped, .warning, .failed: break } }
        return [.running, .ok, .skipped, .warning, .failed]
    }()

    /// One value of each kind (the associated values do not matter: the schema describes their shape).
    static let configFieldKinds: [ConfigField.Kind] = [
        .string, .integer(minimum: nil, maximum: nil), .boolean, .choice([]), .absolutePath, .fileMode, .pemCertificates, .argv,
        .stringArray, .stringMap, .object([]), .objectArray([]),
    ]
}
