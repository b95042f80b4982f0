import Checkpoint
import Comm
import Dataset
import Foundation
import PaliGemmaModel
import TensorCore
import Training

/// `palitrain train`: data-parallel fine-tuning under mpirun, or in one process without it.
struct TrainCommand: Command {
    static let name = "train"
    static let summary = "fine-tune PaliGemma on a detection dataset (run under mpirun for several ranks)"
    static let options = TrainOptions.specs

    static func run(_ arguments: ParsedArguments) throws {
        // 1. Settings: --config under the flags.
        var arguments = arguments
        if let configPath = arguments.string("config") {
            try TrainOptions.applyConfigFile(configPath, to: &arguments)
        }
        let settings = try TrainOptions.settings(from: arguments)
        let faults = try TrainOptions.faultPlan(from: arguments)
        StopSignal.install()

        // 2. Ranks. Waits sleep between polls and give up after --comm-timeout seconds.
        var communicator = try MPICommunicator.initialize(limits: CommLimits(waitTimeout: settings.commTimeout))
        if let rank = faults?.corruptFrameRank, rank == communicator.rank {
            // The only point-to-point messages of a run are gradient frames, so message 1 is
            // this rank's first frame of the first step.
            communicator = FaultInjectingCommunicator(base: communicator, fault: .corruptPayload, atMessage: 1)
        }
        let isRoot = communicator.rank == 0
        let log: (String) -> Void = { line in
            if isRoot {
                print(line)
                fflush(nil)
            }
        }
        do {
            try train(settings, faults: faults, communicator: communicator, log: log)
            communicator.finalize()
        } catch {
            // Every rank reports its own failure; a rank whose peers are gone ends the job.
            FileHandle.standardError.write(Data("palitrain train: rank \(communicator.rank): error: \(error)\n".utf8))
            if communicator.size > 1 { communicator.abort(code: 1) }
            throw ExitCode(status: 1)
        }
    }

    private static func train(
        _ settings: TrainSettings, faults: FaultPlan?, communicator: any Communicator, log: @escaping (String) -> Void
    ) throws {
        let isRoot = communicator.rank == 0
        let threads = settings.threads > 0
            ? settings.threads
            : max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, communicator.localSize))
        Threading.setThreadCount(threads)

        // 3. Shapes of the global batch over ranks and micro-steps.
        let shares = communicator.size * settings.gradientAccumulation
        guard settings.globalBatchSize % shares == 0 else {
            throw UsageError(
                "--batch-size \(settings.globalBatchSize) must be a multiple of ranks x --grad-accum = "
                    + "\(communicator.size) x \(settings.gradientAccumulation) = \(shares), so every micro-batch has the same size")
        }

        // 4. Resume point and model weights.
        let store = CheckpointStore(outputDirectory: settings.outputDirectory)
        let resumeFolder = try resolveResume(settings.resume, store: store)
        if settings.resume == "none", let existing = store.latestComplete() {
            // Starting over would overwrite the step folders and metrics of the earlier run.
            throw UsageError(
                "--output-dir '\(settings.outputDirectory)' already holds checkpoints (latest: step \(existing)); "
                    + "pass --resume auto to continue that run, or choose a new --output-dir")
        }
        let weightsPath = resumeFolder.map { ($0 as NSString).appendingPathComponent("params.npz") } ?? settings.checkpoint
        let parameters = try ParameterStore(npz: NPZReader(path: weightsPath), trainable: settings.trainable)
        // --compute bf16: frozen weights enter their products as bf16. Ranks on one machine
        // share the budget for bf16 copies of weights the checkpoint does not store as bf16.
        parameters.compute = ComputePrecision(rawValue: settings.compute) ?? .f32
        parameters.bf16CacheLimitBytes /= max(1, communicator.localSize)
        // Ranks that share a machine drop the checkpoint's pages after each layer, so that memory
        // accounting that adds up per-process RSS (as Slurm can) does not count the weights per rank.
        parameters.releasesMappedPages = communicator.localSize > 1
        let model = PaliGemma(parameters: parameters)
        let config = parameters.config
        // Rematerialise when the stored activations of one micro-batch would take more than
        // this rank's share of 4 GiB (pt-224 at 8 examples of 128 text tokens: about 10 GB).
        let microBatch = max(1, settings.globalBatchSize / max(1, communicator.size * settings.gradientAccumulation))
        let activationBytes = model.storedActivationBytes(tokens: microBatch * (config.vision.numTokens + settings.maxLength))
        model.rematerialize = activationBytes > (4 << 30) / max(1, communicator.localSize)
        let visionCache = enableVisionCache(settings, model: model, localRanks: communicator.localSize)

        // 5. Length of the run is known once the data is; read the resume state first.
        let kind: OptimizerKind = settings.optimizer == "adamw"
            ? .adamW(beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, weightDecay: settings.weightDecay)
            : .sgd(momentum: settings.momentum)
        var optimizer = Optimizer(kind: kind)
        var resumed: TrainState?
        if let resumeFolder {
            let saved = try TrainingCheckpoint.readState(folder: resumeFolder, optimizer: &optimizer)
            try checkResumable(saved, folder: resumeFolder, settings: settings)
            resumed = saved
        }

        // 6. Tokenizer and data: every rank reads the records, rank 0 reports the problems.
        let tokenizer = try Tokenizer(modelPath: settings.tokenizer)
        let data = try TrainingDataSetup(
            settings: settings, tokenizer: tokenizer, imageSize: config.vision.imageSize,
            rank: communicator.rank, worldSize: communicator.size, startStep: resumed?.step ?? 0,
            cursor: resumed?.dataCursor, log: log)

        let totalSteps = settings.maxSteps ?? max(1, Int((settings.epochs ?? 1) * Double(data.trainExampleCount) / Double(settings.globalBatchSize)))
        if let faults {
            try faults.validate(worldSize: communicator.size, totalSteps: totalSteps)
            log("[fault] planned for this fault-injection test: \(faults.faults.map(\.description).joined(separator: ", "))")
        }
        let schedule = LearningRateSchedule.colab(baseRate: settings.learningRate, trainSteps: totalSteps, warmupFraction: settings.warmupFraction)
        var state = resumed ?? TrainState(
            step: 0, totalSteps: totalSteps, globalBatchSize: settings.globalBatchSize, seed: settings.seed, worldSize: communicator.size)
        if let resumeFolder {
            log("[resume] from \(resumeFolder) at step \(state.step) (written by \(state.worldSize) rank\(state.worldSize == 1 ? "" : "s"))")
            state.totalSteps = totalSteps
        }

        // 7. Output folder, resolved settings and the start-up table.
        if isRoot {
            try FileManager.default.createDirectory(atPath: settings.outputDirectory, withIntermediateDirectories: true)
            try writeResolvedConfig(settings, config: config, worldSize: communicator.size, totalSteps: totalSteps)
            printSettings(settings, config: config, parameters: parameters, model: model, worldSize: communicator.size, threads: threads,
                          totalSteps: totalSteps, trainExamples: data.trainExampleCount, visionCache: visionCache, log: log)
        }
        try communicator.barrier()

        // 8. The loop.
        let reducer = try GradientAllReducer(
            communicator: communicator,
            compression: GradientCompression(rawValue: settings.gradientCompression)!,
            onOverflow: OverflowPolicy(rawValue: settings.onOverflow)!,
            log: isRoot ? standardOutputLog : nil)
        let metricsPath = (settings.outputDirectory as NSString).appendingPathComponent("metrics.jsonl")
        if isRoot {
            // Lines after the start step come from a run that stopped before checkpointing them;
            // this run logs those steps again.
            let dropped = try MetricsLog.truncate(path: metricsPath, afterStep: state.step)
            if dropped > 0 {
                log("[metrics] removed \(dropped) line\(dropped == 1 ? "" : "s") after step \(state.step) from \(metricsPath): "
                    + "steps an earlier run logged past its last checkpoint, or a line torn by a crash")
            }
        }
        let metrics = isRoot ? try MetricsLog(path: metricsPath) : nil
        let trainer = Trainer(
            settings: settings, model: model, communicator: communicator, data: data.source, reducer: reducer,
            optimizer: optimizer, state: state, schedule: schedule, metrics: metrics,
            validation: isRoot ? try data.validation(tokenizer: tokenizer, settings: settings, log: log) : nil, faults: faults, log: log)
        let finished = try trainer.run()
        log(finished
            ? "[train] done: \(totalSteps) steps; checkpoints in \(store.root)"
            : "[train] stopped at step \(trainer.state.step) of \(totalSteps); resume with --resume auto")
    }

    /// Returns the checkpoint folder to resume from, or nil to start from --checkpoint.
    static func resolveResume(_ value: String, store: CheckpointStore) throws -> String? {
        switch value {
        case "none":
            return nil
        case "auto":
            return store.latestComplete().map(store.path(step:))
        default:
            let marker = (value as NSString).appendingPathComponent(CheckpointStore.completionMarker)
            guard FileManager.default.fileExists(atPath: marker) else {
                throw UsageError("--resume '\(value)' is not a complete checkpoint folder (no \(CheckpointStore.completionMarker) marker); pass a step_NNNNNNNN folder or 'auto'")
            }
            return value
        }
    }

    private static func checkResumable(_ state: TrainState, folder: String, settings: TrainSettings) throws {
        if state.globalBatchSize != settings.globalBatchSize {
            throw TrainingCheckpointError.incompatibleResume(
                path: folder, setting: "--batch-size", saved: "\(state.globalBatchSize)", current: "\(settings.globalBatchSize)")
        }
        if state.seed != settings.seed {
            throw TrainingCheckpointError.incompatibleResume(path: folder, setting: "--seed", saved: "\(state.seed)", current: "\(settings.seed)")
        }
    }
}
