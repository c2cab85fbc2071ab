import ArgumentParser
import CertdeployAPI
import Core
import Foundation

/// `certdeploy windows …`: maintenance windows and freezes.
struct WindowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "windows",
        abstract: "Add, list and remove maintenance windows and freezes.",
        discussion: """
        A target with windows is deployed to only inside one of them (a rollout's deployment waits as waiting_window until \
        its window opens); a freeze stops every deploy to its targets. Apply one to a label selector (--selector) or one \
        target (--target). Exit status: 0 done, 1 failed, 2 bad input.
        """,
        subcommands: [Add.self, List.self, Remove.self],
        defaultSubcommand: List.self
    )

    struct Add: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a window (--schedule \"Mon-Fri 01:00-04:00 Europe/Berlin\") or a freeze (--freeze-from and --freeze-until).")
        @Argument(help: "A name for it.") var name: String
        @Option(help: ArgumentHelp("The targets carrying these labels (key=value[,key=value]).", valueName: "selector")) var selector: String?
        @Option(help: "One target (id or name).") var target: String?
        @Option(help: ArgumentHelp("Days, a time range and a time zone: \"Mon-Fri 01:00-04:00 Europe/Berlin\", \"daily 22:00-02:00\".",
                                   valueName: "schedule"))
        var schedule: String?
        @Option(name: .customLong("freeze-from"), help: ArgumentHelp("A freeze's first day (2026-12-20) or time (RFC 3339).", valueName: "date"))
        var freezeFrom: String?
        @Option(name: .customLong("freeze-until"), help: ArgumentHelp("A freeze's last day (inclusive) or end time.", valueName: "date"))
        var freezeUntil: String?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if (selector == nil) == (target == nil) { throw ValidationError("give --selector or --target (one of the two)") }
            if (schedule == nil) == (freezeFrom == nil && freezeUntil == nil) {
                throw ValidationError("give --schedule (a window) or --freeze-from and --freeze-until (a freeze)")
            }
            if schedule == nil, freezeFrom == nil || freezeUntil == nil { throw ValidationError("a freeze needs --freeze-from and --freeze-until") }
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let freeze = freezeFrom.flatMap { from in freezeUntil.map { WindowRequest.Freeze(from: from, until: $0) } }
            let window = try await client.createWindow(WindowRequest(name: name, selector: selector, target: target, schedule: schedule, freeze: freeze))
            if options.output == .json { try console.json(window); return 0 }
            WindowsCommand.table([window]).forEach(console.line)
            return 0
        }
    }

    struct List: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "List windows and freezes, with whether each is open (or in force) now.")
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let list = try await client.windows()
            if options.output == .json { try console.json(list); return 0 }
            WindowsCommand.table(list.items).forEach(console.line)
            return 0
        }
    }

    struct Remove: ClientSubcommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a window or freeze (waiting deployments are placed again).")
        @Argument(help: "Its name.") var name: String
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await client.deleteWindow(name)
            if options.output == .text { console.line("Removed window \(name)") }
            return 0
        }
    }

    /// `NAME APPLIES TO RULE NOW`.
    static func table(_ windows: [WindowView]) -> [String] {
        TextTable.render(["NAME", "APPLIES TO", "RULE", "NOW"], windows.map { window in
            let appliesTo = window.selector ?? window.targetName ?? window.targetID?.lowercasedText ?? "-"
            let rule = window.schedule ?? "freeze \(ClientFormat.date(window.freezeFrom)) – \(ClientFormat.date(window.freezeUntil))"
            let now: String
            if window.schedule != nil {
                now = window.activeNow ? "open" : "closed" + (window.nextOpening.map { ", opens \(ClientFormat.date($0))" } ?? "")
            } else {
                now = window.activeNow ? "in force" : "not in force"
            }
            return [window.name, appliesTo, rule, now]
        })
    }
}
