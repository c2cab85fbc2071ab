import Foundation

/// The tests' stand-in for the system trust store: every test CA's root (and every self-signed test leaf) is
/// appended to one PEM file, and `SSL_CERT_FILE` names it for this process and the processes it starts. OpenSSL
/// reads that variable where it would read the system store, so the engine's client's-eye chain check trusts the
/// test CAs exactly as an operator's machine trusts a private CA added to its store.
public enum TestTrustStore {
    private static let lock = NSLock()
    /// Guarded by `lock`.
    nonisolated(unsafe) private static var path: String?

    /// Adds `pem` to the trust file, creating it (and setting `SSL_CERT_FILE`) on first use.
    public static func trust(_ pem: String) {
        lock.withLock {
            if path == nil {
                let created = NSTemporaryDirectory() + "certdeploy-test-trust-\(getpid()).pem"
                FileManager.default.createFile(atPath: created, contents: Data())
                setenv("SSL_CERT_FILE", created, 1)
                path = created
            }
            guard let path, let handle = FileHandle(forWritingAtPath: path) else { return }
            handle.seekToEndOfFile()
            handle.write(Data(pem.utf8))
            try? handle.close()
        }
    }
}
