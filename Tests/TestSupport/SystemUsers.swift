import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Local Unix users for SSH tests (root only).
public enum SystemUsers {
    private static let lock = NSLock()

    /// Makes sure user `name` exists with login shell `shell`, can log in with a key
    /// (or with `password` when given), and has passwordless sudo exactly when `sudoNoPassword`
    /// (via `/etc/sudoers.d/certdeploy-test-<name>`, removed when false). Idempotent.
    public static func ensureUser(
        _ name: String,
        shell: String = "/bin/sh",
        password: String? = nil,
        sudoNoPassword: Bool = false
    ) throws {
        guard isValidName(name) else {
            throw HarnessError("invalid user name \(name.debugDescription)")
        }
        guard getuid() == 0 else {
            throw HarnessError("SystemUsers.ensureUser(\(name)) needs root")
        }
        lock.lock()
        defer { lock.unlock() }

        if let existing = getpwnam(name) {
            let currentShell = String(cString: existing.pointee.pw_shell)
            if currentShell != shell {
                try ProcessRunner.runChecked("usermod", ["-s", shell, name])
            }
        } else {
            try Services.require(["useradd", "usermod", "chpasswd"])
            let added = try ProcessRunner.run("useradd", ["-m", "-s", shell, name])
            // Another test process may have created it meanwhile (exit 9: already exists).
            if added.status != 0 && getpwnam(name) == nil {
                throw HarnessError("useradd \(name) failed (exit \(added.status)): \(added.stderr)")
            }
        }

        if let password {
            try ProcessRunner.runChecked("chpasswd", [], stdin: Data("\(name):\(password)\n".utf8))
        } else {
            // '*': no password login, but not locked ('!' blocks key logins when sshd runs without PAM).
            try ProcessRunner.runChecked("usermod", ["-p", "*", name])
        }

        let sudoers = "/etc/sudoers.d/certdeploy-test-\(name)"
        if sudoNoPassword {
            try Services.require(["sudo", "visudo"])
            let content = "\(name) ALL=(ALL) NOPASSWD: ALL\n"
            if (try? String(contentsOfFile: sudoers, encoding: .utf8)) == content {
                return
            }
            // sudo ignores files in sudoers.d whose names contain '.', so the temp name is safe.
            let temp = sudoers + ".tmp"
            try Data(content.utf8).write(to: URL(fileURLWithPath: temp))
            chmod(temp, 0o440)
            let check = try ProcessRunner.run("visudo", ["-cf", temp])
            guard check.status == 0 else {
                unlink(temp)
                throw HarnessError("visudo rejects \(temp): \(check.stdout)\(check.stderr)")
            }
            guard rename(temp, sudoers) == 0 else {
                let message = errnoString()
                unlink(temp)
                throw HarnessError("cannot install \(sudoers): \(message)")
            }
        } else if access(sudoers, F_OK) == 0 {
            unlink(sudoers)
        }
    }

    /// The user's home directory, or nil when there is no such user.
    public static func homeDirectory(of name: String) -> String? {
        guard let entry = getpwnam(name) else { return nil }
        return String(cString: entry.pointee.pw_dir)
    }

    private static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 32 else { return false }
        let lower = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz_")
        let rest = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789_-")
        return lower.contains(first) && name.unicodeScalars.allSatisfy { rest.contains($0) }
    }
}
