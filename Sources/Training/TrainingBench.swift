import Comm
import Foundation
import PaliGemmaModel
import TensorCore

/// Times training steps on one batch and measures the GEMM rate of the same shapes.
///
/// Each step is the trainer's: forward and backward with logits on supervised rows, the
/// gradient all-reduce, and a plain SGD update. After the timed steps one more step is run with
/// `GEMMLog` recording, and the recorded products are replayed alone; the replay's rate is the
/// denominator of the MFU.
public final class TrainingBench {
    public struct Options: Sendable {
        public var warmupSteps = 1
        public var steps = 5
        /// Times the GEMM replay is repeated; its median rate is reported.
        public var gemmReplays = 3
        public var learningRate: Float = 0.03

        public init() {}
    }

    /// What one run measured.
    public struct Result {
        /// Wall time of each timed step.
        public var stepSeconds: [Double] = []
        /// Seconds per phase, one dictionary per timed step (phases of `StepPhase`).
        public var phaseSeconds: [[String: Double]] = []
        /// Loss of each timed step.
        public var losses: [Float] = []
        /// Flops of the products one step runs (recomputed attention scores excluded).
        public var stepFlops = 0.0
        /// Rate of the same products replayed alone, one value per replay.
        public var gemmRates: [Double] = []
        /// The recorded products of one step.
        public var gemmLog: [GEMMShape: Int] = [:]
        /// Each recorded shape, how often one step runs it, and its median replayed rate,
        /// largest share of the step's flops first.
        public var shapeRates: [(shape: GEMMShape, count: Int, flopsPerSecond: Double)] = []
        /// CPU time (user and system) of this process during each timed step.
        public var cpuSeconds: [Double] = []
        /// Bytes one rank sent per all-reduce, and the compression ratio.
        public var allReduce = AllReduceStats()
    }

    public let model: PaliGemma
    public let batch: PaliGemmaBatch
    public let reducer: GradientAllReducer
    public let options: Options
    private let names: [String]

    public init(model: PaliGemma, batch: PaliGemmaBatch, reducer: GradientAllReducer, options: Options) {
        self.model = model
        self.batch = batch
        self.reducer = reducer
        self.options = options
        self.names = model.parameters.trainableNames
    }

    public func run() throws -> Result {
        var result = Result()
        for _ in 0..<options.warmupSteps { _ = try step() }
        for _ in 0..<options.steps {
            PhaseTimer.start()
            let cpuStart = processCPUSeconds()
            let start = DispatchTime.now().uptimeNanoseconds
            let (loss, stats) = try step()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            result.cpuSeconds.append(processCPUSeconds() - cpuStart)
            var phases = PhaseTimer.stop()
            phases[StepPhase.other] = max(0, seconds - phases.values.reduce(0, +))
            result.stepSeconds.append(seconds)
            result.phaseSeconds.append(phases)
            result.losses.append(loss)
            result.allReduce = stats
        }

        // The products of one step, then the same products alone.
        GEMMLog.start()
        _ = try model.forwardBackward(batch, logits: .supervised)
        result.gemmLog = GEMMLog.stop()
        var shapeSeconds: [GEMMShape: [Double]] = [:]
        for _ in 0..<options.gemmReplays {
            let shapes = GEMMLog.replayByShape(result.gemmLog)
            let (flops, seconds) = (shapes.reduce(0) { $0 + $1.flops }, shapes.reduce(0) { $0 + $1.seconds })
            result.stepFlops = flops
            result.gemmRates.append(flops / seconds)
            for entry in shapes { shapeSeconds[entry.shape, default: []].append(entry.seconds) }
        }
        result.shapeRates = result.gemmLog.map { shape, count in
            (shape, count, shape.flops * Double(count) / median(shapeSeconds[shape] ?? []))
        }.sorted { $0.shape.flops * Double($0.count) > $1.shape.flops * Double($1.count) }
        return result
    }

    /// One trainer step; returns the loss and the all-reduce statistics.
    private func step() throws -> (Float, AllReduceStats) {
        let output = try model.forwardBackward(batch, logits: .supervised)
        let gradients = names.map { model.gradients[$0]! }
        let buffers = gradients.map { $0.withUnsafeMutableBufferPointer { $0 } }
        let stats = try withExtendedLifetime(gradients) {
            try PhaseTimer.measure(StepPhase.allReduce) { try reducer.allReduce(buffers: buffers) }
        }
        PhaseTimer.measure(StepPhase.optimizer) {
            for (name, gradient) in zip(names, gradients) {
                model.parameters.withMutableValues(name) { values in
                    gradient.withUnsafeBufferPointer { g in
                        let rate = options.learningRate
                        for i in 0..<values.count { values[i] -= rate * g[i] }
                    }
                }
            }
        }
        return (output.loss, stats)
    }
}

/// How far a bf16 step is from the f32 step on the same weights and batch.
public struct PrecisionComparison: Sendable {
    public let lossF32: Float
    public let lossBF16: Float
    /// ‖g_bf16 − g_f32‖ / ‖g_f32‖ over all trainable gradients together.
    public let gradientRelativeError: Double
    /// The largest of the same ratio taken per parameter, and its name.
    public let worstParameterError: Double
    public let worstParameter: String
    /// Cosine similarity of the concatenated gradients.
    public let gradientCosine: Double

    /// Runs one forward and backward pass in each precision. Leaves the model in `.bf16` and
    /// its gradients from the bf16 pass; parameters are not changed.
    public static func measure(_ model: PaliGemma, _ batch: PaliGemmaBatch) throws -> PrecisionComparison {
        let names = model.parameters.trainableNames
        model.parameters.compute = .f32
        let exact = try model.forwardBackward(batch, logits: .supervised)
        let reference = names.map { model.gradients[$0]!.snapshot().scalars }
        model.parameters.compute = .bf16
        let rounded = try model.forwardBackward(batch, logits: .supervised)
        let difference = GradientDifference(model, reference: reference)
        return PrecisionComparison(
            lossF32: exact.loss, lossBF16: rounded.loss,
            gradientRelativeError: difference.relativeError,
            worstParameterError: difference.worstParameterError, worstParameter: difference.worstParameter,
            gradientCosine: difference.cosine)
    }
}

/// How far a model's gradients are from reference gradients of the same trainable parameters.
public struct GradientDifference: Sendable {
    /// ‖g − g_ref‖ / ‖g_ref‖ over all trainable gradients together.
    public let relativeError: Double
    /// The largest of the same ratio taken per parameter, and its name.
    public let worstParameterError: Double
    public let worstParameter: String
    /// Cosine similarity of the concatenated gradients.
    public let cosine: Double

    /// Compares `model.gradients` with `reference`, one array per trainable name in order.
    public init(_ model: PaliGemma, reference: [[Float]]) {
        let names = model.parameters.trainableNames
        var (difference, norm, dot, otherNorm) = (0.0, 0.0, 0.0, 0.0)
        var worst = (0.0, "")
        for (name, referenceValues) in zip(names, reference) {
            let values = model.gradients[name]!.snapshot().scalars
            var (d, n) = (0.0, 0.0)
            for i in values.indices {
                let (a, b) = (Double(referenceValues[i]), Double(values[i]))
                d += (a - b) * (a - b)
                n += a * a
                dot += a * b
                otherNorm += b * b
            }
            difference += d
            norm += n
            let ratio = n > 0 ? (d / n).squareRoot() : 0
            if ratio > worst.0 { worst = (ratio, name) }
        }
        relativeError = norm > 0 ? (difference / norm).squareRoot() : 0
        worstParameterError = worst.0
        worstParameter = worst.1
        cosine = norm > 0 && otherNorm > 0 ? dot / (norm * otherNorm).squareRoot() : 1
    }
}

/// Times greedy decoding with the key/value cache.
public enum DecodeBench {
    public struct Result {
        /// Whole decode (prefill and every new token), per timed run.
        public var totalSeconds: [Double] = []
        public var prefillSeconds: [Double] = []
        /// Tokens generated per example in each run.
        public var newTokens = 0
    }

    public static func run(
        _ model: PaliGemma, _ prompt: DecodePrompt, newTokens: Int, warmup: Int, runs: Int
    ) throws -> Result {
        // Every example generates `newTokens` tokens, as a fixed-length benchmark needs.
        let options = DecodeOptions(maxNewTokens: newTokens, stopAtEOS: false)
        var result = Result()
        for _ in 0..<warmup { _ = try model.decode(prompt, options: options) }
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let decoded = try model.decode(prompt, options: options)
            result.totalSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            result.prefillSeconds.append(decoded.timing.prefillSeconds)
            result.newTokens = decoded.tokens.first?.count ?? 0
        }
        return result
    }
}
