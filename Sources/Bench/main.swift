import Foundation

// `make bench`: `certdeploy-bench [fleet] …` deploys to a fleet over SSH (FleetBench.swift);
// `certdeploy-bench rollout …` stages a rollout of N targets through the API (RolloutBench.swift);
// `certdeploy-bench api …` drives the HTTP API with 10,000 targets (APIBench.swift). `api-server` is the child
// process the API benchmark starts (APIBenchServer.swift), not meant to be run by hand.

func benchUsage() -> Never {
    print("""
    usage: certdeploy-bench [fleet] [--targets N] [--concurrency C] [--rounds R]
           certdeploy-bench rollout [--targets N] [--concurrency C] [--rounds R]
           certdeploy-bench api [--targets N] [--clients C] [--page-size P] [--list-passes K] [--store sqlite|postgres|both]
    """)
    exit(2)
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "api":
    try await runAPIBench(APIBenchOptions(arguments: arguments.dropFirst()))
case "api-server":
    try await runAPIBenchServer(arguments: arguments.dropFirst())
case "rollout":
    try await runRolloutBench(FleetOptions(arguments: arguments.dropFirst()))
case "fleet":
    try await runFleetBench(FleetOptions(arguments: arguments.dropFirst()))
case "-h", "--help", "help":
    benchUsage()
default:
    try await runFleetBench(FleetOptions(arguments: arguments))
}
