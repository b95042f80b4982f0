import Checkpoint
import Foundation
import PaliGemmaModel
import TensorCore

/// `palitrain decode`: greedy decoding of prompts stored as tensors.
///
/// This is how decoding is checked against another implementation: the input uses the names
/// of big_vision's golden files (`image`, `decode_text`, `decode_mask_ar`, `decode_mask_input`)
/// and the output has the tokens and the logits that produced each one.
struct DecodeCommand: Command {
    static let name = "decode"
    static let summary = "greedily decode the prompts of a batch NPZ and write the tokens, log-probabilities and logits"
    static let options: [OptionSpec] = [
        .value("checkpoint", "FILE.npz", help: "parameters in big_vision NPZ layout"),
        .value("batch", "FILE.npz", help: "image [B,H,W,3] f32 and PREFIX_text, PREFIX_mask_ar, PREFIX_mask_input [B,T] int32"),
        .value("prefix", "NAME", default: "decode", help: "name prefix of the prompt arrays, e.g. decode_batch; PREFIX_image replaces image when present"),
        .value("max-new-tokens", "N", help: "tokens to generate per example"),
        .value("out", "FILE.npz", help: "where to write tokens [B,N], log_probs [B,N], lengths [B] and logits [B,N,V]"),
        .value("cache-dtype", "f32|bf16", default: "f32", help: "precision of the key/value cache (big_vision's default is bf16)"),
        .flag("stop-at-eos", help: "stop each example at its first EOS; later columns hold token 0 and zero logits"),
        .value("eos-id", "ID", default: "1", help: "end-of-sequence token id"),
        .flag("recompute", help: "decode without the cache, rerunning the whole sequence for every token (slow reference)"),
        .flag("no-logits", help: "neither keep nor write the logits (for timing runs with a large vocabulary)"),
        .value("threads", "N", default: "0", help: "kernel threads; 0 uses every processor"),
        .value("repeat", "N", default: "1", help: "decode N times and report the median time; the last run is written"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let checkpointPath = try arguments.required("checkpoint")
        let batchPath = try arguments.required("batch")
        let outputPath = try arguments.required("out")
        let prefix = arguments.string("prefix") ?? "decode"
        let maxNewTokens = try positiveInt("max-new-tokens", arguments, required: true)
        let repeatCount = try positiveInt("repeat", arguments, required: false) ?? 1
        let threads = try arguments.int("threads") ?? 0
        guard threads >= 0 else { throw UsageError("option '--threads' must be 0 or more, found \(threads)") }
        guard let eosID = Int32(arguments.string("eos-id") ?? "1"), eosID >= 0 else {
            throw UsageError("option '--eos-id' expects a non-negative token id, found '\(arguments.string("eos-id") ?? "")'")
        }
        let precision = KVCachePrecision(rawValue: try arguments.choice("cache-dtype", ["f32", "bf16"]) ?? "f32")!
        let recompute = arguments.flag("recompute")
        if recompute && precision != .f32 {
            throw UsageError("--recompute keeps no cache, so --cache-dtype must be f32")
        }
        Threading.setThreadCount(threads)

        // 1. Model and prompts
        let model = PaliGemma(parameters: try ParameterStore(npz: NPZReader(path: checkpointPath), trainable: "^$"))
        let (prompt, imageNote) = try loadPrompt(path: batchPath, prefix: prefix)

        // 2. Decode, `repeat` times for timing
        let options = DecodeOptions(
            maxNewTokens: maxNewTokens!, cachePrecision: precision, stopAtEOS: arguments.flag("stop-at-eos"), eosID: eosID,
            keepLogits: !arguments.flag("no-logits"))
        var timings: [DecodeTiming] = []
        var result: DecodeResult?
        for _ in 0..<repeatCount {
            result = try recompute ? model.decodeByRecomputing(prompt, options: options) : model.decode(prompt, options: options)
            timings.append(result!.timing)
        }

        // 3. Write and report
        try write(result!, options: options, vocabSize: model.config.llm.vocabSize, to: outputPath)
        let lengths = (0..<prompt.batchSize).map { String(prompt.realTokenCount($0)) }.joined(separator: ", ")
        print("decode: \(prompt.batchSize) prompt\(prompt.batchSize == 1 ? "" : "s") of \(lengths) real tokens from '\(prefix)'"
            + "\(imageNote), \(recompute ? "recomputing every step (no cache)" : "\(precision.rawValue) cache"), "
            + "\(Threading.threadCount) thread\(Threading.threadCount == 1 ? "" : "s")")
        print(timingSummary(timings))
        print("decode: generated \(result!.tokens.map { String($0.count) }.joined(separator: ", ")) tokens; wrote \(outputPath)")
    }

    // MARK: - Input

    /// Reads the prompt arrays. It uses the first B images when the file has more images than
    /// prompts, as the golden `inputs.npz` does (2 images, 1 decode prompt).
    static func loadPrompt(path: String, prefix: String) throws -> (DecodePrompt, String) {
        let reader = try NPZReader(path: path)
        func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "_" + name }
        for name in ["text", "mask_ar", "mask_input"] where !reader.contains(key(name)) {
            throw DecodeInputError.missingArray(file: path, key: key(name), available: reader.keys)
        }
        let imageKey = reader.contains(key("image")) ? key("image") : "image"
        guard reader.contains(imageKey) else {
            throw DecodeInputError.missingArray(file: path, key: "image", available: reader.keys)
        }

        let text = try reader.array(key("text"))
        let image = try reader.array(imageKey)
        guard text.shape.count == 2 else {
            throw DecodeInputError.badShape(file: path, key: key("text"), expected: "[B, T]", found: text.shape)
        }
        guard image.shape.count == 4 else {
            throw DecodeInputError.badShape(file: path, key: imageKey, expected: "[B, height, width, 3]", found: image.shape)
        }
        let batchSize = text.shape[0]
        guard image.shape[0] >= batchSize else {
            throw DecodeInputError.badShape(
                file: path, key: imageKey, expected: "at least \(batchSize) images, one per prompt", found: image.shape)
        }

        let perImage = image.count / max(1, image.shape[0])
        let pixels = Array(image.floats().prefix(batchSize * perImage))
        let images = Tensor(shape: [batchSize] + image.shape.dropFirst(), values: pixels)
        let prompt = try DecodePrompt(
            images: images, text: text.int32s(), maskAR: reader.array(key("mask_ar")).int32s(),
            maskInput: reader.array(key("mask_input")).int32s())
        let note = image.shape[0] > batchSize ? " (first \(batchSize) of \(image.shape[0]) images in '\(imageKey)')" : ""
        return (prompt, note)
    }

    // MARK: - Output

    static func write(_ result: DecodeResult, options: DecodeOptions, vocabSize: Int, to path: String) throws {
        let (B, N) = (result.tokens.count, options.maxNewTokens)
        var tokens = [Int32](repeating: 0, count: B * N)
        var logProbs = [Float](repeating: 0, count: B * N)
        for b in 0..<B {
            for (t, token) in result.tokens[b].enumerated() {
                tokens[b * N + t] = token
                logProbs[b * N + t] = result.logProbs[b][t]
            }
        }

        let writer = try NPZWriter(path: path)
        try writer.write(key: "tokens", int32s: tokens, shape: [B, N])
        try writer.write(key: "log_probs", floats: logProbs, shape: [B, N], as: .f32)
        try writer.write(key: "lengths", int32s: result.tokens.map { Int32($0.count) }, shape: [B])
        if let logits = result.logits {
            try logits.withUnsafeBufferPointer { values in
                try writer.write(key: "logits", dtype: .f32, shape: [B, N, vocabSize], bytes: UnsafeRawBufferPointer(values))
            }
        }
        try writer.finish()
    }

    static func timingSummary(_ timings: [DecodeTiming]) -> String {
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let steps = timings.last?.steps ?? 0
        let prefill = median(timings.map(\.prefillSeconds))
        let stepTime = median(timings.map(\.stepSeconds))
        let total = median(timings.map(\.totalSeconds))
        var line = String(
            format: "decode: prefill %.3f s, %d step%@ %.3f s (%.1f ms per step), total %.3f s",
            prefill, steps, steps == 1 ? "" : "s", stepTime, steps > 0 ? stepTime / Double(steps) * 1000 : 0, total)
        if timings.count > 1 {
            line += " (median of \(timings.count) runs; totals " + timings.map { String(format: "%.3f", $0.totalSeconds) }.joined(separator: ", ") + " s)"
        }
        return line
    }

    private static func positiveInt(_ name: String, _ arguments: ParsedArguments, required: Bool) throws -> Int? {
        guard let value = try arguments.int(name) else {
            if required { throw UsageError("missing required option '--\(name)'") }
            return nil
        }
        guard value >= 1 else { throw UsageError("option '--\(name)' must be at least 1, found \(value)") }
        return value
    }
}

/// A batch NPZ that lacks the prompt arrays or has them in the wrong shape.
enum DecodeInputError: Error, CustomStringConvertible {
    case missingArray(file: String, key: String, available: [String])
    case badShape(file: String, key: String, expected: String, found: [Int])

    var description: String {
        switch self {
        case .missingArray(let file, let key, let available):
            let listed = available.prefix(20).joined(separator: ", ") + (available.count > 20 ? ", ..." : "")
            return "\(file) has no array '\(key)' (arrays: \(listed)); choose the prompt arrays with --prefix, "
                + "e.g. --prefix decode_batch reads decode_batch_text, decode_batch_mask_ar and decode_batch_mask_input"
        case .badShape(let file, let key, let expected, let found):
            return "\(file): array '\(key)' has shape \(found) but \(expected) is expected"
        }
    }
}
