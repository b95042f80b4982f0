import TensorCore

/// Settings of one greedy decode.
public struct DecodeOptions: Sendable {
    /// Tokens generated at most per example, EOS included.
    public var maxNewTokens: Int
    /// Precision of the key/value cache; ignored by `decodeByRecomputing`, which has no cache.
    public var cachePrecision: KVCachePrecision
    /// When true, an example stops after its first EOS; otherwise every example generates
    /// `maxNewTokens` tokens, as big_vision's decode does before it truncates at EOS.
    public var stopAtEOS: Bool
    /// The end-of-sequence id (1 in PaliGemma's tokenizer).
    public var eosID: Int32
    /// Keep the logits that produced each token (`DecodeResult.logits`). They take
    /// B × maxNewTokens × V floats: 1 GB for 8 examples of 128 tokens at V = 257152.
    public var keepLogits: Bool

    public init(
        maxNewTokens: Int, cachePrecision: KVCachePrecision = .f32, stopAtEOS: Bool = true, eosID: Int32 = 1,
        keepLogits: Bool = false
    ) {
        self.maxNewTokens = maxNewTokens
        self.cachePrecision = cachePrecision
        self.stopAtEOS = stopAtEOS
        self.eosID = eosID
        self.keepLogits = keepLogits
    }
}

/// Wall-clock time of a decode, split as big_vision reports it.
public struct DecodeTiming: Sendable, Equatable {
    /// The first pass: vision tower and the whole prompt, up to the first token's logits.
    public var prefillSeconds: Double = 0
    /// Every later pass together.
    public var stepSeconds: Double = 0
    /// Number of later passes (one new token per unfinished example each).
    public var steps: Int = 0

    public var totalSeconds: Double { prefillSeconds + stepSeconds }
}

/// The output of a greedy decode.
public struct DecodeResult: Sendable {
    /// Generated ids per example, in order; with `stopAtEOS` a row ends at its first EOS.
    public var tokens: [[Int32]]
    /// log softmax(logits)[token] of each generated token (natural log), aligned with `tokens`.
    public var logProbs: [[Float]]
    /// True for examples that generated EOS; false ones hit `maxNewTokens` ("runaway").
    public var reachedEOS: [Bool]
    /// f32[B, maxNewTokens, V] when `keepLogits`: row t of example b produced tokens[b][t];
    /// rows past an example's last token are zero.
    public var logits: Tensor?
    public var timing: DecodeTiming
}

/// The tokens chosen so far, shared by the cached and the recomputing decoders.
struct DecodeState {
    let options: DecodeOptions
    private(set) var tokens: [[Int32]]
    private(set) var logProbs: [[Float]]
    private(set) var reachedEOS: [Bool]
    private var logits: Tensor?

    init(batchSize: Int, vocabSize: Int, options: DecodeOptions) {
        self.options = options
        tokens = Array(repeating: [], count: batchSize)
        logProbs = Array(repeating: [], count: batchSize)
        reachedEOS = Array(repeating: false, count: batchSize)
        logits = options.keepLogits ? Tensor(zeros: [batchSize, options.maxNewTokens, vocabSize]) : nil
    }

    /// Examples that still generate: no EOS yet (when stopping at EOS) and below the limit.
    var activeExamples: [Int] {
        tokens.indices.filter { b in
            tokens[b].count < options.maxNewTokens && !(options.stopAtEOS && reachedEOS[b])
        }
    }

    /// Chooses the next token of each listed example greedily from its logits row.
    ///
    /// - rows: f32[examples.count, V], row i for `examples[i]`
    mutating func appendGreedy(_ rows: Tensor, examples: [Int]) {
        let V = rows.shape[1]
        if rows.shape[0] != examples.count { fatalError("DecodeState: \(rows.shape) logits for \(examples.count) examples") }

        // 1. argmax, the first index on ties as numpy and JAX return it
        var chosen = [Int32](repeating: 0, count: examples.count)
        rows.withUnsafeBufferPointer { values in
            for i in examples.indices {
                let line = values.baseAddress! + i * V
                var best = 0
                for v in 1..<V where line[v] > line[best] { best = v }
                chosen[i] = Int32(best)
            }
        }

        // 2. log-probability of the chosen token: logit − log Σ exp(logits)
        let logSumExp = Kernels.rowLogSumExp(rows)
        let chosenLogits = rows.withUnsafeBufferPointer { values in
            examples.indices.map { values[$0 * V + Int(chosen[$0])] }
        }

        // 3. record
        for (i, b) in examples.enumerated() {
            if var kept = logits {
                logits = nil  // keep the tensor uniquely referenced so the copy below is in place
                let step = tokens[b].count
                rows.withUnsafeBufferPointer { source in
                    kept.withUnsafeMutableBufferPointer { target in
                        (target.baseAddress! + (b * options.maxNewTokens + step) * V)
                            .update(from: source.baseAddress! + i * V, count: V)
                    }
                }
                logits = kept
            }
            tokens[b].append(chosen[i])
            logProbs[b].append(chosenLogits[i] - logSumExp[i])
            if chosen[i] == options.eosID { reachedEOS[b] = true }
        }
    }

    func result(timing: DecodeTiming) -> DecodeResult {
        DecodeResult(tokens: tokens, logProbs: logProbs, reachedEOS: reachedEOS, logits: logits, timing: timing)
    }
}
