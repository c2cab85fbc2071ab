import CertdeployAPI
import Core
import Foundation
import TestSupport

/// Many nginx-connector targets on one real sshd whose files are plain files in their own directories: validate is a
/// real shell command that fails while the directory holds a `broken` file (so a test can break and fix a subset),
/// reload is `true`, verify is off. With a real nginx or two next to them, a fleet of dozens costs no daemons.
public final class FileFleet {
    public let site: NginxSite
    public let names: [String]
    private let directories: [String]
    public let oldContent = "old certificate\n"

    /// `count` targets named `<prefix>-00`, `<prefix>-01`, …, each starting with `oldContent` in its files.
    public init(site: NginxSite, count: Int, prefix: String = "file") throws {
        self.site = site
        var names: [String] = []
        var directories: [String] = []
        try site.directory.makeDirectory("fleet")
        for index in 0..<count {
            let name = String(format: "%@-%02d", prefix, index)
            let directory = try site.directory.makeDirectory("fleet/\(name)", mode: 0o755)
            for file in ["cert.pem", "key.pem", "snippet.conf"] {
                try Data(oldContent.utf8).write(to: URL(fileURLWithPath: directory + "/" + file))
            }
            names.append(name)
            directories.append(directory)
        }
        self.names = names
        self.directories = directories
    }

    public func directory(_ index: Int) -> String { directories[index] }

    /// The target body for fleet member `index`, with `labels`, bound to `certificate`.
    public func target(_ index: Int, labels: [String: String] = [:], certificate: String? = nil, validateSeconds: Double = 0) -> TargetInput {
        let directory = directories[index]
        let sleep = validateSeconds > 0 ? "sleep \(validateSeconds); " : ""
        let validate = "\(sleep)if [ -e \(directory)/broken ]; then echo \"config test failed: \(directory)/broken\" >&2; exit 1; fi"
        return TargetInput(
            name: names[index], connector: "nginx", labels: labels, certificate: certificate, ssh: site.ssh(),
            config: .object([
                "certificatePath": .string(directory + "/cert.pem"), "keyPath": .string(directory + "/key.pem"),
                "snippetPath": .string(directory + "/snippet.conf"),
                "validateCommand": .array([.string("/bin/sh"), .string("-c"), .string(validate)]),
                "reloadCommand": .array([.string("true")]),
                "verify": .object(["enabled": .bool(false)]),
            ]))
    }

    /// Makes member `index`'s validate fail (or pass again).
    public func setBroken(_ index: Int, _ broken: Bool) throws {
        let path = directories[index] + "/broken"
        if broken {
            FileManager.default.createFile(atPath: path, contents: Data("broken\n".utf8))
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// Member `index`'s certificate file.
    public func certificateFile(_ index: Int) throws -> String {
        try String(contentsOfFile: directories[index] + "/cert.pem", encoding: .utf8)
    }

    /// Whether member `index` holds `leaf` (else, say, the old content).
    public func holds(_ index: Int, _ leaf: TestIssuedCertificate) throws -> Bool {
        try certificateFile(index).contains(leaf.certificatePEM.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
