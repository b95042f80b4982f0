import Comm
import Foundation
import PaliGemmaModel
import TensorCore

/// The data-parallel training loop of one rank.
///
/// Each step: every rank runs forward and backward on its micro-batches, the gradients of the
/// trainable parameters are averaged over ranks (compressed all-reduce), clipped, and applied
/// by the optimizer with the scheduled learning rate. All ranks run the same updates on the
/// same reduced gradients, so they stay bit-identical replicas; this is checked every
/// `checkReplicasEvery` steps. Rank 0 logs, validates and writes checkpoints while the other
/// ranks wait at a sleeping barrier.
public final class Trainer {
    public let settings: TrainSettings
    public let model: PaliGemma
    public let communicator: any Communicator
    public let data: any TrainingDataSource
    public private(set) var optimizer: Optimizer
    public private(set) var state: TrainState
    public let schedule: LearningRateSchedule

    private let reducer: GradientAllReducer
    private let store: CheckpointStore
    private let metrics: MetricsLog?
    private let validation: Validation?
    private let log: (String) -> Void
    /// Faults to plant, for fault-injection tests; nil in a normal run.
    private let faults: FaultPlan?
    /// Newest checkpoint step whose parameters were finite (never pruned).
    private var newestFiniteCheckpoint: Int?
    /// Step of the checkpoint this process wrote last, so that a stop right after a scheduled
    /// checkpoint does not write the same folder again.
    private var lastSavedStep: Int?
    /// Vision-feature cache hits and misses of every rank over the steps this process ran.
    private var visionCacheTotals = VisionCacheCounts(hits: 0, misses: 0)

    public init(
        settings: TrainSettings, model: PaliGemma, communicator: any Communicator, data: any TrainingDataSource,
        reducer: GradientAllReducer, optimizer: Optimizer, state: TrainState, schedule: LearningRateSchedule,
        metrics: MetricsLog?, validation: Validation?, faults: FaultPlan? = nil, log: @escaping (String) -> Void
    ) {
        self.settings = settings
        self.model = model
        self.communicator = communicator
        self.data = data
        self.reducer = reducer
        self.optimizer = optimizer
        self.state = state
        self.schedule = schedule
        self.store = CheckpointStore(outputDirectory: settings.outputDirectory)
        self.metrics = metrics
        self.validation = validation
        self.log = log
        self.faults = faults
    }

    private var isRoot: Bool { communicator.rank == 0 }

    /// Trains from `state.step + 1` to `state.totalSteps`, or until SIGTERM/SIGINT.
    ///
    /// Returns true when the run reached its last step, false when it stopped early on a signal
    /// (after writing a checkpoint).
    @discardableResult
    public func run() throws -> Bool {
        let names = model.parameters.trainableNames
        var stepTimes: [Double] = []

        while state.step < state.totalSteps {
            let step = state.step + 1
            let report = try trainStep(step, names: names)
            stepTimes.append(report.stepSeconds)
            state.step = step
            state.lastLoss = report.loss

            var values: [String: Double] = [:]
            if isRoot {
                var line = report
                let recent = stepTimes.suffix(10)
                line.etaSeconds = recent.reduce(0, +) / Double(recent.count) * Double(state.totalSteps - step)
                log(line.line)
                values = line.metrics
            }

            let isLast = step == state.totalSteps
            if settings.checkReplicasEvery > 0 && step % settings.checkReplicasEvery == 0 && !isLast {
                try verifyReplicas(step: step)
            }

            // One metrics.jsonl line per step: the validation values join the step's own.
            var newBest = false
            var validation: ValidationOutcome?
            if (settings.evalEvery > 0 && step % settings.evalEvery == 0) || isLast {
                (newBest, validation) = try validate(step: step)
            }
            if isRoot {
                values.merge(validation?.metrics ?? [:]) { _, new in new }
                try metrics?.append(step: step, values)
                publishReport(validation, step: step)
            }
            // The best checkpoint is always saved, so that `best` names a complete folder.
            if (settings.saveEvery > 0 && step % settings.saveEvery == 0) || isLast || newBest {
                try save(step: step)
            }

            // Every rank stops at the same step: a signal seen by any rank stops all of them.
            let requested = StopSignal.isRequested || settings.stopAfter == step
            let stop = try communicator.allReduce([requested ? 1 : 0], operation: .max)[0] > 0
            if stop && !isLast {
                if isRoot { log("[train] stop requested after step \(step); writing a checkpoint and exiting") }
                if lastSavedStep != step { try save(step: step) }
                logVisionCacheSummary()
                return false
            }
        }
        logVisionCacheSummary()
        return true
    }

    /// Logs the vision-feature cache's counts on rank 0 at the end of a run.
    private func logVisionCacheSummary() {
        guard isRoot, let cache = model.visionFeatureCache else { return }
        let totals = visionCacheTotals
        let lookups = max(1, totals.hits + totals.misses)
        let local = cache.statistics
        log(String(format: "[vision-cache] %d hits and %d misses over all ranks (%.1f%% hits); rank 0 stores %d images in "
                   + "%.1f of its %.0f MiB (%@), did not store %d for lack of room, found %d keys with changed pixels",
                   totals.hits, totals.misses, 100 * Double(totals.hits) / Double(lookups), cache.entryCount,
                   Double(cache.storedBytes) / Double(1 << 20), Double(cache.budgetBytes) / Double(1 << 20),
                   cache.dtype.rawValue, local.notStored, local.contentMismatches)
            + (local.keptAsF32 > 0 ? ", kept \(local.keptAsF32) in f32 because they exceed the f16 range" : ""))
    }

    // MARK: - One step

    private func trainStep(_ step: Int, names: [String]) throws -> StepReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let microSteps = settings.gradientAccumulation

        // 1. Forward and backward over this rank's micro-batches; gradients accumulate.
        var localLossSum = 0.0
        var localExamples = 0
        var localTokens = 0
        let cacheBefore = model.visionFeatureCache?.statistics ?? VisionFeatureCache.Statistics()
        for micro in 0..<microSteps {
            let batch = try data.batch(step: step - 1, microStep: micro)
            let output = try model.forwardBackward(batch, logits: .supervised, accumulate: micro > 0, lossScale: 1 / Float(microSteps))
            localLossSum += Double(output.loss) * Double(batch.batchSize)
            localExamples += batch.batchSize
            localTokens += batch.batchSize * (batch.storedTextLength - 1 + model.config.vision.numTokens)
        }

        // 2. Average the gradients over ranks. The pointers stay valid while `gradientBuffers`
        // keeps the buffers alive, until the end of this function.
        let gradientBuffers = names.map { model.gradients[$0]! }
        defer { withExtendedLifetime(gradientBuffers) {} }
        let buffers = gradientBuffers.map { $0.withUnsafeMutableBufferPointer { $0 } }
        faults?.injectBeforeAllReduce(gradients: buffers, names: names, rank: communicator.rank, worldSize: communicator.size, step: step)
        let stats = try reducer.allReduce(buffers: buffers)

        // 3. Global loss, throughput and vision-cache figures: one small all-reduce.
        let cacheAfter = model.visionFeatureCache?.statistics ?? VisionFeatureCache.Statistics()
        let totals = try communicator.allReduce(
            [localLossSum, Double(localExamples), Double(localTokens),
             Double(cacheAfter.hits - cacheBefore.hits), Double(cacheAfter.misses - cacheBefore.misses)],
            operation: .sum)
        let loss = totals[0] / max(1, totals[1])
        var visionCache: VisionCacheCounts?
        if model.visionFeatureCache != nil {
            let counts = VisionCacheCounts(hits: Int(totals[3]), misses: Int(totals[4]))
            visionCacheTotals.hits += counts.hits
            visionCacheTotals.misses += counts.misses
            visionCache = counts
        }

        // 4. Clip, then update with the scheduled learning rate. The reduced gradients are
        // bit-identical on every rank, so every rank takes the same decision here without
        // communicating: a step whose gradients are not finite (a NaN or an f32 overflow that
        // survived the fallback) is skipped everywhere, and so is one the reducer skipped.
        let norm = clipByGlobalNorm(buffers, maxNorm: settings.maxGradNorm > 0 ? settings.maxGradNorm : nil)
        let rate = schedule.rate(atStep: step)
        let skipped = stats.skipped || !norm.isFinite
        if !skipped {
            optimizer.beginStep()
            for (name, gradient) in zip(names, buffers) {
                model.parameters.withMutableValues(name) { values in
                    optimizer.update(name: name, parameter: values, gradient: UnsafeBufferPointer(gradient), rate: rate)
                }
            }
            faults?.perturbAfterUpdate(parameters: model.parameters, rank: communicator.rank, step: step)
        } else if isRoot {
            let reason = stats.skipped ? "fp16 overflow with --on-overflow skip-step" : "gradient norm \(norm)"
            log("[train] step \(step): non-finite gradients (\(reason)); the update is skipped on every rank")
        }
        if !loss.isFinite {
            throw TrainingError.nonFiniteLoss(step: step, loss: loss)
        }

        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return StepReport(
            step: step, totalSteps: state.totalSteps, loss: loss, learningRate: rate, gradientNorm: norm,
            examplesPerSecond: totals[1] / seconds, tokensPerSecond: totals[2] / seconds, stepSeconds: seconds,
            bytesSent: stats.bytesSent, compressionRatio: stats.ratio, fallbackBuckets: stats.fallbackBuckets,
            skipped: skipped, etaSeconds: 0, visionCache: visionCache)
    }

    // MARK: - Replicas, validation, checkpoints

    private func verifyReplicas(step: Int) throws {
        let names = model.parameters.trainableNames
        var tensors: [Tensor] = []
        for name in names { tensors.append(model.parameters.values(name)) }
        let hash = ReplicaCheck.hash(tensors.map { tensor in tensor.withUnsafeBufferPointer { $0 } })
        do {
            try withExtendedLifetime(tensors) {
                try ReplicaCheck.verify(hash: hash, communicator: communicator)
            }
        } catch CommError.replicaMismatch(let hashes, _) {
            throw TrainingError.replicasDiverged(step: step, hashes: hashes)
        }
    }

    /// Runs rank 0's validation while the other ranks wait in a sleeping all-reduce, which
    /// also tells them whether it failed (every rank then stops) and whether the mAP@0.5 is the
    /// best so far (every rank then takes part in saving the `best` checkpoint). Returns the
    /// outcome on rank 0 and nil elsewhere.
    private func validate(step: Int) throws -> (newBest: Bool, outcome: ValidationOutcome?) {
        var failure: Error?
        var newBest = false
        var outcome: ValidationOutcome?
        if isRoot, let validation {
            do {
                let start = Date()
                let result = try validation(model, step)
                let values = result.metrics
                let seconds = Date().timeIntervalSince(start)
                let map50 = values["val/map50"] ?? .nan
                log(String(format: "[val] step %d | map50 %.4f | map50_95 %.4f | runaway %.3f | parse failures %.3f | %.1fs",
                           step, map50, values["val/map50_95"] ?? .nan, values["val/runaway_rate"] ?? .nan,
                           values["val/parse_failure_rate"] ?? .nan, seconds))
                if map50.isFinite && map50 > (state.bestMAP50 ?? -1) {
                    state.bestMAP50 = map50
                    state.bestStep = step
                    newBest = true
                }
                outcome = result
            } catch {
                failure = error
                log("[val] step \(step) failed: \(error)")
            }
        }
        let flags = try communicator.allReduce([failure == nil ? 0 : 1, newBest ? 1 : 0], operation: .max)
        if let failure { throw failure }
        if flags[0] > 0 { throw TrainingError.validationFailedOnRoot(step: step) }
        return (flags[1] > 0, outcome)
    }

    /// Regenerates the report on rank 0 after the step's metrics line is written. A report that
    /// cannot be written is logged and training goes on: it holds no state the run needs.
    private func publishReport(_ outcome: ValidationOutcome?, step: Int) {
        guard let outcome else { return }
        do {
            try outcome.publish()
        } catch {
            log("[val] step \(step): report.html was not updated: \(error)")
        }
    }

    private func save(step: Int) throws {
        try verifyReplicas(step: step)
        lastSavedStep = step
        var failure: Error?
        if isRoot {
            do {
                var written = state
                written.worldSize = communicator.size
                written.dataCursor = try data.encodedCursor()
                let folder = try store.save(step: step) { folder in
                    try TrainingCheckpoint.write(
                        folder: folder, parameters: model.parameters, optimizer: optimizer, state: written, settings: settings)
                    faults?.delayCheckpoint(step: step, folder: folder)
                }
                newestFiniteCheckpoint = step
                if state.bestStep == step { try store.setPointer("best", to: step) }
                store.prune(keepLast: settings.keepLast, protectedSteps: newestFiniteCheckpoint.map { [$0] } ?? [])
                log("[checkpoint] step \(step) written to \(folder)")
            } catch {
                failure = error
                log("[checkpoint] step \(step) failed: \(error)")
            }
        }
        // Every rank learns whether rank 0 could write, so that all stop together on failure.
        let failed = try communicator.allReduce([failure == nil ? 0 : 1], operation: .max)[0] > 0
        if let failure { throw failure }
        if failed { throw TrainingError.checkpointFailedOnRoot(step: step) }
    }
}

/// Errors that stop a training run.
public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, loss: Double)
    case checkpointFailedOnRoot(step: Int)
    case validationFailedOnRoot(step: Int)
    /// The parameter hashes of the ranks differ after `step`; `hashes[r]` is rank r's.
    case replicasDiverged(step: Int, hashes: [UInt64])

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step, let loss):
            return "the loss became \(loss) at step \(step); lower --lr or set --max-grad-norm, and resume from the last checkpoint"
        case .checkpointFailedOnRoot(let step):
            return "rank 0 could not write the checkpoint of step \(step) (see its log); the previous checkpoint is intact"
        case .validationFailedOnRoot(let step):
            return "rank 0's validation at step \(step) failed (see its log); resume from the last checkpoint after fixing it"
        case .replicasDiverged(let step, let hashes):
            let listed = hashes.enumerated().map { "rank \($0.offset) " + String(format: "%016llx", $0.element) }.joined(separator: ", ")
            return "the replicas diverged after step \(step): \(Self.describeDivergence(hashes)) (parameter hashes: \(listed)). "
                + "Every rank must hold bit-identical parameters; check that all ranks run the same binary on the same "
                + "kind of CPU, then resume from the last checkpoint with --resume auto"
        }
    }

    /// Returns a phrase naming the ranks outside the largest group of equal hashes, or stating
    /// that no majority exists.
    static func describeDivergence(_ hashes: [UInt64]) -> String {
        var groups: [UInt64: [Int]] = [:]
        for (rank, hash) in hashes.enumerated() { groups[hash, default: []].append(rank) }
        let sizes = groups.values.map(\.count).sorted(by: >)
        func ranks(_ list: [Int]) -> String {
            (list.count == 1 ? "rank " : "ranks ") + list.map(String.init).joined(separator: ", ")
        }
        guard sizes.count > 1, sizes[0] > sizes[1] else {
            return "\(ranks(hashes.indices.map { $0 })) hold different parameters and no majority shows which diverged"
        }
        let majority = groups.values.first { $0.count == sizes[0] }!
        let diverged = hashes.indices.filter { !majority.contains($0) }
        return "\(ranks(diverged)) hold\(diverged.count == 1 ? "s" : "") parameters different from the "
            + "\(majority.count) agreeing \(majority.count == 1 ? "rank" : "ranks") (\(ranks(majority)))"
    }
}
