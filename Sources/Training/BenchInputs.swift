import Checkpoint
import Foundation
import PaliGemmaModel
import TensorCore

/// The model and synthetic inputs of `palitrain bench`.
///
/// A named variant (`bench-small`, `pt-224`, ...) gets random weights generated in memory with
/// `PaliGemmaInit`; a path ending in `.npz` is a checkpoint, memory-mapped as training maps it.
/// Inputs follow Tests/Fixtures/bench-small.json: images uniform in [-1, 1], and text rows
/// `[BOS, 7 random ids, SEP=108]` (prefix, no loss) then random ids ending in EOS=1 (suffix,
/// causal, with loss), without padding.
public enum BenchInputs {
    static let bos: Int32 = 2
    static let eos: Int32 = 1
    static let separator: Int32 = 108
    /// Prefix tokens, BOS and SEP included, when the text is long enough.
    static let prefixLength = 9

    /// Loads or generates the weights; `dtype` is the storage of generated arrays.
    public static func parameters(config name: String, dtype: DType, trainable: String, seed: UInt64) throws -> ParameterStore {
        if name.hasSuffix(".npz") {
            return try ParameterStore(npz: NPZReader(path: name), trainable: trainable)
        }
        let config = try PaliGemmaInit.variant(named: name)
        var arrays: [String: StoredArray] = [:]
        for spec in ParameterTable.specs(for: config) {
            let buffer = GeneratedArray(byteCount: spec.count * dtype.byteSize)
            var offset = 0
            PaliGemmaInit.generate(spec, seed: seed, dtype: dtype) { bytes in
                (buffer.pointer + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                offset += bytes.count
            }
            let bytes = UnsafeRawBufferPointer(start: buffer.pointer, count: spec.count * dtype.byteSize)
            arrays[spec.name] = try StoredArray(dtype: dtype, shape: spec.shape, unsafeBytes: bytes, owner: buffer)
        }
        return try ParameterStore(config: config, arrays: arrays, trainable: trainable)
    }

    /// A training batch: B images and B text rows of `textLength` + 1 tokens (the model reads
    /// `textLength` of them and predicts the next one at each).
    public static func trainingBatch(
        _ config: PaliGemmaConfig, batchSize: Int, textLength: Int, seed: UInt64
    ) throws -> PaliGemmaBatch {
        try checkSizes(batchSize: batchSize, textLength: textLength, minimumText: 2)
        var random = BenchRandom(seed: seed)
        let images = randomImages(config, batchSize: batchSize, &random)
        let stored = textLength + 1
        let prefix = min(prefixLength, stored / 2)
        var text: [Int32] = []
        var maskAR: [Int32] = []
        var maskLoss: [Int32] = []
        for _ in 0..<batchSize {
            for position in 0..<stored {
                let isPrefix = position < prefix
                let id: Int32
                if position == 0 {
                    id = bos
                } else if position == prefix - 1 && prefix > 1 {
                    id = separator
                } else if position == stored - 1 {
                    id = eos
                } else {
                    id = random.tokenID(vocabulary: config.llm.vocabSize)
                }
                text.append(min(id, Int32(config.llm.vocabSize - 1)))
                maskAR.append(isPrefix ? 0 : 1)
                maskLoss.append(isPrefix ? 0 : 1)
            }
        }
        // Keys for the vision-feature cache: the images differ per seed and position.
        let keys = (0..<batchSize).map { "bench seed \(seed) image \($0)" }
        return try PaliGemmaBatch(images: images, text: text, maskAR: maskAR, maskLoss: maskLoss, imageKeys: keys)
    }

    /// A decoding prompt: B images and rows `[BOS, 7 random ids, SEP]` padded to `textLength`.
    public static func decodePrompt(
        _ config: PaliGemmaConfig, batchSize: Int, textLength: Int, seed: UInt64
    ) throws -> DecodePrompt {
        try checkSizes(batchSize: batchSize, textLength: textLength, minimumText: 1)
        var random = BenchRandom(seed: seed)
        let images = randomImages(config, batchSize: batchSize, &random)
        let real = min(prefixLength, textLength)
        var text: [Int32] = []
        var maskInput: [Int32] = []
        for _ in 0..<batchSize {
            for position in 0..<textLength {
                var id: Int32 = 0
                if position == 0 {
                    id = bos
                } else if position == real - 1 {
                    id = separator
                } else if position < real {
                    id = random.tokenID(vocabulary: config.llm.vocabSize)
                }
                text.append(min(id, Int32(config.llm.vocabSize - 1)))
                maskInput.append(position < real ? 1 : 0)
            }
        }
        let maskAR = [Int32](repeating: 0, count: text.count)
        return try DecodePrompt(images: images, text: text, maskAR: maskAR, maskInput: maskInput)
    }

    private static func randomImages(_ config: PaliGemmaConfig, batchSize: Int, _ random: inout BenchRandom) -> Tensor {
        let v = config.vision
        let shape = [batchSize, v.imageSize, v.imageSize, v.channels]
        var images = Tensor(uninitialized: shape)
        images.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] = random.uniform() * 2 - 1 }
        }
        return images
    }

    private static func checkSizes(batchSize: Int, textLength: Int, minimumText: Int) throws {
        if batchSize < 1 {
            throw BenchError.invalidSize(option: "batch-size", value: batchSize, minimum: 1)
        }
        if textLength < minimumText {
            throw BenchError.invalidSize(option: "text-len", value: textLength, minimum: minimumText)
        }
    }
}

/// Bytes of one generated parameter array.
private final class GeneratedArray {
    let pointer: UnsafeMutableRawPointer

    init(byteCount: Int) {
        pointer = .allocate(byteCount: max(1, byteCount), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

/// SplitMix64, so that every run and every rank benchmarks the same inputs.
struct BenchRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed &+ 0x5EED }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Float {
        Float(next() >> 40) / Float(1 << 24)
    }

    /// An id in 3..<vocabulary (above pad, EOS and BOS), or 0 for vocabularies of 3 or less.
    mutating func tokenID(vocabulary: Int) -> Int32 {
        vocabulary <= 3 ? 0 : Int32(3 + Int(next() % UInt64(vocabulary - 3)))
    }
}

/// Errors of `palitrain bench`.
public enum BenchError: Error, CustomStringConvertible {
    case invalidSize(option: String, value: Int, minimum: Int)
    case notOnEveryRank(String)

    public var description: String {
        switch self {
        case .invalidSize(let option, let value, let minimum):
            return "--\(option) must be at least \(minimum), found \(value)"
        case .notOnEveryRank(let reason):
            return reason
        }
    }
}
