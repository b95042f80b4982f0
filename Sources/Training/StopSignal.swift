#if canImport(Glibc)
import Glibc
#endif

/// Records SIGTERM and SIGINT so that training can stop at the end of a step.
///
/// Slurm sends SIGTERM before preemption and mpirun forwards Ctrl-C as SIGINT; the handler
/// only sets a flag, and the trainer checks it after each step (all ranks agree on it through
/// one small MAX all-reduce before they stop together).
public enum StopSignal {
    nonisolated(unsafe) private static var received: sig_atomic_t = 0

    /// Installs the handlers; call once at the start of a run.
    public static func install() {
        signal(SIGTERM) { _ in StopSignal.received = 1 }
        signal(SIGINT) { _ in StopSignal.received = 1 }
    }

    /// True once SIGTERM or SIGINT has arrived.
    public static var isRequested: Bool { received != 0 }

    /// Sets the flag as a signal would (for tests and fault injection).
    public static func request() { received = 1 }
}
