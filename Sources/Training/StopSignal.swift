#if canImport(Glibc)
import Glibc
#endif

/// Records SIGTERM, SIGINT and SIGUSR1 so that training can stop at the end of a step.
///
/// srun delivers SIGTERM to every task before preemption. Open MPI 4.1's mpirun turns its own
/// SIGTERM or SIGINT into SIGTERM to the ranks followed by SIGKILL one second later, too soon
/// for a checkpoint, but it forwards SIGUSR1 untouched: send SIGUSR1 to mpirun to stop a run
/// cleanly. The handler only sets a flag; the trainer checks it after each step, and all ranks
/// agree on it through one small MAX all-reduce before they stop together.
public enum StopSignal {
    nonisolated(unsafe) private static var received: sig_atomic_t = 0

    /// Installs the handlers; call once at the start of a run.
    public static func install() {
        signal(SIGTERM) { _ in StopSignal.received = 1 }
        signal(SIGINT) { _ in StopSignal.received = 1 }
        signal(SIGUSR1) { _ in StopSignal.received = 1 }
    }

    /// True once SIGTERM, SIGINT or SIGUSR1 has arrived.
    public static var isRequested: Bool { received != 0 }

    /// Sets the flag as a signal would (for tests and fault injection).
    public static func request() { received = 1 }
}
