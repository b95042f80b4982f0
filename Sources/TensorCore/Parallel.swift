import COpenBLAS
import Dispatch
import Synchronization

/// The process-wide thread count used by the elementwise kernels and by OpenBLAS.
///
/// The default is the number of online processors. With several MPI ranks on one machine, set
/// it to cores / ranks-per-machine so that ranks do not oversubscribe the cores.
public enum Threading {
    private static let configuredCount = Atomic<Int>(0)

    /// Number of threads the kernels split work across (at least 1).
    public static var threadCount: Int {
        let configured = configuredCount.load(ordering: .relaxed)
        return configured > 0 ? configured : defaultThreadCount
    }

    /// Sets the thread count for the kernels and for OpenBLAS; values below 1 select the default.
    public static func setThreadCount(_ count: Int) {
        let resolved = count > 0 ? count : defaultThreadCount
        configuredCount.store(resolved, ordering: .relaxed)
        openblas_set_num_threads(Int32(resolved))
    }

    private static var defaultThreadCount: Int {
        max(1, Int(openblas_get_num_procs()))
    }

    /// Runs `body` over `0..<count` split into contiguous ranges, one per thread.
    ///
    /// Work smaller than two `minimumChunk`s runs inline on the caller's thread, because handing
    /// it to other threads costs more than it saves. Ranges are disjoint, so `body` may write to
    /// the elements of its own range without synchronisation.
    public static func parallelFor(
        _ count: Int, minimumChunk: Int = 16_384, _ body: (Range<Int>) -> Void
    ) {
        if count <= 0 { return }
        let chunks = min(threadCount, count / max(1, minimumChunk))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(value: escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                box.value(start..<end)
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure when the caller guarantees the accesses are
/// disjoint (each chunk of `parallelFor` touches only its own elements).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
