import Foundation
import PaliGemmaModel
import TensorCore

/// The results of `palitrain bench`, as text or as one JSON object.
///
/// Per-step figures are rank 0's; with several ranks every rank runs the same shapes at the
/// same time, and examples/s and tokens/s count all ranks. Memory is reported per rank and
/// summed.
public struct BenchReport {
    /// What was benchmarked.
    public struct Setup {
        public var config: String
        public var batchSize: Int
        public var textLength: Int
        public var compute: ComputePrecision
        public var weightDType: DType
        public var rematerialize: Bool
        public var ranks: Int
        public var threads: Int
        /// Whether frozen weights mapped from a checkpoint give their pages back after each
        /// layer (`ParameterStore.releasesMappedPages`).
        public var releasesMappedPages: Bool

        public init(config: String, batchSize: Int, textLength: Int, compute: ComputePrecision, weightDType: DType,
                    rematerialize: Bool, ranks: Int, threads: Int, releasesMappedPages: Bool = true) {
            self.config = config
            self.batchSize = batchSize
            self.textLength = textLength
            self.compute = compute
            self.weightDType = weightDType
            self.rematerialize = rematerialize
            self.ranks = ranks
            self.threads = threads
            self.releasesMappedPages = releasesMappedPages
        }
    }

    public var setup: Setup
    public var model: PaliGemmaConfig
    public var training: TrainingBench.Result?
    public var decode: DecodeBench.Result?
    public var precision: PrecisionComparison?
    /// Steps with cached vision features (`--vision-cache`), reported apart from the headline.
    public var visionCache: VisionCacheBench.Outcome?
    public var memory = ProcessMemory()
    /// Per rank: peak RSS, anonymous and file-backed resident MiB.
    public var rankMemory: [(peak: Double, anonymous: Double, file: Double)] = []
    public var load: (before: MachineLoad, after: MachineLoad)?
    /// Memory of rank 0's machine before the run, at the sampled peak, and at the end (before
    /// any rank exits).
    public var machineMemory: (before: MachineMemory, peak: MachineMemory, after: MachineMemory)?

    public init(setup: Setup, model: PaliGemmaConfig) {
        self.setup = setup
        self.model = model
    }

    // MARK: - Derived figures

    /// Tokens per example the decoder reads: image tokens plus text.
    var tokensPerExample: Int { model.vision.numTokens + setup.textLength }

    var stepMedian: Double { median(training?.stepSeconds ?? []) }
    /// The best of the replays' rates: the machine's rate for these products when nothing else
    /// slows them, so a replay disturbed by other work does not inflate the MFU.
    var gemmRate: Double { training?.gemmRates.max() ?? 0 }
    var achievedRate: Double { (training?.stepFlops ?? 0) / stepMedian }

    /// Median seconds of each phase over the timed steps.
    var phaseMedians: [(String, Double)] {
        let steps = training?.phaseSeconds ?? []
        return StepPhase.all.compactMap { phase in
            let values = steps.map { $0[phase] ?? 0 }
            return values.allSatisfy({ $0 == 0 }) ? nil : (phase, median(values))
        }
    }

    // MARK: - Text

    public func text() -> String {
        var lines: [String] = []
        let s = setup
        let kind = decode != nil ? "greedy decoding" : "training"
        lines.append("bench: \(s.config), \(kind), batch \(s.batchSize) per rank, \(s.textLength) text tokens + "
            + "\(model.vision.numTokens) image tokens, compute \(s.compute.rawValue) (bf16 products: \(BF16Backend.current.rawValue)), "
            + "weights \(s.weightDType), remat \(s.rematerialize ? "on" : "off"), "
            + "mapped weight pages \(s.releasesMappedPages ? "released after each layer" : "kept"), "
            + "\(s.ranks) rank\(s.ranks == 1 ? "" : "s") x \(s.threads) thread\(s.threads == 1 ? "" : "s")")
        if let load {
            lines.append(String(format: "machine: load average %@ before, %@ after; other processes used %.0f%% of all CPU time during the run",
                                format(load.before.loadAverage), format(load.after.loadAverage),
                                100 * load.after.foreignCPUFraction(since: load.before)))
        }
        if let training {
            let steps = training.stepSeconds
            lines.append(String(format: "step: median %.0f ms (min %.0f, max %.0f) over %d steps; loss %.4f",
                                1000 * stepMedian, 1000 * (steps.min() ?? 0), 1000 * (steps.max() ?? 0), steps.count,
                                training.losses.last ?? .nan))
            lines.append(String(format: "throughput: %.2f examples/s, %.0f tokens/s (all ranks)",
                                examplesPerSecond, tokensPerSecond))
            lines.append(String(format: "compute: %.1f GFLOP of matrix products per step, %.1f GFLOP/s achieved; "
                                + "the same products alone run at %.1f GFLOP/s in this run (best replay): %.0f%% of it (MFU)",
                                training.stepFlops / 1e9, achievedRate / 1e9, gemmRate / 1e9, 100 * achievedRate / gemmRate))
            let breakdown = phaseMedians.map { String(format: "%@ %.0f", $0.0, 1000 * $0.1) }.joined(separator: ", ")
            lines.append("breakdown (median ms per step): \(breakdown)")
            lines.append(String(format: "CPU time of this process: median %.0f ms per step (%.2f cores busy)",
                                1000 * median(training.cpuSeconds), median(training.cpuSeconds) / stepMedian))
            let shapes = training.shapeRates.prefix(6).map { entry in
                String(format: "%@ x%d: %.0f GFLOP/s", entry.shape.description, entry.count, entry.flopsPerSecond / 1e9)
            }
            lines.append("largest products (m x k x n, replayed alone): " + shapes.joined(separator: "; "))
        }
        if let decode {
            lines.append(String(format: "decode: median %.0f ms for %d new tokens per example (prefill %.0f ms, %.1f ms per later token)",
                                1000 * median(decode.totalSeconds), decode.newTokens, 1000 * median(decode.prefillSeconds),
                                1000 * perTokenSeconds(decode)))
        }
        if let precision {
            lines.append(String(format: "bf16 vs f32 (same weights and batch): loss %.6f vs %.6f (relative difference %.2e); "
                                + "gradients: relative L2 error %.2e (worst parameter %.2e, %@), cosine %.6f",
                                precision.lossBF16, precision.lossF32, relativeLossDifference(precision),
                                precision.gradientRelativeError, precision.worstParameterError, precision.worstParameter,
                                precision.gradientCosine))
        }
        lines.append(contentsOf: visionCacheLines())
        if let machine = machineMemory {
            lines.append(String(format: "machine memory (MemTotal - MemAvailable): %.0f MiB in use before the run, %.0f MiB at the "
                                + "sampled peak (page cache %.0f MiB then), %.0f MiB at the end (page cache %.0f MiB), of %.0f MiB",
                                machine.before.usedMiB, machine.peak.usedMiB, machine.peak.pageCacheMiB, machine.after.usedMiB,
                                machine.after.pageCacheMiB, machine.after.totalMiB))
        }
        let ranks = rankMemory.map { String(format: "%.0f", $0.peak) }.joined(separator: " + ")
        lines.append(String(format: "memory: peak RSS %.0f MiB on rank 0 (now %.0f MiB anonymous, %.0f MiB file-backed)%@",
                            memory.peakResidentMiB, memory.anonymousMiB, memory.fileMiB,
                            rankMemory.count > 1 ? String(format: "; all ranks %@ = %.0f MiB", ranks, peakSum) : ""))
        return lines.joined(separator: "\n")
    }

    // MARK: - JSON

    public func json() -> String {
        var object: [String: Any] = [
            "config": setup.config, "mode": decode != nil ? "decode" : "train", "batch_size": setup.batchSize,
            "text_len": setup.textLength, "image_tokens": model.vision.numTokens, "compute": setup.compute.rawValue,
            "bf16_backend": BF16Backend.current.rawValue, "weight_dtype": setup.weightDType.rawValue,
            "remat": setup.rematerialize, "ranks": setup.ranks, "threads": setup.threads,
            "release_mapped_pages": setup.releasesMappedPages,
            "peak_rss_mb": memory.peakResidentMiB, "rss_anon_mb": memory.anonymousMiB, "rss_file_mb": memory.fileMiB,
            "rank_peak_rss_mb": rankMemory.map(\.peak), "rank_rss_anon_mb": rankMemory.map(\.anonymous),
            "rank_rss_file_mb": rankMemory.map(\.file), "peak_rss_mb_sum": peakSum,
        ]
        if let machine = machineMemory {
            object["machine_mem_total_mb"] = machine.after.totalMiB
            object["machine_mem_used_mb_before"] = machine.before.usedMiB
            object["machine_mem_used_mb_peak"] = machine.peak.usedMiB
            object["machine_page_cache_mb_peak"] = machine.peak.pageCacheMiB
            object["machine_mem_used_mb_after"] = machine.after.usedMiB
            object["machine_page_cache_mb_after"] = machine.after.pageCacheMiB
        }
        if let load {
            object["load_average_before"] = load.before.loadAverage
            object["load_average_after"] = load.after.loadAverage
            object["foreign_cpu_fraction"] = load.after.foreignCPUFraction(since: load.before)
        }
        if let training {
            object["step_ms_median"] = 1000 * stepMedian
            object["step_ms"] = training.stepSeconds.map { 1000 * $0 }
            object["loss"] = Double(training.losses.last ?? .nan)
            object["examples_per_s"] = examplesPerSecond
            object["tokens_per_s"] = tokensPerSecond
            object["step_gflop"] = training.stepFlops / 1e9
            object["achieved_gflops"] = achievedRate / 1e9
            object["gemm_gflops"] = gemmRate / 1e9
            object["gemm_gflops_replays"] = training.gemmRates.map { $0 / 1e9 }
            object["mfu"] = achievedRate / gemmRate
            object["breakdown_ms"] = Dictionary(uniqueKeysWithValues: phaseMedians.map { ($0.0, 1000 * $0.1) })
            object["allreduce_bytes_sent"] = training.allReduce.bytesSent
            object["cpu_ms_median"] = 1000 * median(training.cpuSeconds)
            object["gemm_shapes"] = training.shapeRates.map { entry -> [String: Any] in
                ["shape": entry.shape.description, "count": entry.count,
                 "gflop": entry.shape.flops * Double(entry.count) / 1e9, "gflops": entry.flopsPerSecond / 1e9]
            }
        }
        if let decode {
            object["decode_ms_median"] = 1000 * median(decode.totalSeconds)
            object["decode_ms"] = decode.totalSeconds.map { 1000 * $0 }
            object["prefill_ms_median"] = 1000 * median(decode.prefillSeconds)
            object["per_token_ms"] = 1000 * perTokenSeconds(decode)
            object["new_tokens"] = decode.newTokens
        }
        if let precision {
            object["precision_vs_f32"] = [
                "loss_f32": Double(precision.lossF32), "loss_bf16": Double(precision.lossBF16),
                "loss_rel_diff": relativeLossDifference(precision), "grad_rel_l2": precision.gradientRelativeError,
                "grad_worst_param_rel_l2": precision.worstParameterError, "grad_worst_param": precision.worstParameter,
                "grad_cosine": precision.gradientCosine,
            ]
        }
        if let visionCache { object["vision_cache"] = visionCacheJSON(visionCache) }
        let sanitized = object.mapValues(Self.finite)
        guard let data = try? JSONSerialization.data(withJSONObject: sanitized, options: [.sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: - Vision-feature cache

    private func visionCacheLines() -> [String] {
        switch visionCache {
        case nil:
            return []
        case .unavailable(let reason):
            return ["vision cache: not measured: \(reason)"]
        case .measured(let result):
            let steps = result.training.stepSeconds
            let cached = median(steps)
            let vision = median(result.training.phaseSeconds.map { $0[StepPhase.vision] ?? 0 })
            var lines = [String(format: "vision cache (%@ features, every image cached): step median %.0f ms (min %.0f, max %.0f) "
                                + "over %d steps, vision phase %.0f ms: %.1f%% of the step without the cache above; "
                                + "lookups %d hits, %d misses",
                                result.dtype.rawValue, 1000 * cached, 1000 * (steps.min() ?? 0), 1000 * (steps.max() ?? 0),
                                steps.count, 1000 * vision, 100 * cached / stepMedian,
                                result.statistics.hits, result.statistics.misses)]
            let comparisons = result.precision.map { p in
                String(format: "%@ loss relative difference %.2e, gradient relative L2 error %.2e (worst parameter %.2e, %@)",
                       p.dtype.rawValue, p.lossRelativeDifference, p.gradients.relativeError,
                       p.gradients.worstParameterError, p.gradients.worstParameter.isEmpty ? "none" : p.gradients.worstParameter)
            }
            lines.append("cached vs f32 features (same weights and batch): " + comparisons.joined(separator: "; "))
            return lines
        }
    }

    private func visionCacheJSON(_ outcome: VisionCacheBench.Outcome) -> [String: Any] {
        switch outcome {
        case .unavailable(let reason):
            return ["unavailable": reason]
        case .measured(let result):
            return [
                "dtype": result.dtype.rawValue,
                "step_ms_median": 1000 * median(result.training.stepSeconds),
                "step_ms": result.training.stepSeconds.map { 1000 * $0 },
                "vision_ms_median": 1000 * median(result.training.phaseSeconds.map { $0[StepPhase.vision] ?? 0 }),
                "hits": result.statistics.hits, "misses": result.statistics.misses,
                "precision_vs_f32_features": result.precision.map { p -> [String: Any] in
                    ["dtype": p.dtype.rawValue, "loss_f32": Double(p.lossReference), "loss": Double(p.loss),
                     "loss_rel_diff": p.lossRelativeDifference, "grad_rel_l2": p.gradients.relativeError,
                     "grad_worst_param_rel_l2": p.gradients.worstParameterError, "grad_worst_param": p.gradients.worstParameter]
                },
            ]
        }
    }

    // MARK: - Helpers

    var examplesPerSecond: Double { Double(setup.batchSize * setup.ranks) / stepMedian }
    var tokensPerSecond: Double { Double(setup.batchSize * setup.ranks * tokensPerExample) / stepMedian }
    var peakSum: Double { rankMemory.reduce(0) { $0 + $1.peak } }

    private func perTokenSeconds(_ decode: DecodeBench.Result) -> Double {
        let later = zip(decode.totalSeconds, decode.prefillSeconds).map { $0 - $1 }
        return median(later) / Double(max(1, decode.newTokens - 1))
    }

    private func relativeLossDifference(_ p: PrecisionComparison) -> Double {
        Double(abs(p.lossBF16 - p.lossF32)) / max(1e-30, Double(abs(p.lossF32)))
    }

    private func format(_ values: [Double]) -> String {
        values.map { String(format: "%.2f", $0) }.joined(separator: " ")
    }

    /// JSON has no NaN or infinity: such numbers become null.
    private static func finite(_ value: Any) -> Any {
        if let number = value as? Double, !number.isFinite { return NSNull() }
        if let list = value as? [Double] { return list.map { $0.isFinite ? $0 as Any : NSNull() } }
        if let dictionary = value as? [String: Any] { return dictionary.mapValues(finite) }
        if let list = value as? [[String: Any]] { return list.map { $0.mapValues(finite) } }
        return value
    }
}
