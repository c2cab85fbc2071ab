import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, mode 0755 so non-root users (sshd acting as a test user,
/// nginx workers) can traverse it. Not removed automatically: call `remove()`; leaving it
/// keeps logs around when a test fails.
public final class TemporaryDirectory: Sendable {
    public let path: String

    /// Creates `/tmp/<prefix>-XXXXXX`.
    public init(prefix: String = "certdeploy") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else {
            throw HarnessError("mkdtemp failed: \(errnoString())")
        }
        path = String(cString: created)
        guard chmod(path, 0o755) == 0 else {
            throw HarnessError("chmod \(path) failed: \(errnoString())")
        }
    }

    /// The path of `name` inside the directory (nothing is created).
    public func file(_ name: String) -> String {
        path + "/" + name
    }

    /// Writes `contents` to `name` (replacing it), sets `mode`, and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ contents: String, mode: mode_t = 0o644) throws -> String {
        try write(name, Data(contents.utf8), mode: mode)
    }

    /// Writes `data` to `name` (replacing it), sets `mode`, and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ data: Data, mode: mode_t = 0o644) throws -> String {
        let target = file(name)
        do {
            try data.write(to: URL(fileURLWithPath: target))
        } catch {
            throw HarnessError("cannot write \(target): \(error)")
        }
        guard chmod(target, mode) == 0 else {
            throw HarnessError("chmod \(target) failed: \(errnoString())")
        }
        return target
    }

    /// Creates a subdirectory (mode 0755) and returns its path.
    @discardableResult
    public func makeDirectory(_ name: String, mode: mode_t = 0o755) throws -> String {
        let target = file(name)
        if mkdir(target, mode) != 0 && errno != EEXIST {
            throw HarnessError("mkdir \(target) failed: \(errnoString())")
        }
        _ = chmod(target, mode)
        return target
    }

    /// Deletes the directory and everything in it. Safe to call more than once.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
