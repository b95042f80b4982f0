/// Sizes of a PaliGemma model: a SigLIP vision tower, a linear projection and a Gemma decoder.
///
/// `infer(from:)` reads every size from checkpoint shapes, so pt-224, pt-448, pt-896 and small
/// test models load without flags.
public struct PaliGemmaConfig: Codable, Sendable, Equatable {
    /// The SigLIP ViT: patch embedding, learned position embedding, pre-LN encoder blocks.
    public struct Vision: Codable, Sendable, Equatable {
        /// Side of the square input image in pixels.
        public var imageSize: Int
        /// Side of a square patch in pixels (the convolution stride).
        public var patchSize: Int
        /// Colour channels of the input image.
        public var channels: Int
        /// Token width D.
        public var width: Int
        /// Number of encoder blocks.
        public var depth: Int
        /// Attention heads N.
        public var numHeads: Int
        /// Width of one head H.
        public var headDim: Int
        /// Hidden width of the MLP.
        public var mlpDim: Int

        /// Image tokens P = (imageSize / patchSize)².
        public var numTokens: Int { (imageSize / patchSize) * (imageSize / patchSize) }

        public init(imageSize: Int, patchSize: Int, channels: Int = 3, width: Int, depth: Int, numHeads: Int, headDim: Int, mlpDim: Int) {
            self.imageSize = imageSize
            self.patchSize = patchSize
            self.channels = channels
            self.width = width
            self.depth = depth
            self.numHeads = numHeads
            self.headDim = headDim
            self.mlpDim = mlpDim
        }
    }

    /// The Gemma-1 decoder: RMSNorm, multi-query attention with RoPE, gated GELU MLP.
    public struct Language: Codable, Sendable, Equatable {
        /// Token width D.
        public var width: Int
        /// Number of decoder blocks.
        public var depth: Int
        /// Query heads N.
        public var numHeads: Int
        /// Key/value heads K (1 for Gemma-2B).
        public var numKVHeads: Int
        /// Width of one head H.
        public var headDim: Int
        /// Hidden width F of the gated MLP.
        public var mlpDim: Int
        /// Rows V of the tied embedding table.
        public var vocabSize: Int

        public init(width: Int, depth: Int, numHeads: Int, numKVHeads: Int, headDim: Int, mlpDim: Int, vocabSize: Int) {
            self.width = width
            self.depth = depth
            self.numHeads = numHeads
            self.numKVHeads = numKVHeads
            self.headDim = headDim
            self.mlpDim = mlpDim
            self.vocabSize = vocabSize
        }
    }

    public var vision: Vision
    public var llm: Language

    public init(vision: Vision, llm: Language) {
        self.vision = vision
        self.llm = llm
    }

    /// Epsilon of both LayerNorm (vision) and RMSNorm (Gemma), hard-coded in big_vision.
    public static let normEpsilon: Float = 1e-6
    /// RoPE maximum wavelength of Gemma-1.
    public static let ropeBase: Float = 10_000

    /// Total number of parameters.
    public var parameterCount: Int {
        ParameterTable.specs(for: self).reduce(0) { $0 + $1.count }
    }
}

// MARK: - Inference from checkpoint shapes

extension PaliGemmaConfig {
    /// Reads the model sizes from the shapes of a checkpoint's arrays.
    ///
    /// Names may carry the `params/` prefix of the released files. Every one of the 32
    /// PaliGemma-1 arrays must be present with a shape consistent with the others, and no other
    /// array may be present (PaliGemma 2 adds post-norms, which this model does not implement).
    public static func infer(from shapes: [String: [Int]]) throws(PaliGemmaError) -> PaliGemmaConfig {
        var plain: [String: [Int]] = [:]
        for (name, shape) in shapes { plain[ParameterTable.stripPrefix(name)] = shape }

        func shape(_ name: String, rank: Int) throws(PaliGemmaError) -> [Int] {
            guard let found = plain[name] else { throw .missingParameter(name: name) }
            if found.count != rank { throw .unexpectedRank(name: name, expected: rank, found: found) }
            return found
        }

        let posEmbedding = try shape(ParameterTable.Name.posEmbedding, rank: 3)
        let patchKernel = try shape(ParameterTable.Name.patchKernel, rank: 4)
        let query = try shape(ParameterTable.Name.queryKernel, rank: 4)
        let mlpIn = try shape(ParameterTable.Name.mlpInKernel, rank: 3)
        let embedding = try shape(ParameterTable.Name.embedding, rank: 2)
        let qEinsum = try shape(ParameterTable.Name.qEinsum, rank: 4)
        let kvEinsum = try shape(ParameterTable.Name.kvEinsum, rank: 5)
        let gating = try shape(ParameterTable.Name.gating, rank: 4)

        let tokens = posEmbedding[1]
        let gridSide = Int(Double(tokens).squareRoot().rounded())
        if gridSide * gridSide != tokens {
            throw .inconsistentShape(
                name: ParameterTable.Name.posEmbedding, expected: "a square number of image tokens", found: posEmbedding)
        }
        let vision = Vision(
            imageSize: gridSide * patchKernel[0], patchSize: patchKernel[0], channels: patchKernel[2],
            width: posEmbedding[2], depth: query[0], numHeads: query[2], headDim: query[3], mlpDim: mlpIn[2])
        let llm = Language(
            width: embedding[1], depth: qEinsum[0], numHeads: qEinsum[1], numKVHeads: kvEinsum[2],
            headDim: qEinsum[3], mlpDim: gating[3], vocabSize: embedding[0])
        let config = PaliGemmaConfig(vision: vision, llm: llm)
        try config.validate(shapes: plain)
        return config
    }

    /// Checks that `shapes` holds exactly this configuration's arrays, with matching shapes.
    public func validate(shapes: [String: [Int]]) throws(PaliGemmaError) {
        let specs = ParameterTable.specs(for: self)
        for spec in specs {
            guard let found = shapes[spec.name] else { throw .missingParameter(name: spec.name) }
            if found != spec.shape {
                throw .inconsistentShape(name: spec.name, expected: "\(spec.shape)", found: found)
            }
        }
        let known = Set(specs.map(\.name))
        if let extra = shapes.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unknownParameter(name: extra)
        }
    }
}
