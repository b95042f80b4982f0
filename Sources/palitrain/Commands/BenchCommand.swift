import Comm
import Foundation
import PaliGemmaModel
import TensorCore
import Training

/// `palitrain bench`: times training steps (or greedy decoding) on synthetic inputs.
///
/// Reports the median step time, throughput, the flops the step's matrix products perform, the
/// rate the same products reach when replayed alone in the same run (so MFU is against this
/// machine as it is during the run), the peak memory, and a time breakdown by layer kind.
/// Under mpirun every rank runs the benchmark on its own batch and the gradients are
/// all-reduced as in training; rank 0 prints.
struct BenchCommand: Command {
    static let name = "bench"
    static let summary = "time training steps or greedy decoding on synthetic inputs (breakdown, GEMM rate, MFU, memory)"
    static let options: [OptionSpec] = [
        .value("config", "NAME|FILE.npz", default: "bench-small", help: "a model variant (bench-small, pt-224, ...) with random weights, or a checkpoint"),
        .value("batch-size", "N", default: "4", help: "examples per step on each rank"),
        .value("text-len", "N", default: "32", help: "text tokens the model reads per example (after the image tokens)"),
        .value("threads", "N", default: "0", help: "kernel threads per rank; 0 = the cores available to each rank"),
        .value("compute", "f32|bf16", default: "f32", help: "precision of the matrix products with frozen weights"),
        .flag("decode", help: "time greedy decoding with the key/value cache instead of training"),
        .value("new-tokens", "N", default: "16", help: "tokens generated per example with --decode"),
        .value("steps", "N", default: "5", help: "timed steps (or decodes); the median is reported"),
        .value("warmup", "N", default: "1", help: "untimed steps first"),
        .value("dtype", "f32|f16|bf16", default: "f32", help: "storage of generated weights (frozen ones stay in it)"),
        .value("trainable", "REGEX", default: "^llm/layers/attn/", help: "parameters that train"),
        .value("remat", "auto|on|off", default: "auto", help: "rematerialise blocks in the backward pass (auto: as train decides, by activation memory)"),
        .value("grad-compression", "MODE", default: "zstd-fp16", help: "gradient all-reduce: zstd-fp16, fp16 or none"),
        .flag("no-precision-check", help: "with --compute bf16, skip the comparison against an f32 step"),
        .flag("vision-cache", help: "also time steps whose vision features come from the feature cache (f16), reported "
            + "apart from the headline step, and compare cached features with f32 ones"),
        .value("release-mapped-pages", "auto|on|off", default: "auto",
               help: "release the pages of a memory-mapped checkpoint after each layer (auto: when several ranks share this machine)"),
        .value("seed", "N", default: "0", help: "seed of the random weights and inputs"),
        .flag("json", help: "print one JSON object instead of the text report"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let settings = try BenchSettings(arguments)
        let communicator = try MPICommunicator.initialize(limits: CommLimits(waitTimeout: 3600))
        do {
            try BenchRun(settings: settings, communicator: communicator).run()
        } catch {
            writeError("palitrain bench: rank \(communicator.rank): error: \(error)")
            if communicator.size > 1 { communicator.abort(code: 1) }
            throw ExitCode(status: 1)
        }
        communicator.finalize()
    }
}

/// Returns the dtype the frozen weights are kept in: the checkpoint's, or `--dtype` for generated
/// weights. Returns f32 when every parameter trains.
private func storedDType(_ parameters: ParameterStore) -> DType {
    parameters.names.first { !parameters.isTrainable($0) }.map { parameters.dtype(of: $0) } ?? .f32
}

/// The options of one benchmark, checked.
struct BenchSettings {
    let config: String
    let batchSize: Int
    let textLength: Int
    let threads: Int
    let compute: ComputePrecision
    let decode: Bool
    let newTokens: Int
    let steps: Int
    let warmup: Int
    let dtype: DType
    let trainable: String
    let remat: String
    let compression: GradientCompression
    let precisionCheck: Bool
    let visionCache: Bool
    let releaseMappedPages: String
    let seed: UInt64
    let json: Bool

    init(_ arguments: ParsedArguments) throws {
        config = arguments.string("config") ?? "bench-small"
        batchSize = try arguments.int("batch-size") ?? 4
        textLength = try arguments.int("text-len") ?? 32
        threads = try arguments.int("threads") ?? 0
        compute = ComputePrecision(rawValue: try arguments.choice("compute", ["f32", "bf16"]) ?? "f32")!
        decode = arguments.flag("decode")
        newTokens = try arguments.int("new-tokens") ?? 16
        steps = try arguments.int("steps") ?? 5
        warmup = try arguments.int("warmup") ?? 1
        dtype = DType(rawValue: try arguments.choice("dtype", ["f32", "f16", "bf16"]) ?? "f32")!
        trainable = arguments.string("trainable") ?? "^llm/layers/attn/"
        _ = try compileRegex(trainable, option: "trainable")
        remat = try arguments.choice("remat", ["auto", "on", "off"]) ?? "auto"
        compression = GradientCompression(
            rawValue: try arguments.choice("grad-compression", GradientCompression.allCases.map(\.rawValue)) ?? "zstd-fp16")!
        precisionCheck = !arguments.flag("no-precision-check")
        visionCache = arguments.flag("vision-cache")
        releaseMappedPages = try arguments.choice("release-mapped-pages", ["auto", "on", "off"]) ?? "auto"
        guard let seed = UInt64(arguments.string("seed") ?? "0") else {
            throw UsageError("option '--seed' expects a non-negative integer, found '\(arguments.string("seed") ?? "")'")
        }
        self.seed = seed
        json = arguments.flag("json")
        for (name, value, minimum) in [("batch-size", batchSize, 1), ("text-len", textLength, 2), ("threads", threads, 0),
                                       ("new-tokens", newTokens, 1), ("steps", steps, 1), ("warmup", warmup, 0)] where value < minimum {
            throw UsageError("option '--\(name)' must be at least \(minimum), found \(value)")
        }
    }
}

/// One benchmark on every rank; rank 0 reports.
struct BenchRun {
    let settings: BenchSettings
    let communicator: any Communicator

    func run() throws {
        let threads = settings.threads > 0
            ? settings.threads
            : max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, communicator.localSize))
        Threading.setThreadCount(threads)

        let loadBefore = MachineLoad.sample()
        let memoryBefore = MachineMemory.current()
        let memorySampler = communicator.rank == 0 ? MachineMemorySampler() : nil
        let parameters = try BenchInputs.parameters(
            config: settings.config, dtype: settings.dtype, trainable: settings.trainable, seed: settings.seed)
        // auto: only when ranks share the page cache. One process pays for the faults (16 to
        // 28 % of a pt-224 step, Docs/benchmarks.md) and gains only in RSS accounting.
        parameters.releasesMappedPages = settings.releaseMappedPages == "on"
            || (settings.releaseMappedPages == "auto" && communicator.localSize > 1)
        let model = PaliGemma(parameters: parameters)
        let config = parameters.config
        // auto: the trainer's rule, rematerialise when one micro-batch's stored activations
        // exceed this rank's share of 4 GiB.
        let activationBytes = model.storedActivationBytes(tokens: settings.batchSize * (config.vision.numTokens + settings.textLength))
        model.rematerialize = settings.remat == "on"
            || (settings.remat == "auto" && activationBytes > (4 << 30) / max(1, communicator.localSize))
        parameters.compute = settings.compute
        // Each local rank keeps its own bf16 copies; share the default budget between them.
        parameters.bf16CacheLimitBytes /= max(1, communicator.localSize)
        // Different data on each rank, as in data-parallel training.
        let seed = settings.seed &+ UInt64(communicator.rank)

        var report = BenchReport(
            setup: BenchReport.Setup(
                config: settings.config, batchSize: settings.batchSize, textLength: settings.textLength,
                compute: settings.compute, weightDType: storedDType(parameters), rematerialize: model.rematerialize,
                ranks: communicator.size, threads: threads, releasesMappedPages: parameters.releasesMappedPages),
            model: config)
        if settings.decode {
            let prompt = try BenchInputs.decodePrompt(config, batchSize: settings.batchSize, textLength: settings.textLength, seed: seed)
            report.decode = try DecodeBench.run(
                model, prompt, newTokens: settings.newTokens, warmup: settings.warmup, runs: settings.steps)
        } else {
            let batch = try BenchInputs.trainingBatch(config, batchSize: settings.batchSize, textLength: settings.textLength, seed: seed)
            if settings.compute == .bf16 && settings.precisionCheck {
                report.precision = try PrecisionComparison.measure(model, batch)
            }
            let reducer = try GradientAllReducer(communicator: communicator, compression: settings.compression, log: nil)
            var options = TrainingBench.Options()
            options.steps = settings.steps
            options.warmupSteps = settings.warmup
            report.training = try TrainingBench(model: model, batch: batch, reducer: reducer, options: options).run()
            if settings.visionCache {
                report.visionCache = try VisionCacheBench.measure(model, batch, reducer: reducer, options: options)
            }
        }
        report.load = (loadBefore, MachineLoad.sample())

        // Memory of every rank, and the slowest rank's median step.
        let memory = ProcessMemory.current()
        var slots = [Double](repeating: 0, count: 3 * communicator.size)
        slots[3 * communicator.rank] = memory.peakResidentMiB
        slots[3 * communicator.rank + 1] = memory.anonymousMiB
        slots[3 * communicator.rank + 2] = memory.fileMiB
        let gathered = try communicator.allReduce(slots, operation: .sum)
        report.rankMemory = (0..<communicator.size).map { (gathered[3 * $0], gathered[3 * $0 + 1], gathered[3 * $0 + 2]) }
        report.memory = memory
        if let memorySampler {
            // Every rank has reached the all-reduce above, so no rank has exited yet.
            report.machineMemory = (memoryBefore, memorySampler.stop(), MachineMemory.current())
        }
        if communicator.rank == 0 {
            print(settings.json ? report.json() : report.text())
            fflush(nil)
        }
    }
}
