#if CERTDEPLOY_FAULT_INJECTION
import Glibc
#endif

/// Step boundaries where the fault tests kill the process, to prove what a crash there leaves behind, and one place
/// where they hold it, so a test can cut the connection in the middle of an upload.
///
/// Only debug builds (the ones the tests run) contain the hooks, and only the environment arms them:
/// `CERTDEPLOY_TEST_KILL_AFTER=<step>` kills the process after that step; `CERTDEPLOY_TEST_HOLD_MID_WRITE=<seconds>`
/// waits that long after the first temporary file is written. In a release build both are empty inline functions.
enum FaultPoint: String {
    case write, activate, validate, reload, verify

    @inline(__always)
    static func reached(_ point: FaultPoint) {
        #if CERTDEPLOY_FAULT_INJECTION
        if let armed = getenv("CERTDEPLOY_TEST_KILL_AFTER"), String(cString: armed) == point.rawValue {
            kill(getpid(), SIGKILL)
        }
        #endif
    }

    /// Called after the first of several temporary files is written.
    @inline(__always)
    static func midWrite() async {
        #if CERTDEPLOY_FAULT_INJECTION
        if let held = getenv("CERTDEPLOY_TEST_HOLD_MID_WRITE"), let seconds = Double(String(cString: held)) {
            try? await Task.sleep(for: .seconds(seconds))
        }
        #endif
    }
}
