import Foundation
import TensorCore

extension PaliGemma {
    /// Decodes greedily with a key/value cache, as big_vision's `prefill_cache` and
    /// `extend_cache` do.
    ///
    /// 1. Prefill: the vision tower, then the decoder over each example's image tokens and real
    ///    text tokens with the prefix-LM mask, writing every layer's keys and values to the
    ///    cache. The logits of the last real token give the first new token.
    /// 2. Each later step feeds the previous token of every unfinished example at position
    ///    (tokens so far), attends over that example's cached slots only, and computes logits
    ///    for that one position.
    ///
    /// big_vision rolls each row so that its real tokens end at a common column, and masks the
    /// padding in front. Here each example's tokens start at slot 0, and padding is never
    /// computed. Positions are the same (cumsum(mask_input) − 1) and masked keys contribute
    /// exactly zero in both, so the results agree to rounding.
    public func decode(_ prompt: DecodePrompt, options: DecodeOptions) throws(PaliGemmaError) -> DecodeResult {
        try checkDecodeInputs(prompt, options)
        let clock = ContinuousClock()
        var timing = DecodeTiming()
        let llm = config.llm
        var state = DecodeState(batchSize: prompt.batchSize, vocabSize: llm.vocabSize, options: options)

        // 1. prefill
        let prefillStart = clock.now
        let prefill = DecodeStep.prefill(prompt, imageTokens: config.vision.numTokens)
        let longestPrompt = prefill.segments.map(\.count).max() ?? 0
        let cache = KVCache(
            precision: options.cachePrecision, layers: llm.depth, batchSize: prompt.batchSize,
            capacity: longestPrompt + options.maxNewTokens, kvHeads: llm.numKVHeads, headDim: llm.headDim)
        var stack = CachedDecoderStack(
            store: parameters, cache: cache,
            scratch: CachedAttention.Scratch(rows: max(llm.numHeads / llm.numKVHeads, longestPrompt), slots: cache.capacity))

        var normed = stack.run(prefillEmbeddings(prompt, prefill), prefill)
        recordFilled(prefill, in: cache)
        state.appendGreedy(decodingLogits(normed), examples: Array(0..<prompt.batchSize))
        timing.prefillSeconds = seconds(clock.now - prefillStart)

        // 2. one token per unfinished example per step
        let stepsStart = clock.now
        var active = state.activeExamples
        while !active.isEmpty {
            let step = DecodeStep.extend(examples: active, cached: cache.counts)
            let previous = active.map { state.tokens[$0].last! }
            normed = stack.run(TokenEmbedding.forward(ids: previous, tokenTable()), step)
            recordFilled(step, in: cache)
            state.appendGreedy(decodingLogits(normed), examples: active)
            timing.steps += 1
            active = state.activeExamples
        }
        timing.stepSeconds = seconds(clock.now - stepsStart)
        return state.result(timing: timing)
    }

    // MARK: - Pieces

    /// Checks the prompt against the model and the options.
    func checkDecodeInputs(_ prompt: DecodePrompt, _ options: DecodeOptions) throws(PaliGemmaError) {
        let v = config.vision
        let expected = [prompt.batchSize, v.imageSize, v.imageSize, v.channels]
        if prompt.images.shape != expected {
            throw .invalidBatch(field: "images", reason: "shape \(prompt.images.shape) but this model needs \(expected)")
        }
        let vocabulary = config.llm.vocabSize
        if let bad = prompt.text.first(where: { Int($0) >= vocabulary }) {
            throw .invalidBatch(field: "text", reason: "token id \(bad) is outside the vocabulary of \(vocabulary)")
        }
        if options.maxNewTokens < 1 {
            throw .invalidBatch(field: "maxNewTokens", reason: "must be at least 1, found \(options.maxNewTokens)")
        }
        if options.eosID < 0 || Int(options.eosID) >= vocabulary {
            throw .invalidBatch(field: "eosID", reason: "\(options.eosID) is outside the vocabulary of \(vocabulary)")
        }
    }

    /// Builds the prefill input: per example, its image tokens, then its real text embeddings (·√D).
    ///
    /// - Returns: f32[R, D] in the packed row order of `step`
    private func prefillEmbeddings(_ prompt: DecodePrompt, _ step: DecodeStep) -> Tensor {
        let P = config.vision.numTokens
        let (zimg, _, _) = VisionTower.forward(prompt.images, parameters, keepCache: false, rematerialize: false)

        var textIDs: [Int32] = []
        var textRows: [Int] = []
        var imageRows: [Int] = []
        for segment in step.segments {
            imageRows += (0..<P).map { segment.row + $0 }
            let tokens = prompt.realTokens(segment.example)
            textIDs += tokens
            textRows += tokens.indices.map { segment.row + P + ($0 - tokens.startIndex) }
        }

        var x = Tensor(zeros: [step.rowCount, config.llm.width])
        Kernels.addRows(zimg, at: imageRows, into: &x)
        Kernels.addRows(TokenEmbedding.forward(ids: textIDs, tokenTable()), at: textRows, into: &x)
        return x
    }

    private func recordFilled(_ step: DecodeStep, in cache: KVCache) {
        for segment in step.segments {
            cache.setCount(segment.start + segment.count, example: segment.example)
        }
    }
}

/// Converts a duration to seconds.
func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) * 1e-18
}

extension PaliGemma {
    /// Computes the logits x·Eᵀ of the few rows a decoding step needs.
    ///
    /// - x: f32[R, D] after final_norm
    /// - Returns: f32[R, V]
    func decodingLogits(_ x: Tensor) -> Tensor {
        let head = tiedLogitsParameters()
        let (R, D) = (x.shape[0], x.shape[1])
        if R > Kernels.skinnyRowLimit { return TiedLogits.forward(x, head) }

        // With few rows, reading the table once is the whole cost: BLAS would also repack it,
        // and a frozen f16 or bf16 table is read at its stored size, not expanded to f32.
        var logits = Tensor(uninitialized: [R, head.vocabSize])
        if let frozen = parameters.frozenArray(ParameterTable.Name.embedding) {
            Kernels.skinnyGEMMTransposedB(m: R, n: head.vocabSize, k: D, a: x, b: frozen, c: &logits, ldc: head.vocabSize)
            return logits
        }
        head.forEachChunk { range, table in
            switch table.values {
            case .f32(let rows):
                Kernels.skinnyGEMMTransposedB(
                    m: R, n: range.count, k: D, a: x, b: rows, c: &logits, offsetC: range.lowerBound, ldc: head.vocabSize)
            case .bf16(let rows):
                Kernels.skinnyGEMMTransposedB(
                    m: R, n: range.count, k: D, a: x, b: rows, c: &logits, offsetC: range.lowerBound, ldc: head.vocabSize)
            }
        }
        return logits
    }
}
