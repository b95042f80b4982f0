import TensorCore

/// The 32 parameter arrays of PaliGemma-1 under their big_vision names, with shapes and the
/// initialiser used by `PaliGemmaInit`.
///
/// Names are those of big_vision's `tree_flatten_with_names`, without the `params/` prefix of
/// the released files. Both towers are stored stacked ("scanned"): every
/// `img/Transformer/encoderblock/…` and `llm/layers/…` array has a leading depth axis.
public enum ParameterTable {
    /// How `PaliGemmaInit` fills an array.
    public enum Initializer: Sendable, Equatable {
        case zeros
        case ones
        /// Normal with mean 0 and this standard deviation.
        case normal(standardDeviation: Double)
    }

    /// One parameter array.
    public struct Spec: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        /// True when axis 0 is the layer axis of a stacked tower.
        public let isStacked: Bool
        public let initializer: Initializer

        public var count: Int { shape.reduce(1, *) }
    }

    /// Names used by the model code.
    public enum Name {
        public static let encoderNormBias = "img/Transformer/encoder_norm/bias"
        public static let encoderNormScale = "img/Transformer/encoder_norm/scale"
        public static let layerNorm0Bias = "img/Transformer/encoderblock/LayerNorm_0/bias"
        public static let layerNorm0Scale = "img/Transformer/encoderblock/LayerNorm_0/scale"
        public static let layerNorm1Bias = "img/Transformer/encoderblock/LayerNorm_1/bias"
        public static let layerNorm1Scale = "img/Transformer/encoderblock/LayerNorm_1/scale"
        public static let mlpInBias = "img/Transformer/encoderblock/MlpBlock_0/Dense_0/bias"
        public static let mlpInKernel = "img/Transformer/encoderblock/MlpBlock_0/Dense_0/kernel"
        public static let mlpOutBias = "img/Transformer/encoderblock/MlpBlock_0/Dense_1/bias"
        public static let mlpOutKernel = "img/Transformer/encoderblock/MlpBlock_0/Dense_1/kernel"
        public static let keyBias = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/key/bias"
        public static let keyKernel = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/key/kernel"
        public static let outBias = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/out/bias"
        public static let outKernel = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/out/kernel"
        public static let queryBias = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/bias"
        public static let queryKernel = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel"
        public static let valueBias = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/value/bias"
        public static let valueKernel = "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/value/kernel"
        public static let patchBias = "img/embedding/bias"
        public static let patchKernel = "img/embedding/kernel"
        public static let headBias = "img/head/bias"
        public static let headKernel = "img/head/kernel"
        public static let posEmbedding = "img/pos_embedding"
        public static let embedding = "llm/embedder/input_embedding"
        public static let finalNorm = "llm/final_norm/scale"
        public static let attnVecEinsum = "llm/layers/attn/attn_vec_einsum/w"
        public static let kvEinsum = "llm/layers/attn/kv_einsum/w"
        public static let qEinsum = "llm/layers/attn/q_einsum/w"
        public static let gating = "llm/layers/mlp/gating_einsum"
        public static let linear = "llm/layers/mlp/linear"
        public static let preAttentionNorm = "llm/layers/pre_attention_norm/scale"
        public static let preFFWNorm = "llm/layers/pre_ffw_norm/scale"
    }

    /// Removes the `params/` prefix that the released checkpoint files put on every key.
    public static func stripPrefix(_ name: String) -> String {
        name.hasPrefix("params/") ? String(name.dropFirst("params/".count)) : name
    }

    /// Every array of `config`, sorted by name as big_vision writes them.
    ///
    /// Initialisers: LayerNorm gains 1 and biases 0; Gemma RMSNorm offsets 0 (a gain of 1);
    /// kernels normal with variance 1/fan-in (LeCun), except the ViT attention, MLP and head
    /// kernels, which use variance 2/(fan-in + fan-out) (Glorot, the variance of big_vision's
    /// xavier_uniform); the position embedding and the token table normal with std 1/√width.
    /// NOTE: big_vision zero-initialises `img/head/kernel`; a random head is used here so that
    /// a model trained from scratch sees the image from the first step.
    public static func specs(for config: PaliGemmaConfig) -> [Spec] {
        let v = config.vision
        let l = config.llm
        func lecun(_ fanIn: Int) -> Initializer { .normal(standardDeviation: 1 / Double(fanIn).squareRoot()) }
        func glorot(_ fanIn: Int, _ fanOut: Int) -> Initializer {
            .normal(standardDeviation: (2 / Double(fanIn + fanOut)).squareRoot())
        }
        func spec(_ name: String, _ shape: [Int], stacked: Bool = false, _ initializer: Initializer) -> Spec {
            Spec(name: name, shape: shape, isStacked: stacked, initializer: initializer)
        }
        let attentionWidth = v.numHeads * v.headDim
        return [
            spec(Name.encoderNormBias, [v.width], .zeros),
            spec(Name.encoderNormScale, [v.width], .ones),
            spec(Name.layerNorm0Bias, [v.depth, v.width], stacked: true, .zeros),
            spec(Name.layerNorm0Scale, [v.depth, v.width], stacked: true, .ones),
            spec(Name.layerNorm1Bias, [v.depth, v.width], stacked: true, .zeros),
            spec(Name.layerNorm1Scale, [v.depth, v.width], stacked: true, .ones),
            spec(Name.mlpInBias, [v.depth, v.mlpDim], stacked: true, .zeros),
            spec(Name.mlpInKernel, [v.depth, v.width, v.mlpDim], stacked: true, glorot(v.width, v.mlpDim)),
            spec(Name.mlpOutBias, [v.depth, v.width], stacked: true, .zeros),
            spec(Name.mlpOutKernel, [v.depth, v.mlpDim, v.width], stacked: true, glorot(v.mlpDim, v.width)),
            spec(Name.keyBias, [v.depth, v.numHeads, v.headDim], stacked: true, .zeros),
            spec(Name.keyKernel, [v.depth, v.width, v.numHeads, v.headDim], stacked: true, glorot(v.width, attentionWidth)),
            spec(Name.outBias, [v.depth, v.width], stacked: true, .zeros),
            spec(Name.outKernel, [v.depth, v.numHeads, v.headDim, v.width], stacked: true, glorot(attentionWidth, v.width)),
            spec(Name.queryBias, [v.depth, v.numHeads, v.headDim], stacked: true, .zeros),
            spec(Name.queryKernel, [v.depth, v.width, v.numHeads, v.headDim], stacked: true, glorot(v.width, attentionWidth)),
            spec(Name.valueBias, [v.depth, v.numHeads, v.headDim], stacked: true, .zeros),
            spec(Name.valueKernel, [v.depth, v.width, v.numHeads, v.headDim], stacked: true, glorot(v.width, attentionWidth)),
            spec(Name.patchBias, [v.width], .zeros),
            spec(Name.patchKernel, [v.patchSize, v.patchSize, v.channels, v.width], lecun(v.patchSize * v.patchSize * v.channels)),
            spec(Name.headBias, [l.width], .zeros),
            spec(Name.headKernel, [v.width, l.width], glorot(v.width, l.width)),
            spec(Name.posEmbedding, [1, v.numTokens, v.width], .normal(standardDeviation: 1 / Double(v.width).squareRoot())),
            spec(Name.embedding, [l.vocabSize, l.width], .normal(standardDeviation: 1 / Double(l.width).squareRoot())),
            spec(Name.finalNorm, [l.width], .zeros),
            spec(Name.attnVecEinsum, [l.depth, l.numHeads, l.headDim, l.width], stacked: true, lecun(l.numHeads * l.headDim)),
            spec(Name.kvEinsum, [l.depth, 2, l.numKVHeads, l.width, l.headDim], stacked: true, lecun(l.width)),
            spec(Name.qEinsum, [l.depth, l.numHeads, l.width, l.headDim], stacked: true, lecun(l.width)),
            spec(Name.gating, [l.depth, 2, l.width, l.mlpDim], stacked: true, lecun(l.width)),
            spec(Name.linear, [l.depth, l.mlpDim, l.width], stacked: true, lecun(l.mlpDim)),
            spec(Name.preAttentionNorm, [l.depth, l.width], stacked: true, .zeros),
            spec(Name.preFFWNorm, [l.depth, l.width], stacked: true, .zeros),
        ]
    }
}
