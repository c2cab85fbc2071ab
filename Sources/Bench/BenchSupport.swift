import Foundation

// Helpers shared by the benchmark modes.

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
    return sorted[max(0, index)]
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Resident and peak resident set size of a process, in MB (`VmRSS` / `VmHWM` in /proc/<pid>/status).
struct MemoryReading {
    var rss: Double
    var peak: Double

    static func of(_ pid: String = "self") -> MemoryReading {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return MemoryReading(rss: 0, peak: 0) }
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
                  let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
            return kilobytes / 1024
        }
        return MemoryReading(rss: field("VmRSS"), peak: field("VmHWM"))
    }
}

func peakRSSMegabytes() -> Double { MemoryReading.of().peak }

/// User + system CPU seconds a process has used so far (/proc/<pid>/stat fields 14 and 15).
func cpuSeconds(_ pid: String = "self") -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
