import TensorCore

/// PaliGemma-1 on the CPU: forward pass, loss, and backward pass into `gradients`.
///
/// The store's trainable pattern decides which parameters get gradients. Frozen weights cost no
/// weight-gradient GEMMs. When nothing under `img/` is trainable, the backward pass stops at the
/// decoder input and the vision tower keeps no activations. When the vision encoder (every `img/`
/// parameter except the head `img/head/`) is frozen, it runs one image at a time, and with the
/// vision-feature cache on, the images the cache stores skip it and only run the head projection.
public final class PaliGemma {
    typealias Name = ParameterTable.Name

    /// The text positions that get logits.
    public enum LogitRows: Sendable {
        /// Every text position: logits [B, T, V]. Needed to inspect or decode all positions.
        case allText
        /// Only positions whose target is supervised (mask_loss = 1): logits [R, V]. The loss
        /// and gradients are identical to `allText`, with less work.
        case supervised
    }

    /// The example and text position (0..<T) of a logits row.
    public struct LogitRow: Sendable, Equatable {
        public let example: Int
        public let position: Int
    }

    /// Results of one pass, plus the intermediate tensors big_vision's golden files hold.
    public struct Output {
        /// Mean over examples of each example's masked mean NLL.
        public let loss: Float
        /// Per-example loss [B].
        public let exampleLoss: [Float]
        /// NLL of each target times mask_loss[:, 1:]: [B, T]; zero on rows without logits.
        public let tokenNLL: Tensor
        /// [B, T, V] for `.allText`, [R, V] for `.supervised` (rows listed in `logitRows`).
        public let logits: Tensor
        /// The (example, position) of each logits row.
        public let logitRows: [LogitRow]
        /// Vision tokens after encoder_norm, before the head: [B, P, D_vit]. They are rounded to
        /// the storage dtype of the vision-feature cache when the cache served the batch.
        public let imgEncoded: Tensor
        /// Image tokens fed to the decoder, after the head: [B, P, D].
        public let zimg: Tensor
        /// Decoder output after final_norm: [B, P+T, D]. With `.supervised` logits the last
        /// decoder block runs only on the last positions of each example that cover the rows
        /// with logits (see `GemmaAttention.QueryTail`); the earlier positions hold zeros.
        public let preLogits: Tensor
        /// The prefix-LM attention mask [B, P+T, P+T] (query, key).
        public let attentionMask: AttentionMask
    }

    public let config: PaliGemmaConfig
    public let parameters: ParameterStore
    /// Gradients of the trainable parameters, filled by `forwardBackward`.
    public let gradients: GradientTable
    /// When true, blocks keep only their input and rerun their forward pass during the backward
    /// pass: about a third more compute for a fraction of the activation memory.
    /// NOTE: without it, a pt-224 decoder block keeps about 45,600 f32 values per token
    /// (6 × 2048 + 2 × 256 + 2 × 16384), so 8 examples of 128 text tokens (3072 tokens) need
    /// about 10 GB for 18 blocks; with it, about 0.5 GB plus one block. Turn it on for pt models.
    public var rematerialize = false
    /// Called during `forwardBackward` each time a gradient, or one layer of a stacked
    /// gradient, is final for this pass, in backward order. The call runs on the backward
    /// pass's thread and the pass waits for it, so a handler that starts an all-reduce of that
    /// slice overlaps communication with the rest of the backward pass.
    public var onGradientReady: ((GradientReady) -> Void)? {
        get { gradients.readyHandler }
        set { gradients.readyHandler = newValue }
    }

    /// Vocabulary rows expanded at a time when the token table is stored as f16/bf16 and frozen,
    /// or read at a time when the pages of a mapped bf16 table are released in bf16 compute.
    public var vocabularyChunk = 16_384

    /// Encoder outputs reused across passes for batches with `imageKeys`. When nil (the
    /// default), the whole vision tower runs on every image.
    public private(set) var visionFeatureCache: VisionFeatureCache?

    public init(parameters: ParameterStore) {
        self.config = parameters.config
        self.parameters = parameters
        self.gradients = GradientTable(for: parameters)
    }

    /// Loads a model from checkpoint arrays; `trainable` is a regular expression over names.
    public convenience init(arrays: [String: StoredArray], trainable: String = "^llm/layers/attn/") throws(PaliGemmaError) {
        self.init(parameters: try ParameterStore(arrays: arrays, trainable: trainable))
    }

    /// Turns on the vision-feature cache, which stores at most `budgetBytes` of features in
    /// `dtype`, and returns it. Throws when a vision encoder parameter (any `img/` name except
    /// `img/head/`) trains, because the encoder's output then changes every step.
    @discardableResult
    public func enableVisionFeatureCache(budgetBytes: Int, dtype: DType = .f16) throws(VisionFeatureCacheError) -> VisionFeatureCache {
        let trainable = VisionFeatureCache.trainableEncoderParameters(parameters)
        if !trainable.isEmpty {
            throw .encoderTrains(parameters: trainable, pattern: parameters.trainablePattern)
        }
        if budgetBytes <= 0 { throw .invalidBudget(bytes: budgetBytes) }
        let cache = VisionFeatureCache(budgetBytes: budgetBytes, dtype: dtype)
        visionFeatureCache = cache
        return cache
    }

    /// Turns the vision-feature cache off and frees its entries.
    public func disableVisionFeatureCache() {
        visionFeatureCache = nil
    }

    /// Runs the forward pass and the loss, without gradients.
    public func forward(_ batch: PaliGemmaBatch, logits rows: LogitRows = .allText) throws(PaliGemmaError) -> Output {
        try run(batch, rows: rows, training: false, accumulate: false, lossScale: 1)
    }

    /// Runs the forward pass, the loss and the backward pass.
    ///
    /// Gradients of `lossScale`·loss are written to `gradients`: they replace the previous values,
    /// or are added to them when `accumulate` is true (for gradient accumulation over
    /// micro-batches, with lossScale = 1/micro-batches).
    @discardableResult
    public func forwardBackward(
        _ batch: PaliGemmaBatch, logits rows: LogitRows = .supervised, accumulate: Bool = false, lossScale: Float = 1
    ) throws(PaliGemmaError) -> Output {
        try run(batch, rows: rows, training: true, accumulate: accumulate, lossScale: lossScale)
    }

    // MARK: - The pass

    private func run(
        _ batch: PaliGemmaBatch, rows: LogitRows, training: Bool, accumulate: Bool, lossScale: Float
    ) throws(PaliGemmaError) -> Output {
        try check(batch)
        let (B, T, P) = (batch.batchSize, batch.modelTextLength, config.vision.numTokens)
        let (L, D) = (P + T, config.llm.width)
        let visionTrainable = parameters.anyTrainable(prefix: "img/")
        let embeddingTrainable = parameters.isTrainable(Name.embedding)
        let layout = SequenceLayout(batch: B, imageTokens: P, textTokens: T)

        // 1. vision tower → zimg [B, P, D]
        let vision = PhaseTimer.measure(StepPhase.vision) {
            visionForward(batch, keepCache: training && visionTrainable)
        }
        let zimg = vision.zimg

        // 2. text embeddings ·√D → [B·T, D]
        let inputIDs = batch.inputIDs
        let (x, context) = PhaseTimer.measure(StepPhase.embedding) {
            let ztxt = TokenEmbedding.forward(ids: inputIDs, tokenTable())

            // 3. x = concat(zimg, ztxt) along the sequence → [B, L, D]
            var x = Tensor(zeros: [B, L, D])
            Kernels.addRows(zimg, at: layout.imageRows, into: &x)
            Kernels.addRows(ztxt, at: layout.textRows, into: &x)

            // 4. prefix-LM mask and RoPE positions 0..<L
            parameters.releaseMappedPages()
            return (x, attentionContext(batch, layout))
        }

        // 5. decoder → preLogits [B, Lq, D]. With `.supervised` the last block computes only the
        //    last Lq positions of each example, enough to cover every row that gets logits.
        let logitRows = selectLogitRows(batch, rows)
        let tail = rows == .supervised ? context.tail(tailLength(logitRows, textTokens: T)) : nil
        let Lq = tail?.length ?? L
        let (preLogits, decoderCache) = LanguageModel.forward(
            x, context, parameters, keepCache: training, rematerialize: rematerialize, tail: tail)

        // 6. rows that get logits: position P + t predicts text[t + 1]
        let rowIndices = logitRows.map { $0.example * Lq + (P + $0.position - (L - Lq)) }
        let head = tiedLogitsParameters(releasingPages: true)
        let (selected, logits) = PhaseTimer.measure(StepPhase.logits) {
            let selected = Kernels.selectRows(preLogits, rowIndices)

            // 7. logits = selected·Eᵀ → [R, V]
            return (selected, TiedLogits.forward(selected, head))
        }

        // 8. per-example normalised cross-entropy
        let targetIDs = batch.targetIDs
        let targetMask = batch.targetMask
        let targets = CrossEntropyLoss.Targets(
            ids: logitRows.map { targetIDs[$0.example * T + $0.position] },
            example: logitRows.map(\.example),
            mask: logitRows.map { Float(targetMask[$0.example * T + $0.position]) },
            batchSize: B)
        let (loss, lossCache) = PhaseTimer.measure(StepPhase.loss) { CrossEntropyLoss.forward(logits, targets) }

        if training {
            if !accumulate { gradients.zero() }

            // 8'. dLogits of lossScale·loss
            let dLogits = PhaseTimer.measure(StepPhase.loss) { CrossEntropyLoss.backward(lossCache, scale: lossScale) }

            // 7'. tied output projection (the table gets gradient here when trainable)
            let dPreLogits = PhaseTimer.measure(StepPhase.logits) {
                let dSelected = TiedLogits.backward(
                    dLogits, x: selected, head, TiedLogits.Gradients(table: gradients.target(Name.embedding)))

                // 6'. scatter back into the sequence
                var dPreLogits = Tensor(zeros: [B, Lq, D])
                Kernels.addRows(dSelected, at: rowIndices, into: &dPreLogits)
                return dPreLogits
            }

            // 5'. decoder
            let dx = LanguageModel.backward(
                dPreLogits, decoderCache!, context, parameters, gradients,
                needInputGradient: embeddingTrainable || visionTrainable, tail: tail)

            if let dx {
                // 2'. token table through the lookup
                if embeddingTrainable {
                    let dZtxt = Kernels.selectRows(dx, layout.textRows)
                    TokenEmbedding.backward(dZtxt, ids: inputIDs, width: D, TokenEmbedding.Gradients(table: gradients.target(Name.embedding)))
                    gradients.markReady([Name.embedding])
                }
                // 1'. vision tower, or only its head when the encoder is frozen
                if visionTrainable {
                    PhaseTimer.measure(StepPhase.vision) {
                        let dZimg = Kernels.selectRows(dx, layout.imageRows).reshaped([B, P, D])
                        if let towerCache = vision.towerCache {
                            VisionTower.backward(dZimg, towerCache, parameters, gradients)
                        } else if let headCache = vision.headCache {
                            headBackward(dZimg, headCache)
                        }
                    }
                }
            }
        }

        var tokenNLL = Tensor(zeros: [B, T])
        for (row, position) in logitRows.enumerated() {
            tokenNLL[flat: position.example * T + position.position] = loss.rowNLL[row]
        }
        return Output(
            loss: loss.loss, exampleLoss: loss.exampleLoss, tokenNLL: tokenNLL,
            logits: rows == .allText ? logits.reshaped([B, T, config.llm.vocabSize]) : logits,
            logitRows: logitRows, imgEncoded: vision.imgEncoded, zimg: zimg,
            preLogits: tail.map { fullSequence(preLogits, tail: $0, length: L) } ?? preLogits,
            attentionMask: context.mask)
    }

    // MARK: - Pieces

    /// The vision step's outputs and what its backward pass needs.
    private struct VisionOutput {
        /// [B, P, D]
        let zimg: Tensor
        /// [B, P, D_vit]
        let imgEncoded: Tensor
        /// The whole tower's state, when it ran with `keepCache` and a trainable encoder.
        let towerCache: VisionTower.Cache?
        /// The head's state, when it ran with `keepCache` and a frozen encoder.
        let headCache: Dense.Cache?
    }

    /// Runs the vision tower. A trainable encoder runs on the whole batch and keeps what its
    /// backward pass needs. A frozen encoder runs on one image at a time, and only on the images
    /// that the feature cache (when on) does not store. The head then runs on the whole batch.
    private func visionForward(_ batch: PaliGemmaBatch, keepCache: Bool) -> VisionOutput {
        guard VisionFeatureCache.trainableEncoderParameters(parameters).isEmpty else {
            let (zimg, imgEncoded, towerCache) = VisionTower.forward(
                batch.images, parameters, keepCache: keepCache, rematerialize: rematerialize)
            return VisionOutput(zimg: zimg, imgEncoded: imgEncoded, towerCache: towerCache, headCache: nil)
        }

        let store = parameters
        let imgEncoded: Tensor
        if let cache = visionFeatureCache, let keys = batch.imageKeys {
            imgEncoded = cache.features(images: batch.images, keys: keys, compute: store.compute) { images in
                VisionTower.encodeEachImage(images, store)
            }
        } else {
            imgEncoded = VisionTower.encodeEachImage(batch.images, store)
        }
        let (zimg, headCache) = Dense.forward(imgEncoded, headParameters())
        return VisionOutput(zimg: zimg, imgEncoded: imgEncoded, towerCache: nil, headCache: keepCache ? headCache : nil)
    }

    /// Runs the head projection's backward pass for a frozen encoder. The input gradient it
    /// returns is dropped, because nothing before the head trains.
    private func headBackward(_ dZimg: Tensor, _ cache: Dense.Cache) {
        let targets = Dense.Gradients(kernel: gradients.target(Name.headKernel), bias: gradients.target(Name.headBias))
        _ = Dense.backward(dZimg, cache, headParameters(), targets)
        gradients.markReady([Name.headKernel, Name.headBias])
    }

    private func headParameters() -> Dense.Parameters {
        Dense.Parameters(kernel: parameters.weight(Name.headKernel), bias: parameters.weights(Name.headBias))
    }

    private func check(_ batch: PaliGemmaBatch) throws(PaliGemmaError) {
        let v = config.vision
        let expected = [batch.batchSize, v.imageSize, v.imageSize, v.channels]
        if batch.images.shape != expected {
            throw .invalidBatch(field: "images", reason: "shape \(batch.images.shape) but this model needs \(expected)")
        }
        if let bad = batch.text.first(where: { Int($0) >= config.llm.vocabSize }) {
            throw .invalidBatch(field: "text", reason: "token id \(bad) is outside the vocabulary of \(config.llm.vocabSize)")
        }
    }

    private func attentionContext(_ batch: PaliGemmaBatch, _ layout: SequenceLayout) -> GemmaAttention.Context {
        let (B, T, P) = (layout.batch, layout.textTokens, layout.imageTokens)
        let L = P + T
        var maskAR = [Int32](repeating: 0, count: B * L)
        var valid: [Bool]? = batch.maskInput == nil ? nil : [Bool](repeating: true, count: B * L)
        for b in 0..<B {
            for t in 0..<T {
                maskAR[b * L + P + t] = batch.maskAR[b * batch.storedTextLength + t]
                if let maskInput = batch.maskInput { valid![b * L + P + t] = maskInput[b * batch.storedTextLength + t] != 0 }
            }
        }
        let mask = PrefixLMMask.make(maskAR: maskAR, valid: valid, batch: B, length: L)
        let positions = (0..<B).flatMap { _ in (0..<L).map { Int32($0) } }
        let rotary = RotaryTable(positions: positions, headDim: config.llm.headDim, base: PaliGemmaConfig.ropeBase)
        return GemmaAttention.Context(rotary: rotary, mask: mask)
    }

    /// The shortest tail of text positions that holds every logits row of every example (at
    /// least 1).
    private func tailLength(_ rows: [LogitRow], textTokens T: Int) -> Int {
        max(1, rows.map { T - $0.position }.max() ?? 1)
    }

    /// Tail rows [B, Lq, D] placed at the end of each example of a zero [B, L, D] tensor.
    private func fullSequence(_ rows: Tensor, tail: GemmaAttention.QueryTail, length L: Int) -> Tensor {
        var full = Tensor(zeros: [rows.shape[0], L, rows.shape[2]])
        Kernels.addRows(rows, at: tail.rows, into: &full)
        return full
    }

    private func selectLogitRows(_ batch: PaliGemmaBatch, _ rows: LogitRows) -> [LogitRow] {
        let T = batch.modelTextLength
        let mask = batch.targetMask
        var result: [LogitRow] = []
        for b in 0..<batch.batchSize {
            for t in 0..<T where rows == .allText || mask[b * T + t] != 0 {
                result.append(LogitRow(example: b, position: t))
            }
        }
        return result
    }

    func tokenTable() -> TokenEmbedding.Table {
        if let frozen = parameters.frozenArray(Name.embedding) { return .stored(frozen) }
        return .float(parameters.weights(Name.embedding))
    }

    /// Returns the parameters of the tied output projection over the token table. With
    /// `releasingPages` and the store's `releasesMappedPages`, the pages of a memory-mapped
    /// table are released after each chunk.
    func tiedLogitsParameters(releasingPages: Bool = false) -> TiedLogits.Parameters {
        let store = parameters
        let frozen = parameters.frozenArray(Name.embedding)
        let isBF16 = parameters.isBF16Operand(Name.embedding)
        let releases = releasingPages && store.releasesMappedPages && frozen?.isFileMapped == true

        // One chunk when the table is used in place (f32, or bf16 for bf16 products); chunks of
        // rows converted one at a time otherwise. A mapped bf16 table whose pages are released
        // is read in chunks as well, so that only one chunk of it is resident at a time (the
        // pt-224 table is 1 GB). Chunks change the order in which the backward pass sums dx
        // over the vocabulary. An f32 table keeps one chunk, so f32 results stay bit-identical
        // with and without page release.
        let inPlace = frozen == nil || (isBF16
            ? frozen!.isUsableAsBF16 || parameters.bf16Copies[Name.embedding] != nil
            : frozen!.isBorrowableAsFloat)
        let chunked = !inPlace || (releases && isBF16 && parameters.bf16Copies[Name.embedding] == nil)
        return TiedLogits.Parameters(
            vocabSize: config.llm.vocabSize, chunkSize: chunked ? vocabularyChunk : config.llm.vocabSize,
            weightRows: { store.weightRows(Name.embedding, $0) as Weight },
            afterChunk: releases ? { store.releaseMappedPages() } : nil)
    }
}

/// Row indices of image and text tokens inside the flattened [B·L, D] decoder sequence.
struct SequenceLayout {
    let batch: Int
    let imageTokens: Int
    let textTokens: Int
    /// Row of image token p of example b, at index b·P + p.
    let imageRows: [Int]
    /// Row of text token t of example b, at index b·T + t.
    let textRows: [Int]

    init(batch: Int, imageTokens: Int, textTokens: Int) {
        let L = imageTokens + textTokens
        self.batch = batch
        self.imageTokens = imageTokens
        self.textTokens = textTokens
        imageRows = (0..<batch).flatMap { b in (0..<imageTokens).map { b * L + $0 } }
        textRows = (0..<batch).flatMap { b in (0..<textTokens).map { b * L + imageTokens + $0 } }
    }
}
