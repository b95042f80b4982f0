import TensorCore

/// The SigLIP tower and the projection to the decoder width: images → zimg.
///
/// Forward: patch embedding, position embedding, encoder blocks, encoder_norm, head.
/// Backward runs the same steps in exact reverse order. Layer weights are fetched from the
/// store per layer, so frozen f16/bf16 weights are expanded to f32 one layer at a time, and the
/// pages of a memory-mapped checkpoint are released after each block (see
/// `ParameterStore.releasesMappedPages`).
enum VisionTower {
    typealias Name = ParameterTable.Name

    /// What the backward pass needs. With rematerialisation a block keeps only its input.
    struct Cache {
        var patch: PatchEmbedding.Cache
        var blocks: [BlockCache<EncoderBlock.Cache>]
        var encoderNorm: LayerNorm.Cache
        var head: Dense.Cache
    }

    /// - images: f32[B, height, width, C]
    /// - Returns: zimg f32[B, P, D_llm], imgEncoded f32[B, P, D] (after encoder_norm), and the
    ///   cache when `keepCache`.
    static func forward(_ images: Tensor, _ store: ParameterStore, keepCache: Bool, rematerialize: Bool)
        -> (zimg: Tensor, imgEncoded: Tensor, cache: Cache?)
    {
        let depth = store.config.vision.depth

        // 1. patches → tokens, plus the learned position embedding
        let patchParameters = PatchEmbedding.Parameters(
            kernel: store.weight(Name.patchKernel), bias: store.weights(Name.patchBias))
        var (x, patchCache) = PatchEmbedding.forward(
            images, patchParameters, keepPatches: keepCache && store.isTrainable(Name.patchKernel))
        x = PositionEmbedding.forward(x, PositionEmbedding.Parameters(embedding: store.weights(Name.posEmbedding)))
        store.releaseMappedPages()

        // 2. encoder blocks
        var blockCaches: [BlockCache<EncoderBlock.Cache>] = []
        for layer in 0..<depth {
            let (y, cache) = EncoderBlock.forward(x, EncoderBlock.Parameters(store, layer: layer))
            if keepCache { blockCaches.append(rematerialize ? .input(x) : .stored(cache)) }
            x = y
            store.releaseMappedPages()
        }

        // 3. encoder_norm, then the head projection to the decoder width
        let (imgEncoded, normCache) = LayerNorm.forward(x, encoderNormParameters(store))
        let (zimg, headCache) = Dense.forward(imgEncoded, headParameters(store))
        store.releaseMappedPages()

        let cache = keepCache
            ? Cache(patch: patchCache, blocks: blockCaches, encoderNorm: normCache, head: headCache) : nil
        return (zimg, imgEncoded, cache)
    }

    /// Runs the encoder without the head on one image at a time, keeping no backward state.
    /// Returns imgEncoded f32[B, P, D] (after encoder_norm) for images f32[B, height, width, C].
    ///
    /// OpenBLAS rounds a row of a product differently depending on where the row sits in the
    /// matrix (by up to about 1e-6 with OpenBLAS 0.3.21 here). Run one image at a time, an image's
    /// features do not depend on the other images of its batch, so features cached from one
    /// batch equal those a later batch would compute, bit for bit. Each layer's weights are
    /// still fetched once for all images.
    static func encodeEachImage(_ images: Tensor, _ store: ParameterStore) -> Tensor {
        let batchSize = images.shape[0]

        // 1. patches → tokens, plus the learned position embedding
        let patchParameters = PatchEmbedding.Parameters(
            kernel: store.weight(Name.patchKernel), bias: store.weights(Name.patchBias))
        let position = PositionEmbedding.Parameters(embedding: store.weights(Name.posEmbedding))
        var tokens: [Tensor] = (0..<batchSize).map { b in
            let (x, _) = PatchEmbedding.forward(images.rows(b..<(b + 1)), patchParameters, keepPatches: false)
            return PositionEmbedding.forward(x, position)
        }

        // 2. encoder blocks, layer by layer
        for layer in 0..<store.config.vision.depth {
            let parameters = EncoderBlock.Parameters(store, layer: layer)
            tokens = tokens.map { EncoderBlock.forward($0, parameters).0 }
        }

        // 3. encoder_norm, each image into its place in [B, P, D]
        let norm = encoderNormParameters(store)
        let perImage = tokens[0].count
        var imgEncoded = Tensor(uninitialized: [batchSize] + Array(tokens[0].shape.dropFirst()))
        imgEncoded.withUnsafeMutableBufferPointer { output in
            for (b, x) in tokens.enumerated() {
                LayerNorm.forward(x, norm).0.withUnsafeBufferPointer { normed in
                    (output.baseAddress! + b * perImage).update(from: normed.baseAddress!, count: perImage)
                }
            }
        }
        return imgEncoded
    }

    /// - dZimg: f32[B, P, D_llm]
    static func backward(_ dZimg: Tensor, _ cache: Cache, _ store: ParameterStore, _ gradients: GradientTable) {
        let depth = store.config.vision.depth

        // 3'. head, encoder_norm
        let head = Dense.Gradients(kernel: gradients.target(Name.headKernel), bias: gradients.target(Name.headBias))
        var dx = Dense.backward(dZimg, cache.head, headParameters(store), head)
        gradients.markReady([Name.headKernel, Name.headBias])
        let norm = LayerNorm.Gradients(
            scale: gradients.target(Name.encoderNormScale), bias: gradients.target(Name.encoderNormBias))
        dx = LayerNorm.backward(dx, cache.encoderNorm, encoderNormParameters(store), norm)
        gradients.markReady([Name.encoderNormScale, Name.encoderNormBias])
        store.releaseMappedPages()

        // 2'. encoder blocks, last first
        for layer in (0..<depth).reversed() {
            let parameters = EncoderBlock.Parameters(store, layer: layer)
            let blockCache: EncoderBlock.Cache
            switch cache.blocks[layer] {
            case .stored(let stored): blockCache = stored
            case .input(let input): blockCache = GEMMLog.withoutRecording { EncoderBlock.forward(input, parameters).1 }
            }
            dx = EncoderBlock.backward(dx, blockCache, parameters, EncoderBlock.Gradients(gradients, layer: layer))
            gradients.markReady(encoderBlockNames, layer: layer)
            store.releaseMappedPages()
        }

        // 1'. position embedding, patch embedding (images get no gradient)
        dx = PositionEmbedding.backward(dx, PositionEmbedding.Gradients(embedding: gradients.target(Name.posEmbedding)))
        let patch = PatchEmbedding.Gradients(kernel: gradients.target(Name.patchKernel), bias: gradients.target(Name.patchBias))
        PatchEmbedding.backward(dx, cache.patch, patch)
        gradients.markReady([Name.posEmbedding, Name.patchKernel, Name.patchBias])
        store.releaseMappedPages()
    }

    private static func encoderNormParameters(_ store: ParameterStore) -> LayerNorm.Parameters {
        LayerNorm.Parameters(scale: store.weights(Name.encoderNormScale), bias: store.weights(Name.encoderNormBias))
    }

    private static func headParameters(_ store: ParameterStore) -> Dense.Parameters {
        Dense.Parameters(kernel: store.weight(Name.headKernel), bias: store.weights(Name.headBias))
    }
}

/// A block's backward state: either its full cache, or only its input, from which the forward
/// pass is rerun just before the block's backward (rematerialisation, to save memory).
enum BlockCache<Stored> {
    case stored(Stored)
    case input(Tensor)
}

// MARK: - Checkpoint names → encoder block parameters

/// The stacked arrays of one encoder block.
let encoderBlockNames: [String] = {
    typealias Name = ParameterTable.Name
    return [
        Name.layerNorm0Scale, Name.layerNorm0Bias, Name.queryKernel, Name.queryBias, Name.keyKernel, Name.keyBias,
        Name.valueKernel, Name.valueBias, Name.outKernel, Name.outBias, Name.layerNorm1Scale, Name.layerNorm1Bias,
        Name.mlpInKernel, Name.mlpInBias, Name.mlpOutKernel, Name.mlpOutBias,
    ]
}()

extension EncoderBlock.Parameters {
    init(_ store: ParameterStore, layer: Int) {
        typealias Name = ParameterTable.Name
        func w(_ name: String) -> Tensor { store.weights(name, layer: layer) }
        func kernel(_ name: String) -> Weight { store.weight(name, layer: layer) }
        layerNorm0 = LayerNorm.Parameters(scale: w(Name.layerNorm0Scale), bias: w(Name.layerNorm0Bias))
        attention = VisionAttention.Parameters(
            queryKernel: kernel(Name.queryKernel), queryBias: w(Name.queryBias),
            keyKernel: kernel(Name.keyKernel), keyBias: w(Name.keyBias),
            valueKernel: kernel(Name.valueKernel), valueBias: w(Name.valueBias),
            outKernel: kernel(Name.outKernel), outBias: w(Name.outBias))
        layerNorm1 = LayerNorm.Parameters(scale: w(Name.layerNorm1Scale), bias: w(Name.layerNorm1Bias))
        mlp = VisionMLP.Parameters(
            dense0: Dense.Parameters(kernel: kernel(Name.mlpInKernel), bias: w(Name.mlpInBias)),
            dense1: Dense.Parameters(kernel: kernel(Name.mlpOutKernel), bias: w(Name.mlpOutBias)))
    }
}

extension EncoderBlock.Gradients {
    init(_ gradients: GradientTable, layer: Int) {
        typealias Name = ParameterTable.Name
        // Kernels [D, N, H] and biases [N, H] are used as [D, N·H] and [N·H]; gradient windows
        // are addressed by element count, so they need no reshape.
        func g(_ name: String) -> GradientSlice? { gradients.target(name, layer: layer) }
        layerNorm0 = LayerNorm.Gradients(scale: g(Name.layerNorm0Scale), bias: g(Name.layerNorm0Bias))
        attention = VisionAttention.Gradients(
            query: Dense.Gradients(kernel: g(Name.queryKernel), bias: g(Name.queryBias)),
            key: Dense.Gradients(kernel: g(Name.keyKernel), bias: g(Name.keyBias)),
            value: Dense.Gradients(kernel: g(Name.valueKernel), bias: g(Name.valueBias)),
            out: Dense.Gradients(kernel: g(Name.outKernel), bias: g(Name.outBias)))
        layerNorm1 = LayerNorm.Gradients(scale: g(Name.layerNorm1Scale), bias: g(Name.layerNorm1Bias))
        mlp = VisionMLP.Gradients(
            dense0: Dense.Gradients(kernel: g(Name.mlpInKernel), bias: g(Name.mlpInBias)),
            dense1: Dense.Gradients(kernel: g(Name.mlpOutKernel), bias: g(Name.mlpOutBias)))
    }
}
