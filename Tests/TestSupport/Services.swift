import Foundation

/// Checks that the real services' binaries a test needs are installed.
public enum Services {
    /// Throws a `HarnessError` naming each binary (a name looked up in PATH, /usr/sbin, ...
    /// or an absolute path) that is missing.
    public static func require(_ binaries: [String]) throws {
        let missing = binaries.filter { !isPresent($0) }
        guard missing.isEmpty else {
            throw HarnessError(
                "missing \(missing.joined(separator: ", ")): run `make test`, which installs it "
                    + "(or `bash scripts/install-deps.sh test` as root)")
        }
    }

    /// True when every binary is installed.
    public static func available(_ binaries: [String]) -> Bool {
        binaries.allSatisfy(isPresent)
    }

    /// A name is looked up as a command; an absolute path only has to exist (modules are not executable).
    private static func isPresent(_ name: String) -> Bool {
        name.hasPrefix("/") ? FileManager.default.fileExists(atPath: name) : ProcessRunner.which(name) != nil
    }
}
