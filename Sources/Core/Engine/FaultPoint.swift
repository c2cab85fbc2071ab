#if CERTDEPLOY_FAULT_INJECTION
import Glibc
#endif

/// Step boundaries where the fault tests kill the process, to prove what a crash there leaves behind.
///
/// Only debug builds (the ones the tests run) contain the hook, and only `CERTDEPLOY_TEST_KILL_AFTER=<step>`
/// in the environment arms it; in a release build `reached` is an empty inline function.
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
}
