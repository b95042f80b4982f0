import TensorCore

/// The Gemma decoder stack: decoder blocks then final_norm, over the joint image+text sequence.
///
/// Backward runs the blocks in exact reverse order. Layer weights are fetched from the store
/// per layer, so frozen f16/bf16 weights are expanded to f32 one layer at a time, and the pages
/// of a memory-mapped checkpoint are released after each block (see
/// `ParameterStore.releasesMappedPages`).
enum LanguageModel {
    typealias Name = ParameterTable.Name

    struct Cache {
        var blocks: [BlockCache<DecoderBlock.Cache>]
        var finalNorm: RMSNorm.Cache
    }

    /// - x: f32[B, L, D], image tokens then text embeddings
    /// - tail: when given, the last block computes outputs only for the tail queries
    /// - Returns: preLogits f32[B, Lq, D] (after final_norm; Lq = L without a tail) and the
    ///   cache when `keepCache`
    static func forward(
        _ input: Tensor, _ context: GemmaAttention.Context, _ store: ParameterStore, keepCache: Bool, rematerialize: Bool,
        tail: GemmaAttention.QueryTail? = nil
    ) -> (preLogits: Tensor, cache: Cache?) {
        var x = input
        var blockCaches: [BlockCache<DecoderBlock.Cache>] = []
        let depth = store.config.llm.depth

        // 1. decoder blocks; only the last one reads the tail
        for layer in 0..<depth {
            let parameters = PhaseTimer.measure(StepPhase.weights) { DecoderBlock.Parameters(store, layer: layer) }
            let (y, cache) = DecoderBlock.forward(x, parameters, context, tail: layer == depth - 1 ? tail : nil)
            if keepCache { blockCaches.append(rematerialize ? .input(x) : .stored(cache)) }
            x = y
            store.releaseMappedPages()
        }

        // 2. final_norm
        let (preLogits, normCache) = PhaseTimer.measure(StepPhase.embedding) {
            RMSNorm.forward(x, RMSNorm.Parameters(scale: store.weights(Name.finalNorm)))
        }
        return (preLogits, keepCache ? Cache(blocks: blockCaches, finalNorm: normCache) : nil)
    }

    /// - dPreLogits: f32[B, Lq, D], as `forward` returned preLogits
    /// - Returns: dx f32[B, L, D] when `needInputGradient`; nil otherwise. The blocks are
    ///   skipped entirely when nothing in them trains and no input gradient is needed.
    static func backward(
        _ dPreLogits: Tensor, _ cache: Cache, _ context: GemmaAttention.Context,
        _ store: ParameterStore, _ gradients: GradientTable, needInputGradient: Bool,
        tail: GemmaAttention.QueryTail? = nil
    ) -> Tensor? {
        // 2'. final_norm
        var dx = PhaseTimer.measure(StepPhase.embedding) {
            RMSNorm.backward(
                dPreLogits, cache.finalNorm, RMSNorm.Parameters(scale: store.weights(Name.finalNorm)),
                RMSNorm.Gradients(scale: gradients.target(Name.finalNorm)))
        }
        gradients.markReady([Name.finalNorm])
        if !needInputGradient && !store.anyTrainable(prefix: "llm/layers/") { return nil }

        // 1'. decoder blocks, last first; the first block's input gradient only when needed
        let depth = store.config.llm.depth
        for layer in (0..<depth).reversed() {
            let parameters = PhaseTimer.measure(StepPhase.weights) { DecoderBlock.Parameters(store, layer: layer) }
            let layerTail = layer == depth - 1 ? tail : nil
            let blockCache: DecoderBlock.Cache
            switch cache.blocks[layer] {
            case .stored(let stored):
                blockCache = stored
            case .input(let input):
                blockCache = GEMMLog.withoutRecording { DecoderBlock.forward(input, parameters, context, tail: layerTail).1 }
            }
            let blockGradient = DecoderBlock.backward(
                dx, blockCache, parameters, DecoderBlock.Gradients(gradients, layer: layer), context,
                tail: layerTail, inputGradient: layer > 0 || needInputGradient)
            gradients.markReady(blockNames, layer: layer)
            store.releaseMappedPages()
            guard let blockGradient else { return nil }
            dx = blockGradient
        }
        return dx
    }
}

// MARK: - Checkpoint names → decoder block parameters

/// The stacked arrays of one decoder block.
let blockNames = [
    ParameterTable.Name.preAttentionNorm, ParameterTable.Name.qEinsum, ParameterTable.Name.kvEinsum,
    ParameterTable.Name.attnVecEinsum, ParameterTable.Name.preFFWNorm, ParameterTable.Name.gating,
    ParameterTable.Name.linear,
]

extension DecoderBlock.Parameters {
    init(_ store: ParameterStore, layer: Int) {
        typealias Name = ParameterTable.Name
        func w(_ name: String) -> Tensor { store.weights(name, layer: layer) }
        preAttentionNorm = RMSNorm.Parameters(scale: w(Name.preAttentionNorm))
        attention = GemmaAttention.Parameters(query: w(Name.qEinsum), keyValue: w(Name.kvEinsum), output: w(Name.attnVecEinsum))
        preFFWNorm = RMSNorm.Parameters(scale: w(Name.preFFWNorm))
        mlp = GatedMLP.Parameters(gating: store.weight(Name.gating, layer: layer), linear: store.weight(Name.linear, layer: layer))
    }
}

extension DecoderBlock.Gradients {
    init(_ gradients: GradientTable, layer: Int) {
        typealias Name = ParameterTable.Name
        func g(_ name: String) -> GradientSlice? { gradients.target(name, layer: layer) }
        preAttentionNorm = RMSNorm.Gradients(scale: g(Name.preAttentionNorm))
        attention = GemmaAttention.Gradients(query: g(Name.qEinsum), keyValue: g(Name.kvEinsum), output: g(Name.attnVecEinsum))
        preFFWNorm = RMSNorm.Gradients(scale: g(Name.preFFWNorm))
        mlp = GatedMLP.Gradients(gating: g(Name.gating), linear: g(Name.linear))
    }
}
