import Foundation

/// Checks that the real services' binaries a test needs are installed.
public enum Services {
    /// Throws a `HarnessError` naming each binary (a name looked up in PATH, /usr/sbin, ...
    /// or an absolute path) that is missing.
    public static func require(_ binaries: [String]) throws {
        let missing = binaries.filter { ProcessRunner.which($0) == nil }
        guard missing.isEmpty else {
            throw HarnessError(
                "missing \(missing.joined(separator: ", ")): run `make test`, which installs it "
                    + "(or `bash scripts/install-deps.sh test` as root)")
        }
    }

    /// True when every binary is installed.
    public static func available(_ binaries: [String]) -> Bool {
        binaries.allSatisfy { ProcessRunner.which($0) != nil }
    }
}
