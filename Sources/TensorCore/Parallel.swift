import COpenBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The process-wide thread count used by every kernel.
///
/// The default is the number of online processors. With several MPI ranks on one machine, set
/// it to cores / ranks-per-machine so that ranks do not oversubscribe the cores.
///
/// OpenBLAS itself always runs single-threaded, and TensorCore splits large matrix products
/// across threads itself. OpenBLAS's own worker threads spin while they wait for work, so they
/// steal cores from the elementwise kernels that run between two products. One level of
/// threading, owned here, avoids that. Work started inside a `parallelFor` chunk runs inline on that
/// chunk's thread, so nested kernels never multiply the thread count.
public enum Threading {
    private static let configuredCount = Atomic<Int>(0)

    /// Number of threads the kernels split work across (at least 1).
    public static var threadCount: Int {
        let configured = configuredCount.load(ordering: .relaxed)
        return configured > 0 ? configured : defaultThreadCount
    }

    /// Sets the thread count for the kernels; values below 1 select the default.
    public static func setThreadCount(_ count: Int) {
        let resolved = count > 0 ? count : defaultThreadCount
        configuredCount.store(resolved, ordering: .relaxed)
    }

    /// Makes OpenBLAS single-threaded; evaluated once, before the first matrix product.
    static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// True on a thread that is running a `parallelFor` chunk.
    static var isInsideParallelRegion: Bool { pthread_getspecific(nestingKey) != nil }

    private static let nestingKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

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
        if chunks <= 1 || isInsideParallelRegion {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(value: escapable)
            let key = nestingKey
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                // Mark this thread so that kernels called from `body` stay on it.
                let previous = pthread_getspecific(key)
                pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
                box.value(start..<end)
                pthread_setspecific(key, previous)
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure when the caller guarantees the accesses are
/// disjoint (each chunk of `parallelFor` touches only its own elements).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
