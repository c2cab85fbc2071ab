import CertdeployAPI
import Core
import Store

// The rollout, window and policy parts of the OpenAPI document.

extension OpenAPIPaths {
    static let rolloutLinks: [Link] = [
        ("GetRollout", "getRollout"), ("PauseRollout", "pauseRollout"), ("ResumeRollout", "resumeRollout"), ("ApproveRollout", "approveRollout"),
        ("AbortRollout", "abortRollout"), ("RetryRollout", "retryRollout"), ("StreamRolloutEvents", "streamRolloutEvents"),
    ].map { Link(name: $0.0, operationId: $0.1, parameters: [("id", "$response.body#/id")]) }

    static let rollouts: [Operation] = [
        Operation(method: "post", path: "/api/v1/rollouts", id: "createRollout", tag: "rollouts",
                  summary: "Start a rollout: a certificate version staged over many targets.",
                  description: """
                      The same body as `POST /api/v1/deployments`. The targets are split into waves by `strategy` (absent: the \
                      certificate's policy, else one canary, waves of 25 % of the rest, and a failure budget of 0); every \
                      target's deployment is created at once as `pending` and released wave by wave. A wave starts when every \
                      deployment of the one before has finished, the pause between waves has passed and the approval gate (if \
                      any) was opened; more failed targets than the budget allows halt the rollout (running deployments finish, \
                      nothing new starts). `ignoreWindows` needs an admin key (403 otherwise). 422 names the strategy field at \
                      fault (`/strategy/waves`, …).
                      """,
                  body: "DeploymentRequest", success: [("202", json("RolloutView", "The rollout, with its planned waves."))],
                  errors: [.forbidden], links: rolloutLinks),
        Operation(method: "get", path: "/api/v1/rollouts", id: "listRollouts", tag: "rollouts", summary: "List rollouts, newest first.",
                  parameters: [
                      OpenAPIComponents.query("certificate", "Only rollouts of this certificate.", Schema.ref("Name")),
                      OpenAPIComponents.query("state", "Only rollouts in one of these states (comma-separated).",
                                              ["type": "string", "pattern": .string(stateListPattern)]),
                      Param.limit.ref, Param.cursor.ref,
                  ],
                  success: [("200", json("RolloutList", "One page of rollouts (their waves without the targets)."))]),
        Operation(method: "get", path: "/api/v1/rollouts/{id}", id: "getRollout", tag: "rollouts", summary: "One rollout, every wave with its targets.",
                  parameters: [Param.rolloutID.ref], success: [("200", json("RolloutView", "The rollout."))]),
    ] + ["pause", "resume", "approve", "abort", "retry"].map(action) + [
        Operation(method: "get", path: "/api/v1/rollouts/{id}/events", id: "streamRolloutEvents", tag: "rollouts",
                  summary: "Follow a rollout as Server-Sent Events.",
                  description: """
                      `event: \(RolloutEventName.progress)` (data: a `RolloutProgressEvent`: wave_started, wave_finished, halted, \
                      waiting_approval, succeeded, failed, and the operators' actions), `event: \(RolloutEventName.child)` (data: a \
                      `RolloutChildView`, on each target's status change), `event: \(RolloutEventName.rollout)` (data: the \
                      `RolloutView`, on each state change), and a last `event: \(RolloutEventName.end)` (the final `RolloutView`) \
                      when it finishes. A halted or paused rollout keeps its stream open.
                      """,
                  parameters: [Param.rolloutID.ref],
                  success: [("200", ["description": "The event stream; its schema describes one event.",
                                     "content": ["text/event-stream": ["schema": Schema.ref("RolloutEvent")]]])]),
    ]

    private static func action(_ name: String) -> Operation {
        let summaries = [
            "pause": "Pause: nothing new starts; running deployments finish.",
            "resume": "Resume a paused or halted rollout (a halted one accepts the failures so far).",
            "approve": "Open the approval gate: the next wave may start.",
            "abort": "Abort: cancel every deployment not yet started; `rollback: true` (admin) puts each finished target's previous version back.",
            "retry": "Run every failed target again, in its wave; a halted or failed rollout runs on.",
        ]
        return Operation(method: "post", path: "/api/v1/rollouts/{id}/\(name)", id: "\(name)Rollout", tag: "rollouts", summary: summaries[name]!,
                         description: "409 when the rollout's state does not allow it. The body is optional (`{}`); only abort takes `rollback`.",
                         parameters: [Param.rolloutID.ref], body: name == "abort" ? "RolloutActionRequest" : "RolloutActionEmptyRequest",
                         success: [("200", json("RolloutActionResponse", "The rollout after the action."))],
                         errors: name == "abort" ? [.conflict, .forbidden] : [.conflict])
    }

    static let windows: [Operation] = [
        Operation(method: "post", path: "/api/v1/windows", id: "createWindow", tag: "windows",
                  summary: "Add a maintenance window or a freeze, for a label selector or one target.",
                  description: """
                      A target with windows is deployed to by a rollout only inside one (its deployment waits as \
                      `waiting_window`); a freeze stops every rollout deployment to its targets until it ends. Exactly one of \
                      `selector` and `target`, and exactly one of `schedule` and `freeze` (422 naming the field otherwise). \
                      409 for a taken name.
                      """,
                  access: .admin, body: "WindowRequest", success: [("201", json("WindowView", "The window."))], errors: [.conflict],
                  links: [Link(name: "DeleteWindow", operationId: "deleteWindow", parameters: [("name", "$response.body#/name")])]),
        Operation(method: "get", path: "/api/v1/windows", id: "listWindows", tag: "windows", summary: "Every window and freeze, by name.",
                  success: [("200", json("WindowList", "The windows."))]),
        Operation(method: "delete", path: "/api/v1/windows/{name}", id: "deleteWindow", tag: "windows",
                  summary: "Remove a window or freeze; waiting deployments are placed again.", access: .admin,
                  parameters: [Param.windowName.ref], success: [("204", ["description": "Removed."])]),
        Operation(method: "get", path: "/api/v1/certificates/{name}/policy", id: "getCertificatePolicy", tag: "certificates",
                  summary: "How new versions of the certificate roll out.", parameters: [Param.certificateName.ref],
                  success: [("200", json("CertificatePolicyView", "The policy (the defaults when none was set)."))]),
        Operation(method: "put", path: "/api/v1/certificates/{name}/policy", id: "setCertificatePolicy", tag: "certificates",
                  summary: "Set how new versions roll out: `autoRollout` starts a rollout to every bound target on each upload.",
                  access: .admin, parameters: [Param.certificateName.ref], body: "CertificatePolicyRequest",
                  success: [("200", json("CertificatePolicyView", "The policy as stored."))]),
    ]

    /// `state=` takes one or more rollout states, comma-separated.
    static var stateListPattern: String {
        let one = "(" + RolloutState.allCases.map(\.rawValue).joined(separator: "|") + ")"
        return "^\(one)(,\(one))*$"
    }

    fileprivate static func json(_ schema: String, _ description: String) -> SpecValue {
        ["description": .string(description), "content": ["application/json": ["schema": Schema.ref(schema)]]]
    }
}

extension OpenAPISchemas {
    static var rolloutSchemas: [(String, SpecValue)] {
        [
            ("RolloutStrategy", rolloutStrategy),
            ("RolloutAmount", rolloutAmount),
            ("RolloutView", rolloutView),
            ("RolloutWaveView", rolloutWaveView),
            ("RolloutChildView", rolloutChildView),
            ("RolloutState", Schema.enumeration(RolloutState.allCases.map(\.rawValue),
                                                "`pending`, `running`, `waiting_approval`, `paused` and `halted` are open; the rest are final.")),
            ("RolloutCounts", counts),
            ("RolloutActionRequest", Schema.object("The body of a rollout action (optional).", [
                .optional("rollback", Schema.boolean, "abort only: put each finished target's previous version back (admin)."),
            ])),
            ("RolloutActionEmptyRequest", Schema.object("The body of pause, resume, approve and retry (optional): no members.", [])),
            ("RolloutActionResponse", Schema.object(nil, [
                .required("rollout", Schema.ref("RolloutView")),
                .optional("rollbackRollouts", Schema.array(Schema.uuid), "abort with rollback: the rollouts that put the previous versions back."),
                .optional("notRolledBack", Schema.array(Schema.string), "Targets that had no earlier version to go back to."),
            ])),
            ("RolloutProgressEvent", Schema.object("What happened to a rollout.", [
                .required("kind", Schema.string, "wave_started, wave_finished, halted, waiting_approval, succeeded, failed, or an action (pause, resume, approve, abort, retry, create)."),
                .optional("detail", Schema.string),
                .required("actor", Schema.string),
                .required("time", Schema.dateTime),
            ])),
            ("RolloutList", list(of: "RolloutView")),
            ("RolloutEvent", Schema.object("One event of the stream: its name and its data, a JSON text.", [
                .optional("event", Schema.enumeration([RolloutEventName.progress, RolloutEventName.child, RolloutEventName.rollout, RolloutEventName.end, "error"])),
                .required("data", Schema.string.adding([("contentMediaType", "application/json")]), "The event's JSON."),
                .optional("id", Schema.string),
                .optional("retry", Schema.integer),
            ])),
            ("WindowRequest", Schema.object("A recurring maintenance window or a freeze.", [
                .required("name", Schema.ref("Name")),
                .optional("selector", Schema.ref("LabelSelector"), "The targets carrying these labels."),
                .optional("target", Schema.ref("Name"), "One target, by id or name."),
                .optional("schedule", Schema.string, "Days, a time range and an IANA time zone: `Mon-Fri 01:00-04:00 Europe/Berlin`."),
                .optional("freeze", Schema.object(nil, [
                    .required("from", Schema.string, "A date (`2026-12-20`, from its start, UTC) or an RFC 3339 time."),
                    .required("until", Schema.string, "A date (`2027-01-02`, through its end, UTC) or an RFC 3339 time."),
                ])),
            ])),
            ("WindowView", Schema.object(nil, [
                .required("id", Schema.uuid),
                .required("name", Schema.string),
                .optional("selector", Schema.string),
                .optional("targetID", Schema.uuid),
                .optional("targetName", Schema.string),
                .optional("schedule", Schema.string),
                .optional("freezeFrom", Schema.dateTime),
                .optional("freezeUntil", Schema.dateTime),
                .required("activeNow", Schema.boolean, "A schedule: open now. A freeze: in force now."),
                .optional("nextOpening", Schema.dateTime, "A closed schedule's next opening."),
                .required("createdAt", Schema.dateTime),
                .required("actor", Schema.string),
            ])),
            ("WindowList", list(of: "WindowView")),
            ("CertificatePolicyRequest", Schema.object(nil, [
                .required("autoRollout", Schema.boolean, "Start a rollout to every bound target when a new version is uploaded."),
                .optional("strategy", Schema.ref("RolloutStrategy")),
                .optional("behindAfter", duration, "A bound target not serving the newest version this long after its upload is behind (at least 1m)."),
            ])),
            ("CertificatePolicyView", Schema.object(nil, [
                .required("certificate", Schema.string),
                .required("autoRollout", Schema.boolean),
                .required("strategy", Schema.ref("RolloutStrategy")),
                .required("behindAfter", duration),
            ])),
        ]
    }

    static let duration: SpecValue = ["type": "string", "pattern": "^[0-9]+[smhd]?$", "description": "A duration: `90s`, `10m`, `2h`, `1d`."]

    static let rolloutAmount: SpecValue = [
        "description": "A count (`3`) or a percentage (`\"20%\"`).",
        "oneOf": [Schema.integer.adding([("minimum", 0)]), ["type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$"]],
    ]

    static let rolloutStrategy = Schema.object("How a rollout stages its targets. Every member is optional.", [
        .optional("canary", ["oneOf": [Schema.integer.adding([("minimum", 0)]), Schema.array(Schema.ref("Name")).adding([("minItems", 1)])]],
                  "The first wave: a number of targets (default 1), or target names."),
        .optional("waves", Schema.ref("RolloutAmount"), "Targets per later wave: a count, or a percentage of the rest (default 25%)."),
        .optional("maxParallel", Schema.integer.adding([("minimum", 1)]), "At most this many of the rollout's deployments at once."),
        .optional("failureBudget", Schema.ref("RolloutAmount"), "Targets that may fail before the rollout halts (default 0)."),
        .optional("pauseBetweenWaves", duration),
        .optional("approval", Schema.enumeration(RolloutStrategy.Approval.allCases.map(\.rawValue))),
        .optional("order", ["type": "string", "pattern": "^(name|label:[A-Za-z0-9][A-Za-z0-9._/-]*)$",
                            "description": "`name`, or `label:<key>` to spread every wave over the label's values."]),
    ])

    static let counts: SpecValue = ["type": "object", "additionalProperties": Schema.integer, "description": "Deployments by status."]

    static let rolloutView = Schema.object("A rollout: one certificate version staged over many targets, wave by wave.", [
        .required("id", Schema.uuid),
        .required("certificate", Schema.string),
        .required("certificateVersion", Schema.integer),
        .required("strategy", Schema.ref("RolloutStrategy")),
        .required("state", Schema.ref("RolloutState")),
        .required("currentWave", Schema.integer, "1-based: the wave being run (or the last one run)."),
        .required("waves", Schema.array(Schema.ref("RolloutWaveView"))),
        .required("counts", Schema.ref("RolloutCounts"), "Every target's latest deployment, by status."),
        .required("targetCount", Schema.integer),
        .required("failureBudget", Schema.integer, "How many failed targets the budget tolerates."),
        .optional("stopReason", Schema.string, "Why it stopped (halted, aborted, failed)."),
        .optional("stopDeploymentID", Schema.uuid, "The deployment whose failure exceeded the budget."),
        .required("ignoreWindows", Schema.boolean),
        .optional("reason", Schema.string),
        .required("options", Schema.ref("DeploymentOptions")),
        .required("actor", Schema.string),
        .required("createdAt", Schema.dateTime),
        .required("updatedAt", Schema.dateTime),
        .optional("finishedAt", Schema.dateTime),
        .optional("drivenBy", Schema.string, "The replica that last moved it on."),
        .optional("nextWaveAt", Schema.dateTime, "When the next wave may start after a pause between waves."),
    ])

    static let rolloutWaveView = Schema.object(nil, [
        .required("index", Schema.integer, "1-based."),
        .required("canary", Schema.boolean),
        .required("state", Schema.enumeration(["pending", "running", "finished"])),
        .required("counts", Schema.ref("RolloutCounts")),
        .required("targets", Schema.array(Schema.ref("RolloutChildView")), "Empty in lists."),
        .optional("startedAt", Schema.dateTime),
        .optional("finishedAt", Schema.dateTime),
    ])

    static let rolloutChildView = Schema.object("One target of a wave: its latest deployment.", [
        .required("deploymentID", Schema.uuid),
        .required("targetID", Schema.uuid),
        .optional("targetName", Schema.string),
        .required("status", Schema.ref("DeploymentStatus")),
        .optional("step", Schema.string, "The step running now."),
        .optional("statusNote", Schema.string),
        .optional("failure", Schema.string),
        .required("attempts", Schema.integer, "Runs of this target in the rollout (retries add to it)."),
        .optional("startsAt", Schema.dateTime, "waiting_window: when its window opens."),
        .optional("startedAt", Schema.dateTime),
        .optional("finishedAt", Schema.dateTime),
    ])
}
