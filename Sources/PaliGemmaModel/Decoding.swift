import TensorCore

/// The KV cache of a batch being decoded: per layer, the keys and values of every token so far.
///
/// Each example's tokens sit in slots 0..<length, in order: image tokens, the valid prompt
/// tokens, then the generated tokens. This is big_vision's left-to-right aligned cache without
/// the padding in front: masked slots contribute exactly zero there, so the logits agree.
public struct DecodeCache {
    /// dtype that keys, values and attention intermediates are rounded to (f32 or bf16).
    public let cacheDType: DType
    /// Slots per example.
    public let capacity: Int
    /// Tokens cached per example; the next token of example b goes to position `lengths[b]`.
    public internal(set) var lengths: [Int]
    /// Per layer: f32[B·capacity, K·H].
    var keys: [Tensor]
    var values: [Tensor]
}

/// Tokens and logits of a greedy decode.
public struct GreedyDecodeResult {
    /// Generated tokens per example, `steps` each (or fewer when every example hit the stop token).
    public let tokens: [[Int32]]
    /// The logits each token was chosen from: [B, generated steps, V].
    public let logits: Tensor
}

extension PaliGemma {
    /// Runs the prompt through the model and fills a KV cache (big_vision's prefill).
    ///
    /// - images: f32[B, height, width, C]
    /// - text, maskAR, maskInput: [B, T], the eval layout `[BOS, prefix…, SEP, PAD…]` with
    ///   maskInput 1 on a leading run of valid tokens and 0 on the padding after them
    /// - maxNewTokens: the number of tokens `extend` may add per example
    /// - Returns: logits f32[B, V] of each example's last valid token, and the cache.
    public func prefill(
        images: Tensor, text: [Int32], maskAR: [Int32], maskInput: [Int32], maxNewTokens: Int, cacheDType: DType = .f32
    ) throws(PaliGemmaError) -> (logits: Tensor, cache: DecodeCache) {
        let validCounts = try checkPrompt(images: images, text: text, maskAR: maskAR, maskInput: maskInput)
        let B = images.shape[0]
        let (T, P, D) = (text.count / B, config.vision.numTokens, config.llm.width)
        let (L, K, H) = (P + T, config.llm.numKVHeads, config.llm.headDim)
        let capacity = L + max(0, maxNewTokens)
        let layout = SequenceLayout(batch: B, imageTokens: P, textTokens: T)

        // 1. image tokens, text embeddings, joint sequence [B, L, D]
        let (zimg, _, _) = VisionTower.forward(images, parameters, keepCache: false, rematerialize: false)
        var x = Tensor(zeros: [B, L, D])
        Kernels.addRows(zimg, at: layout.imageRows, into: &x)
        Kernels.addRows(TokenEmbedding.forward(ids: text, tokenTable()), at: layout.textRows, into: &x)

        // 2. prefix-LM mask with padding masked; valid tokens lead, so positions are 0..<L
        var fullMaskAR = [Int32](repeating: 0, count: B * L)
        var valid = [Bool](repeating: true, count: B * L)
        for b in 0..<B {
            for t in 0..<T {
                fullMaskAR[b * L + P + t] = maskAR[b * T + t]
                valid[b * L + P + t] = maskInput[b * T + t] != 0
            }
        }
        let context = GemmaAttention.Context(
            rotary: RotaryTable(positions: (0..<B).flatMap { _ in (0..<L).map { Int32($0) } }, headDim: H),
            mask: PrefixLMMask.make(maskAR: fullMaskAR, valid: valid, batch: B, length: L),
            cacheDType: cacheDType)

        // 3. decoder blocks, keeping each layer's keys and values in the cache
        var keys: [Tensor] = []
        var values: [Tensor] = []
        for layer in 0..<config.llm.depth {
            let (y, blockCache) = DecoderBlock.forward(x, DecoderBlock.Parameters(parameters, layer: layer), context)
            var layerKeys = Tensor(zeros: [B * capacity, K * H])
            var layerValues = Tensor(zeros: [B * capacity, K * H])
            let slots = (0..<B).flatMap { b in (0..<L).map { b * capacity + $0 } }
            Kernels.setRows(blockCache.attention.k.reshaped([B * L, K * H]), at: slots, in: &layerKeys)
            Kernels.setRows(blockCache.attention.v.reshaped([B * L, K * H]), at: slots, in: &layerValues)
            keys.append(layerKeys)
            values.append(layerValues)
            x = y
        }

        // 4. final norm and logits at each example's last valid token
        let (normed, _) = RMSNorm.forward(x, RMSNorm.Parameters(scale: parameters.weights(Name.finalNorm)))
        let lastRows = (0..<B).map { $0 * L + P + validCounts[$0] - 1 }
        let logits = TiedLogits.forward(Kernels.selectRows(normed, lastRows), tiedLogitsParameters())
        let cache = DecodeCache(
            cacheDType: cacheDType, capacity: capacity, lengths: validCounts.map { P + $0 }, keys: keys, values: values)
        return (logits, cache)
    }

    /// Feeds one token per example and returns the logits for the next: f32[B, V].
    public func extend(_ tokens: [Int32], cache: inout DecodeCache) throws(PaliGemmaError) -> Tensor {
        let B = cache.lengths.count
        if tokens.count != B {
            throw .invalidBatch(field: "tokens", reason: "\(tokens.count) tokens for a cache of \(B) examples")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= config.llm.vocabSize }) {
            throw .invalidBatch(field: "tokens", reason: "token id \(bad) is outside the vocabulary of \(config.llm.vocabSize)")
        }
        if let full = cache.lengths.firstIndex(where: { $0 >= cache.capacity }) {
            throw .invalidBatch(field: "cache", reason: "example \(full) has filled all \(cache.capacity) slots; prefill with a larger maxNewTokens")
        }
        let D = config.llm.width

        // 1. embed the new tokens: [B, 1, D]
        var x = TokenEmbedding.forward(ids: tokens, tokenTable()).reshaped([B, 1, D])

        // 2. decoder blocks, each attending to its cache
        for layer in 0..<config.llm.depth {
            let block = DecoderBlock.Parameters(parameters, layer: layer)
            let (normed0, _) = RMSNorm.forward(x, block.preAttentionNorm)
            let attended = GemmaAttention.decodeStep(
                normed0, block.attention, keys: &cache.keys[layer], values: &cache.values[layer],
                lengths: cache.lengths, cacheDType: cache.cacheDType)
            let h = Kernels.add(attended, x)
            let (normed1, _) = RMSNorm.forward(h, block.preFFWNorm)
            x = Kernels.add(GatedMLP.forward(normed1, block.mlp).0, h)
        }
        for b in 0..<B { cache.lengths[b] += 1 }

        // 3. final norm and logits
        let (normed, _) = RMSNorm.forward(x, RMSNorm.Parameters(scale: parameters.weights(Name.finalNorm)))
        return TiedLogits.forward(normed.reshaped([B, D]), tiedLogitsParameters())
    }

    /// Decodes greedily (argmax) for up to `steps` tokens per example.
    ///
    /// With `stopToken` set, decoding ends early once every example has produced it at least
    /// once; examples that finished earlier keep generating until then, as in big_vision.
    public func greedyDecode(
        images: Tensor, text: [Int32], maskAR: [Int32], maskInput: [Int32], steps: Int,
        cacheDType: DType = .f32, stopToken: Int32? = 1
    ) throws(PaliGemmaError) -> GreedyDecodeResult {
        let B = images.shape.first ?? 0
        let V = config.llm.vocabSize
        var (logits, cache) = try prefill(
            images: images, text: text, maskAR: maskAR, maskInput: maskInput, maxNewTokens: steps, cacheDType: cacheDType)
        var tokens = [[Int32]](repeating: [], count: B)
        var stepLogits: [Tensor] = []
        var finished = [Bool](repeating: false, count: B)
        for step in 0..<steps {
            let chosen = (0..<B).map { Int32(Kernels.argmaxRow(logits, row: $0)) }
            stepLogits.append(logits)
            for b in 0..<B {
                tokens[b].append(chosen[b])
                if chosen[b] == stopToken { finished[b] = true }
            }
            if stopToken != nil && !finished.contains(false) { break }
            if step + 1 < steps { logits = try extend(chosen, cache: &cache) }
        }

        // Gather [B, steps, V] from the per-step [B, V] logits.
        var all = Tensor(zeros: [B, stepLogits.count, V])
        for (step, stepValues) in stepLogits.enumerated() {
            Kernels.setRows(stepValues, at: (0..<B).map { $0 * stepLogits.count + step }, in: &all)
        }
        return GreedyDecodeResult(tokens: tokens, logits: all)
    }

    /// Validates a decoding prompt and returns the number of valid text tokens per example.
    private func checkPrompt(images: Tensor, text: [Int32], maskAR: [Int32], maskInput: [Int32]) throws(PaliGemmaError) -> [Int] {
        let v = config.vision
        guard images.rank == 4, images.shape[0] > 0,
              Array(images.shape.dropFirst()) == [v.imageSize, v.imageSize, v.channels] else {
            throw .invalidBatch(field: "images", reason: "shape \(images.shape) but this model needs [B, \(v.imageSize), \(v.imageSize), \(v.channels)]")
        }
        let B = images.shape[0]
        if text.isEmpty || text.count % B != 0 || maskAR.count != text.count || maskInput.count != text.count {
            throw .invalidBatch(field: "text", reason: "text (\(text.count)), maskAR (\(maskAR.count)) and maskInput (\(maskInput.count)) must all be [\(B), T]")
        }
        if let bad = text.first(where: { $0 < 0 || Int($0) >= config.llm.vocabSize }) {
            throw .invalidBatch(field: "text", reason: "token id \(bad) is outside the vocabulary of \(config.llm.vocabSize)")
        }
        let T = text.count / B
        var counts: [Int] = []
        for b in 0..<B {
            let row = maskInput[(b * T)..<((b + 1) * T)]
            let count = row.prefix { $0 != 0 }.count
            if count == 0 || row.dropFirst(count).contains(where: { $0 != 0 }) {
                throw .invalidBatch(field: "maskInput", reason: "example \(b) must have one or more valid tokens followed only by padding, got \(Array(row))")
            }
            counts.append(count)
        }
        return counts
    }
}
