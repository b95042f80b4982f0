import Checkpoint
import Dataset
import Foundation
import PaliGemmaModel
import TensorCore

/// `palitrain init`: writes a randomly initialised checkpoint in the released NPZ layout.
struct InitCommand: Command {
    static let name = "init"
    static let summary = "write a randomly initialised PaliGemma checkpoint (pt-224, pt-448, pt-896, tiny, demo, bench-small)"
    static let options: [OptionSpec] = [
        .value("variant", "NAME", help: "model size: \(PaliGemmaInit.variantNames.joined(separator: ", "))"),
        .value("out", "FILE.npz", help: "where to write the checkpoint"),
        .value("dtype", "f32|f16|bf16", default: "f32", help: "storage type of every array"),
        .value("vocab-size", "N", help: "vocabulary size (default: 257152, or 1300 for tiny)"),
        .value("tokenizer", "FILE.model", help: "size the vocabulary to this sentencepiece model instead of --vocab-size"),
        .value("seed", "N", default: "0", help: "seed of the random values"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let variant = try arguments.required("variant")
        let outputPath = try arguments.required("out")
        let dtype = DType(rawValue: try arguments.choice("dtype", ["f32", "f16", "bf16"]) ?? "f32")!
        guard let seed = UInt64(arguments.string("seed") ?? "0") else {
            throw UsageError("option '--seed' expects a non-negative integer, found '\(arguments.string("seed") ?? "")'")
        }

        var vocabSize = try arguments.int("vocab-size")
        if let tokenizerPath = arguments.string("tokenizer") {
            if vocabSize != nil {
                throw UsageError("pass either --vocab-size or --tokenizer, not both")
            }
            vocabSize = try Tokenizer(modelPath: tokenizerPath).vocabularySize
        }
        if let vocabSize, vocabSize < 3 {
            throw UsageError("option '--vocab-size' must be at least 3 (pad, eos and bos), found \(vocabSize)")
        }

        let config = try PaliGemmaInit.variant(named: variant, vocabSize: vocabSize)
        let specs = ParameterTable.specs(for: config)

        // Stream each array layer by layer, so pt-224 never exists as a whole in memory.
        let writer = try NPZWriter(path: outputPath)
        var parameterCount = 0
        for spec in specs {
            try writer.beginMember(key: spec.name, elementType: NPYDType(dtype), shape: spec.shape)
            try PaliGemmaInit.generate(spec, seed: seed, dtype: dtype) { bytes in
                try writer.append(bytes)
            }
            try writer.endMember()
            parameterCount += spec.count
        }
        try writer.finish()

        print("init: wrote \(specs.count) arrays, \(parameterCount) parameters (\(dtype)) of variant \(variant) to \(outputPath)")
    }
}
