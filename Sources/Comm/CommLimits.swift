import Foundation

/// Limits that bound memory and waiting in the communicators.
public struct CommLimits: Sendable, Equatable {
    /// Largest point-to-point message a rank accepts, in bytes. A larger incoming message is
    /// rejected before any memory is allocated for it. The default, 1 GiB, is below MPI's
    /// `Int32` count limit and above the largest frame of a 1 GiB gradient bucket split over
    /// two ranks (`GradientAllReducer` checks its bucket size against this at init).
    public var maxMessageBytes: Int

    /// Maximum time, in seconds, that one wait (a receive, a barrier, a small all-reduce)
    /// may take before the rank gives up with `CommError.timedOut`. This is the backstop for
    /// a peer that died without the launcher noticing. The default of 300 s must exceed the
    /// longest time one rank works alone (rank 0 evaluating or writing a checkpoint while the
    /// others wait at a barrier), so raise it for long evaluations.
    public var waitTimeout: Double

    /// First sleep, in seconds, of a waiting rank between two polls of MPI. The sleep doubles
    /// after every empty poll up to `maxPollInterval`, and restarts at this value whenever a
    /// poll makes progress.
    public var minPollInterval: Double

    /// Maximum sleep, in seconds, between two polls of a waiting rank.
    public var maxPollInterval: Double

    public init(
        maxMessageBytes: Int = 1 << 30,
        waitTimeout: Double = 300,
        minPollInterval: Double = 20e-6,
        maxPollInterval: Double = 1e-3
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.waitTimeout = waitTimeout
        self.minPollInterval = minPollInterval
        self.maxPollInterval = maxPollInterval
    }

    /// Throws `CommError.invalidArgument` when a value is out of range.
    public func validate() throws {
        guard maxMessageBytes >= FrameHeader.byteCount, maxMessageBytes <= Int(Int32.max) else {
            throw CommError.invalidArgument(
                "CommLimits.maxMessageBytes must lie in \(FrameHeader.byteCount)...\(Int32.max) (MPI counts are Int32), found \(maxMessageBytes)"
            )
        }
        guard waitTimeout > 0, waitTimeout.isFinite else {
            throw CommError.invalidArgument("CommLimits.waitTimeout must be a positive number of seconds, found \(waitTimeout)")
        }
        guard minPollInterval > 0, maxPollInterval >= minPollInterval, maxPollInterval < 1 else {
            throw CommError.invalidArgument(
                "CommLimits poll intervals must satisfy 0 < minPollInterval <= maxPollInterval < 1 s, found \(minPollInterval) and \(maxPollInterval)"
            )
        }
    }
}

/// The sleep-and-retry loop of one wait: exponential back-off between polls and a deadline.
///
/// Waiting ranks share cores with computing ones, so they must sleep instead of spinning: a
/// rank spinning in `MPI_Barrier` halves the GEMM speed of a neighbour on the same core.
struct PollingWait {
    private let limits: CommLimits
    private let start: UInt64
    private var interval: Double

    init(limits: CommLimits) {
        self.limits = limits
        self.start = DispatchTime.now().uptimeNanoseconds
        self.interval = limits.minPollInterval
    }

    /// Seconds since the wait began.
    var elapsed: Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Restarts the back-off after a poll that made progress.
    mutating func progressed() {
        interval = limits.minPollInterval
    }

    /// Sleeps before the next poll, or throws `CommError.timedOut` naming `operation` once
    /// the wait has lasted `CommLimits.waitTimeout`.
    mutating func sleep(waitingFor operation: @autoclosure () -> String) throws {
        if elapsed > limits.waitTimeout {
            throw CommError.timedOut(operation: operation(), seconds: limits.waitTimeout)
        }
        let nanoseconds = Int(interval * 1e9)
        var request = timespec(tv_sec: nanoseconds / 1_000_000_000, tv_nsec: nanoseconds % 1_000_000_000)
        var remaining = timespec()
        _ = nanosleep(&request, &remaining)
        interval = min(interval * 2, limits.maxPollInterval)
    }
}
