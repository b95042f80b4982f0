import Dispatch
import Synchronization

/// Wall-clock time per named phase of a pass (vision, attention, MLP, ...), for benchmarks.
///
/// Phases are exclusive: a phase measured inside another one pauses the outer phase, so the
/// totals add up to the measured wall time and nothing is counted twice. Measurement is off
/// until `start()`; while off, `measure` costs one atomic load. Phases are measured on the
/// thread that drives the pass (the kernels it calls may use other threads).
public enum PhaseTimer {
    private struct State {
        var totals: [String: Double] = [:]
        /// Open phases, innermost last, with the time each was last resumed.
        var open: [(phase: String, since: UInt64)] = []
    }

    private static let active = Atomic<Bool>(false)
    private static let state = Mutex(State())

    /// Clears the totals and starts measuring.
    public static func start() {
        state.withLock { $0 = State() }
        active.store(true, ordering: .relaxed)
    }

    /// Stops measuring and returns the seconds spent in each phase.
    public static func stop() -> [String: Double] {
        active.store(false, ordering: .relaxed)
        return state.withLock { $0.totals }
    }

    /// Runs `body`, adding its wall time (minus nested phases) to `phase`.
    @inline(__always) @discardableResult
    public static func measure<R>(_ phase: String, _ body: () throws -> R) rethrows -> R {
        if !active.load(ordering: .relaxed) { return try body() }
        enter(phase)
        defer { leave() }
        return try body()
    }

    private static func enter(_ phase: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        state.withLock { state in
            if let outer = state.open.last {
                state.totals[outer.phase, default: 0] += Double(now - outer.since) / 1e9
            }
            state.open.append((phase, now))
        }
    }

    private static func leave() {
        let now = DispatchTime.now().uptimeNanoseconds
        state.withLock { state in
            guard let inner = state.open.popLast() else { return }
            state.totals[inner.phase, default: 0] += Double(now - inner.since) / 1e9
            if !state.open.isEmpty { state.open[state.open.count - 1].since = now }
        }
    }
}
