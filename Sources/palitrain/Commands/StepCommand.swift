import Checkpoint
import Foundation
import PaliGemmaModel
import TensorCore

/// `palitrain step`: one forward and backward pass on a batch of preprocessed tensors.
///
/// This is how palitrain is checked against another implementation: the output NPZ uses the
/// names of big_vision's golden files (`logits`, `loss`, `grad/<name>`, `sgd/<name>`, ...).
struct StepCommand: Command {
    static let name = "step"
    static let summary = "run one forward/backward pass on a batch NPZ and write logits, loss, gradients and SGD-updated parameters"
    static let options: [OptionSpec] = [
        .value("checkpoint", "FILE.npz", help: "parameters in big_vision NPZ layout"),
        .value("batch", "FILE.npz", help: "arrays image [B,H,W,3] f32, text, mask_ar, mask_loss [B,T+1] int32 (mask_input optional)"),
        .value("out", "FILE.npz", help: "where to write the results"),
        .value("lr", "RATE", default: "0.1", help: "learning rate of the SGD step applied to the trainable parameters"),
        .value("trainable", "REGEX", default: "^llm/layers/attn/", help: "parameters that the SGD step updates"),
        .value("grads", "all|trainable", default: "trainable", help: "write gradients for every parameter or only the trainable ones"),
        .value("sgd-params", "all|trainable", default: "all", help: "write sgd/<name> for every parameter or only the updated ones"),
        .flag("mask-padding", help: "mask padding keys with the batch's mask_input (big_vision's training pass does not)"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let checkpointPath = try arguments.required("checkpoint")
        let batchPath = try arguments.required("batch")
        let outputPath = try arguments.required("out")
        let rate = try arguments.double("lr") ?? 0.1
        let trainablePattern = arguments.string("trainable") ?? "^llm/layers/attn/"
        let gradsForAll = try arguments.choice("grads", ["all", "trainable"]) == "all"
        let trainable = try compileRegex(trainablePattern, option: "trainable")
        let sgdForAll = try arguments.choice("sgd-params", ["all", "trainable"]) == "all"

        // 1. Model: with --grads all every parameter gets a gradient; SGD still touches only --trainable.
        let reader = try NPZReader(path: checkpointPath)
        let store = try ParameterStore(npz: reader, trainable: gradsForAll ? "." : trainablePattern)
        let model = PaliGemma(parameters: store)

        // 2. Batch
        let batch = try loadBatch(path: batchPath, useMaskInput: arguments.flag("mask-padding"))

        // 3. Forward and backward with logits at every text position.
        let start = DispatchTime.now().uptimeNanoseconds
        let output = try model.forwardBackward(batch, logits: .allText)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

        // 4. Write everything big_vision's golden files hold, then the SGD-updated parameters.
        let writer = try NPZWriter(path: outputPath)
        try writer.write(key: "logits", floats: output.logits.scalars, shape: output.logits.shape, as: .f32)
        try writer.write(key: "loss", floats: [output.loss], shape: [], as: .f32)
        try writer.write(key: "example_loss", floats: output.exampleLoss, shape: [output.exampleLoss.count], as: .f32)
        try writer.write(key: "token_nll", floats: output.tokenNLL.scalars, shape: output.tokenNLL.shape, as: .f32)
        try writer.write(key: "img_encoded", floats: output.imgEncoded.scalars, shape: output.imgEncoded.shape, as: .f32)
        try writer.write(key: "zimg", floats: output.zimg.scalars, shape: output.zimg.shape, as: .f32)
        try writer.write(key: "llm_pre_logits", floats: output.preLogits.scalars, shape: output.preLogits.shape, as: .f32)

        for name in store.names {
            guard let gradient = model.gradients[name] else { continue }
            try writer.write(key: "grad/" + name, floats: gradient.snapshot().scalars, shape: store.shape(of: name), as: .f32)
        }

        for name in store.names {
            let updated = (try? trainable.firstMatch(in: name)) != nil
            if !updated && !sgdForAll { continue }
            var values = store.values(name).scalars
            if updated, let gradient = model.gradients[name]?.snapshot().scalars {
                let step = Float(rate)
                for i in values.indices { values[i] -= step * gradient[i] }
            }
            try writer.write(key: "sgd/" + name, floats: values, shape: store.shape(of: name), as: .f32)
        }
        try writer.finish()

        print(String(format: "step: loss %.6f over %d examples; forward and backward took %.2f s; wrote %@",
                     output.loss, batch.batchSize, seconds, outputPath))
    }

    /// Reads a batch NPZ in the golden files' layout.
    static func loadBatch(path: String, useMaskInput: Bool) throws -> PaliGemmaBatch {
        let reader = try NPZReader(path: path)
        let image = try reader.array("image")
        let images = Tensor(shape: image.shape, values: image.floats())
        let text = try reader.array("text").int32s()
        let maskAR = try reader.array("mask_ar").int32s()
        let maskLoss = try reader.array("mask_loss").int32s()
        let maskInput = useMaskInput ? try reader.array("mask_input").int32s() : nil
        return try PaliGemmaBatch(images: images, text: text, maskAR: maskAR, maskLoss: maskLoss, maskInput: maskInput)
    }
}

/// Compiles a user's regular expression, or throws a usage error naming the option.
func compileRegex(_ pattern: String, option: String) throws -> Regex<AnyRegexOutput> {
    do {
        return try Regex(pattern)
    } catch {
        throw UsageError("option '--\(option)' is not a valid regular expression: '\(pattern)' (\(error))")
    }
}
