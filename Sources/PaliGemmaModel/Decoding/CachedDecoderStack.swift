import TensorCore

/// The Gemma decoder run on new tokens only, reading earlier tokens from a `KVCache`.
///
/// The same code runs the prefill (all prompt tokens of every example at once) and each later
/// step (one token per unfinished example). The layer math is `DecoderBlock.forward`'s, with the
/// attention replaced by `CachedAttention`: RMSNorm, q/k/v projections, RoPE at the tokens'
/// slots, q·H^-0.5, attention, attn_vec_einsum, residual, RMSNorm, gated MLP, residual.
struct CachedDecoderStack {
    typealias Name = ParameterTable.Name

    let store: ParameterStore
    let cache: KVCache
    var scratch: CachedAttention.Scratch

    /// Runs the decoder over the new tokens of one step, writing their keys and values.
    ///
    /// - x: f32[R, D], the embeddings of the step's new tokens in packed row order
    /// - Returns: f32[S, D] after final_norm, one row per segment (its last new token)
    mutating func run(_ x: Tensor, _ step: DecodeStep) -> Tensor {
        let llm = store.config.llm
        if x.shape != [step.rowCount, llm.width] {
            fatalError("CachedDecoderStack.run: x \(x.shape) does not match \(step.rowCount) new tokens of width \(llm.width)")
        }
        let positions = step.positions
        let allRows = RotaryTable(positions: positions, headDim: llm.headDim, base: PaliGemmaConfig.ropeBase)
        let lastRows = step.lastRows
        let lastOnly = RotaryTable(positions: lastRows.map { positions[$0] }, headDim: llm.headDim, base: PaliGemmaConfig.ropeBase)

        // 1. decoder blocks; the last one computes outputs only for the last token of each segment
        var hidden = x
        for layer in 0..<llm.depth {
            let isLast = layer == llm.depth - 1
            hidden = block(
                hidden, layer: layer, step: step, selection: isLast ? .lastRowOfEachSegment : .allRows,
                keyRotary: allRows, queryRotary: isLast ? lastOnly : allRows, lastRows: lastRows)
        }

        // 2. final_norm
        let (normed, _) = RMSNorm.forward(hidden, RMSNorm.Parameters(scale: store.weights(Name.finalNorm)))
        return normed
    }

    /// Runs one decoder block. Keys and values of every new token go to the cache, and outputs
    /// are computed for the queries of `selection` only.
    ///
    /// - x: f32[R, D]
    /// - Returns: f32[Rq, D], Rq = R for `.allRows`, one row per segment otherwise
    private mutating func block(
        _ x: Tensor, layer: Int, step: DecodeStep, selection: QuerySelection,
        keyRotary: RotaryTable, queryRotary: RotaryTable, lastRows: [Int]
    ) -> Tensor {
        let p = DecoderBlock.Parameters(store, layer: layer)
        let attention = p.attention
        let (R, D) = (x.shape[0], x.shape[1])
        let (N, K, H) = (attention.query.shape[0], attention.keyValue.shape[1], attention.query.shape[2])

        // 1. RMSNorm, then k = x·Wkv[0], v = x·Wkv[1] for every new token, RoPE on k
        let (normed, _) = RMSNorm.forward(x, p.preAttentionNorm)
        var k = Self.projectHeads(normed, attention.keyValue.slice(0))
        let v = Self.projectHeads(normed, attention.keyValue.slice(1))
        Kernels.applyRotary(&k, table: keyRotary, heads: K)

        // 2. write them to the cache, rounded to its precision
        cache.write(layer: layer, k: k, v: v, slots: step.slots)

        // 3. q = x·Wq for the queries, RoPE, ·H^-0.5
        let queryInput: Tensor
        let residual: Tensor
        if case .lastRowOfEachSegment = selection, lastRows.count < R {
            (queryInput, residual) = (Kernels.selectRows(normed, lastRows), Kernels.selectRows(x, lastRows))
        } else {
            (queryInput, residual) = (normed, x)
        }
        let Rq = queryInput.shape[0]
        var q = Self.projectHeads(queryInput, attention.query)
        Kernels.applyRotary(&q, table: queryRotary, heads: N)
        Kernels.scaleInPlace(&q, by: GemmaAttention.queryScale(headDim: H))

        // 4. attention over the cache, then h = x + o·Wo
        let o = CachedAttention.forward(
            q: q, cache: cache, layer: layer, step: step, selection: selection, queryHeads: N, scratch: &scratch)
        let attended = Self.matmul(o.reshaped([Rq, N * H]), attention.output.reshaped([N * H, D]))
        let h = Kernels.add(attended, residual)

        // 5. y = h + mlp(RMSNorm(h)), mlp(x) = (gelu(x·W[0]) ⊙ x·W[1])·linear as in GatedMLP
        let (normed1, _) = RMSNorm.forward(h, p.preFFWNorm)
        let gate = Self.matmul(normed1, p.mlp.gating.slice(0))
        let up = Self.matmul(normed1, p.mlp.gating.slice(1))
        let mlpOutput = Self.matmul(Kernels.gatedGELU(gate: gate, up: up), p.mlp.linear)
        return Kernels.add(mlpOutput, h)
    }

    // MARK: - Products

    /// x·W[n] for every head n: the q_einsum `BTD,NDH->BTNH`, or one half of kv_einsum.
    ///
    /// - x: f32[R, D], weights: f32[heads, D, H]
    /// - Returns: f32[R, heads, H]
    private static func projectHeads(_ x: Tensor, _ weights: Tensor) -> Tensor {
        let (R, D) = (x.shape[0], x.shape[1])
        let (heads, H) = (weights.shape[0], weights.shape[2])
        var output = Tensor(uninitialized: [R, heads, H])
        for n in 0..<heads {
            if R <= Kernels.gemvRowLimit {
                for r in 0..<R {
                    Kernels.rowTimesMatrix(
                        k: D, n: H, x: x, offsetX: r * D, w: weights, offsetW: n * D * H, ldw: H, y: &output,
                        offsetY: (r * heads + n) * H)
                }
            } else {
                Kernels.gemm(m: R, n: H, k: D, a: x, lda: D, b: weights, offsetB: n * D * H, ldb: H,
                             c: &output, offsetC: n * H, ldc: heads * H)
            }
        }
        return output
    }

    /// x·w, with one matrix-vector product per row when a step has few rows: BLAS's GEMM would
    /// repack w on every call.
    ///
    /// - x: f32[R, In], w: f32[In, Out]
    /// - Returns: f32[R, Out]
    private static func matmul(_ x: Tensor, _ w: Tensor) -> Tensor {
        x.shape[0] <= Kernels.gemvRowLimit ? Kernels.rowMatmul(x, w) : Kernels.matmul(x, w)
    }

    /// x·W for a weight that the bf16 compute mode may hand out as bf16.
    private static func matmul(_ x: Tensor, _ w: Weight) -> Tensor {
        switch w.values {
        case .f32(let tensor): return matmul(x, tensor)
        case .bf16: return Kernels.matmul(x, w)
        }
    }
}
