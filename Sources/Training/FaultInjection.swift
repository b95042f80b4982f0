import Foundation
import PaliGemmaModel

#if canImport(Glibc)
import Glibc
#endif

/// One fault that `palitrain train --inject` plants in a run, for fault-injection tests.
///
/// Ranks and steps count as in the training log: ranks from 0, optimizer steps from 1.
public enum TrainingFault: Sendable, Equatable, CustomStringConvertible {
    /// Rank `rank` sets one value of its local gradient to NaN at `step`, before the all-reduce.
    case nanGradient(rank: Int, step: Int)
    /// Rank `rank` sets one value of its local gradient to `1e6 × world size` at `step`. After
    /// the all-reduce's `1 / size` pre-scaling that value is 1e6, above fp16's maximum (65504),
    /// so an fp16 codec has to fall back to f32 or skip the step.
    case overflowGradient(rank: Int, step: Int)
    /// Rank `rank` raises one parameter value by one ulp after the update of `step`, so that
    /// its replica differs from the others by the smallest possible amount.
    case perturbParameters(rank: Int, step: Int)
    /// Rank `rank` corrupts one payload byte of the first gradient frame it sends.
    case corruptFrame(rank: Int)
    /// Rank `rank` kills itself with SIGKILL at `step`, after its backward pass and before the
    /// all-reduce, so the other ranks are waiting for its gradients.
    case die(rank: Int, step: Int)
    /// Rank 0 sleeps `seconds` inside a checkpoint write, after the files and before the
    /// completion marker: at every checkpoint, or only at the one of `step`. A test kills it
    /// during the sleep to check that an interrupted checkpoint is never resumed from.
    case slowCheckpoint(seconds: Double, step: Int?)

    public var description: String {
        switch self {
        case .nanGradient(let rank, let step): return "nan-grad:\(rank)@\(step)"
        case .overflowGradient(let rank, let step): return "overflow-grad:\(rank)@\(step)"
        case .perturbParameters(let rank, let step): return "perturb-params:\(rank)@\(step)"
        case .corruptFrame(let rank): return "corrupt-frame:\(rank)"
        case .die(let rank, let step): return "die:\(rank)@\(step)"
        case .slowCheckpoint(let seconds, let step):
            return "slow-checkpoint:\(FaultPlan.format(seconds))" + (step.map { "@\($0)" } ?? "")
        }
    }

    /// The rank that the fault acts on (rank 0 for a slow checkpoint, which only rank 0 writes).
    public var rank: Int {
        switch self {
        case .nanGradient(let rank, _), .overflowGradient(let rank, _), .perturbParameters(let rank, _),
             .corruptFrame(let rank), .die(let rank, _):
            return rank
        case .slowCheckpoint:
            return 0
        }
    }

    /// The step the fault fires at, if it names one.
    public var step: Int? {
        switch self {
        case .nanGradient(_, let step), .overflowGradient(_, let step), .perturbParameters(_, let step), .die(_, let step):
            return step
        case .slowCheckpoint(_, let step):
            return step
        case .corruptFrame:
            return nil
        }
    }
}

/// An invalid `--inject` value, or a fault that cannot fire in this run.
public enum FaultPlanError: Error, CustomStringConvertible, Equatable {
    case invalid(entry: String, reason: String)
    case rankOutOfRange(fault: TrainingFault, worldSize: Int)
    case stepOutOfRange(fault: TrainingFault, totalSteps: Int)
    case needsSeveralRanks(fault: TrainingFault)

    public var description: String {
        switch self {
        case .invalid(let entry, let reason):
            return "invalid --inject fault '\(entry)': \(reason); the forms are \(FaultPlan.forms), "
                + "several separated by commas"
        case .rankOutOfRange(let fault, let worldSize):
            return "--inject '\(fault)' names rank \(fault.rank), but the run has \(worldSize) rank\(worldSize == 1 ? "" : "s") "
                + "(0 to \(worldSize - 1)); pick a rank below \(worldSize)"
        case .stepOutOfRange(let fault, let totalSteps):
            return "--inject '\(fault)' would fire at step \(fault.step ?? 0), but the run ends at step \(totalSteps); "
                + "pick a step from 1 to \(totalSteps)"
        case .needsSeveralRanks(let fault):
            return "--inject '\(fault)' needs at least 2 ranks, because a single-process run sends no gradient frames; "
                + "run it under mpirun -n 2 or more"
        }
    }
}

/// The faults of one run, parsed from `--inject` (for fault-injection tests only).
///
/// The trainer keeps a plan only when `--inject` was given, so a normal run never evaluates
/// any of these checks.
public struct FaultPlan: Sendable, Equatable {
    public let faults: [TrainingFault]

    static let forms = "nan-grad:RANK@STEP, overflow-grad:RANK@STEP, perturb-params:RANK@STEP, "
        + "corrupt-frame:RANK, die:RANK@STEP, slow-checkpoint:SECONDS[@STEP]"

    public init(faults: [TrainingFault]) {
        self.faults = faults
    }

    /// Parses a comma-separated list of faults such as `nan-grad:1@3,slow-checkpoint:20@4`.
    public static func parse(_ text: String) throws -> FaultPlan {
        let entries = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        return FaultPlan(faults: try entries.map(parseFault))
    }

    private static func parseFault(_ entry: String) throws -> TrainingFault {
        guard let colon = entry.firstIndex(of: ":") else {
            throw FaultPlanError.invalid(entry: entry, reason: "expected KIND:ARGUMENTS")
        }
        let kind = String(entry[..<colon])
        let argument = String(entry[entry.index(after: colon)...])

        func rankAndStep() throws -> (Int, Int) {
            let parts = argument.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else {
                throw FaultPlanError.invalid(entry: entry, reason: "'\(kind)' takes RANK@STEP, found '\(argument)'")
            }
            return (try rank(parts[0]), try step(parts[1]))
        }
        func rank(_ text: String) throws -> Int {
            guard let value = Int(text), value >= 0 else {
                throw FaultPlanError.invalid(entry: entry, reason: "RANK must be an integer of 0 or more, found '\(text)'")
            }
            return value
        }
        func step(_ text: String) throws -> Int {
            guard let value = Int(text), value >= 1 else {
                throw FaultPlanError.invalid(entry: entry, reason: "STEP must be an integer of 1 or more, found '\(text)'")
            }
            return value
        }

        switch kind {
        case "nan-grad":
            let (r, s) = try rankAndStep()
            return .nanGradient(rank: r, step: s)
        case "overflow-grad":
            let (r, s) = try rankAndStep()
            return .overflowGradient(rank: r, step: s)
        case "perturb-params":
            let (r, s) = try rankAndStep()
            return .perturbParameters(rank: r, step: s)
        case "die":
            let (r, s) = try rankAndStep()
            return .die(rank: r, step: s)
        case "corrupt-frame":
            return .corruptFrame(rank: try rank(argument))
        case "slow-checkpoint":
            let parts = argument.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2, let seconds = Double(parts[0]), seconds.isFinite, seconds > 0 else {
                throw FaultPlanError.invalid(
                    entry: entry, reason: "'slow-checkpoint' takes SECONDS (a number above 0) and an optional @STEP, found '\(argument)'")
            }
            return .slowCheckpoint(seconds: seconds, step: parts.count == 2 ? try step(parts[1]) : nil)
        default:
            throw FaultPlanError.invalid(entry: entry, reason: "unknown fault kind '\(kind)'")
        }
    }

    /// Throws unless every fault can fire in a run of `worldSize` ranks that ends at `totalSteps`.
    public func validate(worldSize: Int, totalSteps: Int) throws {
        for fault in faults {
            if fault.rank >= worldSize { throw FaultPlanError.rankOutOfRange(fault: fault, worldSize: worldSize) }
            if let step = fault.step, step > totalSteps { throw FaultPlanError.stepOutOfRange(fault: fault, totalSteps: totalSteps) }
            if case .corruptFrame = fault, worldSize < 2 { throw FaultPlanError.needsSeveralRanks(fault: fault) }
        }
    }

    /// The rank whose first gradient frame is to be corrupted, if any.
    public var corruptFrameRank: Int? {
        for case .corruptFrame(let rank) in faults { return rank }
        return nil
    }

    // MARK: - Firing the faults

    /// Plants this rank's gradient faults of `step` into the first value of its first local
    /// gradient buffer, and kills the rank if it is planned to die at `step`.
    func injectBeforeAllReduce(
        gradients: [UnsafeMutableBufferPointer<Float>], names: [String], rank: Int, worldSize: Int, step: Int
    ) {
        guard let first = gradients.first, !first.isEmpty else { return }
        for fault in faults {
            switch fault {
            case .nanGradient(rank, step):
                first[0] = .nan
                Self.report("rank \(rank) set gradient '\(names[0])'[0] to NaN at step \(step)")
            case .overflowGradient(rank, step):
                first[0] = 1e6 * Float(worldSize)
                Self.report("rank \(rank) set gradient '\(names[0])'[0] to \(first[0]) at step \(step), which overflows fp16 after the 1/\(worldSize) scaling")
            case .die(rank, step):
                Self.report("rank \(rank) (pid \(getpid())) kills itself with SIGKILL at step \(step), before the all-reduce")
                kill(getpid(), SIGKILL)
            default:
                break
            }
        }
    }

    /// Raises the first value of the first trainable parameter by one ulp when this rank is
    /// planned to diverge after `step`.
    func perturbAfterUpdate(parameters: ParameterStore, rank: Int, step: Int) {
        guard faults.contains(.perturbParameters(rank: rank, step: step)), let name = parameters.trainableNames.first else { return }
        parameters.withMutableValues(name) { values in
            guard !values.isEmpty else { return }
            values[0] = values[0].nextUp
        }
        Self.report("rank \(rank) raised parameter '\(name)'[0] by one ulp after step \(step)")
    }

    /// Sleeps inside the checkpoint write of `step` when a slow checkpoint is planned for it.
    func delayCheckpoint(step: Int, folder: String) {
        for case .slowCheckpoint(let seconds, let only) in faults where only == nil || only == step {
            Self.report("rank 0 (pid \(getpid())) sleeps \(Self.format(seconds)) s before marking \(folder) complete")
            Thread.sleep(forTimeInterval: seconds)
        }
    }

    /// Writes a `[fault]` line to standard error at once, so that it shows even when the rank
    /// dies right after.
    static func report(_ line: String) {
        FileHandle.standardError.write(Data("[fault] \(line)\n".utf8))
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e9 ? String(Int(seconds)) : String(seconds)
    }
}
