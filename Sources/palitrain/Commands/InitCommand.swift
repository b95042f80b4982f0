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
        .value("image-size", "PIXELS", help: "image side instead of the variant's own; a multiple of its patch size (14 for every variant)"),
        .value("seed", "N", default: "0", help: "seed of the random values"),
        .value(
            "loc-embedding", "random|sinusoidal", default: "random",
            help: "start the <loc> token rows random, or as sines of the bin so that neighbouring bins start similar (for training from scratch)"),
        .value(
            "vision-posemb", "random|sincos2d", default: "random",
            help: "start the vision position embedding random, or as 2-D sines of each patch's row and column (for training from scratch)"),
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

        var config = try PaliGemmaInit.variant(named: variant, vocabSize: vocabSize)
        if let imageSize = try arguments.int("image-size") {
            let patch = config.vision.patchSize
            guard imageSize >= patch, imageSize % patch == 0, imageSize <= 4096 else {
                throw UsageError("option '--image-size' must be a multiple of the patch size \(patch) between \(patch) and 4096, found \(imageSize)")
            }
            config.vision.imageSize = imageSize
        }
        let specs = ParameterTable.specs(for: config)
        let locBase = try sinusoidalLocBase(arguments, vocabSize: config.llm.vocabSize)
        let sinCosPositions = try arguments.choice("vision-posemb", ["random", "sincos2d"]) == "sincos2d"
        if sinCosPositions, config.vision.width % 4 != 0 {
            throw UsageError("option '--vision-posemb sincos2d' needs a vision width that is a multiple of 4, found \(config.vision.width)")
        }

        // Stream each array layer by layer, so pt-224 never exists as a whole in memory.
        let writer = try NPZWriter(path: outputPath)
        var parameterCount = 0
        for spec in specs {
            try writer.beginMember(key: spec.name, elementType: NPYDType(dtype), shape: spec.shape)
            if spec.name == ParameterTable.Name.posEmbedding, sinCosPositions {
                let side = config.vision.imageSize / config.vision.patchSize
                let values = VisionPositionInit.values(side: side, width: config.vision.width)
                var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
                values.withUnsafeBufferPointer { source in
                    bytes.withUnsafeMutableBytes { convertFromFloat(source.baseAddress!, count: values.count, to: dtype, into: $0.baseAddress!) }
                }
                try bytes.withUnsafeBytes { try writer.append($0) }
                try writer.endMember()
                parameterCount += spec.count
                continue
            }
            var first = 0
            try PaliGemmaInit.generate(spec, seed: seed, dtype: dtype) { bytes in
                defer { first += bytes.count / dtype.byteSize }
                guard spec.name == ParameterTable.Name.embedding, let locBase else {
                    try writer.append(bytes)
                    return
                }
                var patched = [UInt8](bytes)
                patched.withUnsafeMutableBytes { buffer in
                    LocationEmbeddingInit.patch(
                        buffer, dtype: dtype, first: first, count: bytes.count / dtype.byteSize,
                        width: config.llm.width, locBase: locBase)
                }
                try patched.withUnsafeBytes { try writer.append($0) }
            }
            try writer.endMember()
            parameterCount += spec.count
        }
        try writer.finish()

        print("init: wrote \(specs.count) arrays, \(parameterCount) parameters (\(dtype)) of variant \(variant) to \(outputPath)")
    }

    /// Returns the id of `<loc0000>` when `--loc-embedding sinusoidal` is set, else nil. It comes from
    /// `--tokenizer`, or is PaliGemma's 256000 for the full 257152-token vocabulary.
    private static func sinusoidalLocBase(_ arguments: ParsedArguments, vocabSize: Int) throws -> Int? {
        guard try arguments.choice("loc-embedding", ["random", "sinusoidal"]) == "sinusoidal" else { return nil }
        if let tokenizerPath = arguments.string("tokenizer") {
            return Int(try Tokenizer(modelPath: tokenizerPath).locBase)
        }
        if vocabSize == PaliGemmaInit.paliGemmaVocabSize { return 256_000 }
        throw UsageError(
            "option '--loc-embedding sinusoidal' needs the ids of the <loc> tokens: pass --tokenizer FILE.model, "
                + "or use the full \(PaliGemmaInit.paliGemmaVocabSize)-token vocabulary")
    }
}
