import Foundation
import TensorCore

/// Named model sizes and random initialisation for training from scratch.
///
/// Values are generated from (seed, parameter name, element index) with a counter-based
/// generator. Every array, and every layer of it, can therefore be produced on its own and in
/// any order, without the whole model in memory (pt-224 is 5.8 GB even in f16).
public enum PaliGemmaInit {
    /// Known variant names.
    public static let variantNames = ["pt-224", "pt-448", "pt-896", "tiny", "demo", "bench-small"]

    /// The Gemma vocabulary with PaliGemma's 1024 location and 128 segmentation tokens.
    public static let paliGemmaVocabSize = 257_152

    /// Returns the sizes of a named variant.
    ///
    /// - `pt-224`, `pt-448`, `pt-896`: paligemma-3b (SigLIP So400m/14 + Gemma-2B) at that resolution.
    /// - `tiny`: the golden-test model (28-pixel images, width 32, depth 2).
    /// - `demo`: small enough to learn a simple detection task on two CPU cores in minutes:
    ///   84-pixel images (36 tokens), ViT 192 wide × 4, Gemma 256 wide × 4.
    /// - `bench-small`: the 165M-parameter benchmark model (224-pixel images, ViT 384 × 6,
    ///   Gemma 512 × 6, real vocabulary).
    /// `vocabSize` nil selects 257152, except for `tiny`, whose default is the golden model's 1300.
    public static func variant(named name: String, vocabSize: Int? = nil) throws(PaliGemmaError) -> PaliGemmaConfig {
        typealias Vision = PaliGemmaConfig.Vision
        typealias Language = PaliGemmaConfig.Language
        let vocab = vocabSize ?? (name == "tiny" ? 1300 : paliGemmaVocabSize)
        let so400m = { (image: Int) in
            Vision(imageSize: image, patchSize: 14, width: 1152, depth: 27, numHeads: 16, headDim: 72, mlpDim: 4304)
        }
        let gemma2B = Language(width: 2048, depth: 18, numHeads: 8, numKVHeads: 1, headDim: 256, mlpDim: 16384, vocabSize: vocab)
        switch name {
        case "pt-224": return PaliGemmaConfig(vision: so400m(224), llm: gemma2B)
        case "pt-448": return PaliGemmaConfig(vision: so400m(448), llm: gemma2B)
        case "pt-896": return PaliGemmaConfig(vision: so400m(896), llm: gemma2B)
        case "tiny":
            return PaliGemmaConfig(
                vision: Vision(imageSize: 28, patchSize: 14, width: 32, depth: 2, numHeads: 2, headDim: 16, mlpDim: 64),
                llm: Language(width: 32, depth: 2, numHeads: 2, numKVHeads: 1, headDim: 16, mlpDim: 64, vocabSize: vocab))
        case "demo":
            return PaliGemmaConfig(
                vision: Vision(imageSize: 84, patchSize: 14, width: 192, depth: 4, numHeads: 3, headDim: 64, mlpDim: 768),
                llm: Language(width: 256, depth: 4, numHeads: 4, numKVHeads: 1, headDim: 64, mlpDim: 1024, vocabSize: vocab))
        case "bench-small":
            return PaliGemmaConfig(
                vision: Vision(imageSize: 224, patchSize: 14, width: 384, depth: 6, numHeads: 6, headDim: 64, mlpDim: 1536),
                llm: Language(width: 512, depth: 6, numHeads: 8, numKVHeads: 1, headDim: 64, mlpDim: 2048, vocabSize: vocab))
        default:
            throw .unknownVariant(name: name, known: variantNames)
        }
    }

    // MARK: - Values

    /// Streams the initial values of one parameter as `dtype` bytes, one chunk at a time: one
    /// layer for stacked arrays, at most about 4M elements otherwise. The values do not depend on
    /// the chunking.
    public static func generate(
        _ spec: ParameterTable.Spec, seed: UInt64, dtype: DType, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        let layerCount = spec.isStacked ? spec.shape[0] : 1
        let perLayer = spec.count / max(1, layerCount)
        let chunk = spec.isStacked ? perLayer : min(spec.count, 1 << 22)
        var values = [Float](repeating: 0, count: chunk)
        var bytes = [UInt8](repeating: 0, count: chunk * dtype.byteSize)
        var start = 0
        while start < spec.count {
            let count = min(chunk, spec.count - start)
            values.withUnsafeMutableBufferPointer { buffer in
                fill(buffer.baseAddress!, count: count, first: start, spec: spec, seed: seed)
            }
            try values.withUnsafeBufferPointer { source in
                try bytes.withUnsafeMutableBytes { target in
                    convertFromFloat(source.baseAddress!, count: count, to: dtype, into: target.baseAddress!)
                    try body(UnsafeRawBufferPointer(rebasing: target[0..<(count * dtype.byteSize)]))
                }
            }
            start += count
        }
    }

    /// Generates the initial values of one parameter into an array that owns its bytes.
    public static func array(_ spec: ParameterTable.Spec, seed: UInt64, dtype: DType) -> StoredArray {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(spec.count * dtype.byteSize)
        generate(spec, seed: seed, dtype: dtype) { bytes.append(contentsOf: $0) }
        do {
            return try StoredArray(dtype: dtype, shape: spec.shape, bytes: bytes)
        } catch {
            fatalError("PaliGemmaInit.array: generated bytes do not match \(spec.name): \(error)")
        }
    }

    /// Generates every array of `config` in memory. Meant for small models: stream large ones
    /// with `generate` instead.
    public static func arrays(for config: PaliGemmaConfig, seed: UInt64, dtype: DType = .f32) -> [String: StoredArray] {
        var arrays: [String: StoredArray] = [:]
        for spec in ParameterTable.specs(for: config) { arrays[spec.name] = array(spec, seed: seed, dtype: dtype) }
        return arrays
    }

    /// Writes elements [first, first + count) of `spec`'s initial values.
    private static func fill(_ out: UnsafeMutablePointer<Float>, count: Int, first: Int, spec: ParameterTable.Spec, seed: UInt64) {
        switch spec.initializer {
        case .zeros:
            out.update(repeating: 0, count: count)
        case .ones:
            out.update(repeating: 1, count: count)
        case .normal(let standardDeviation):
            let stream = seed ^ fnv1a(spec.name)
            Threading.parallelFor(count, minimumChunk: 1 << 14) { range in
                // Elements 2p and 2p + 1 are the two outputs of one Box-Muller draw for pair p.
                var i = range.lowerBound
                while i < range.upperBound {
                    let element = first + i
                    let (even, odd) = normalPair(stream: stream, pair: UInt64(element / 2))
                    if element % 2 == 1 {
                        out[i] = Float(standardDeviation * odd)
                        i += 1
                        continue
                    }
                    out[i] = Float(standardDeviation * even)
                    if i + 1 < range.upperBound { out[i + 1] = Float(standardDeviation * odd) }
                    i += 2
                }
            }
        }
    }

    /// Two independent standard normal samples for pair `pair` of `stream` (Box-Muller on two
    /// hashed uniforms).
    static func normalPair(stream: UInt64, pair: UInt64) -> (Double, Double) {
        let first = mix(stream &+ 2 &* pair)
        let second = mix(stream &+ 2 &* pair &+ 1)
        let u1 = (Double(first >> 11) + 0.5) / 9_007_199_254_740_992  // in (0, 1)
        let u2 = Double(second >> 11) / 9_007_199_254_740_992
        let radius = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return (radius * cos(angle), radius * sin(angle))
    }

    /// SplitMix64's finaliser: a bijective mix of 64 bits.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a of the name's UTF-8 bytes: stable across runs, unlike Swift's `Hasher`.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
