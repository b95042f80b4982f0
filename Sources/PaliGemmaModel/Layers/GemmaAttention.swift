import TensorCore

/// Gemma-1 self-attention with multi-query support: q_einsum [N, D, H], kv_einsum [2, K, D, H]
/// (index 0 keys, 1 values), RoPE on q and k, q scaled by H^-0.5 after RoPE, a prefix-LM mask
/// and attn_vec_einsum [N, H, D]. No biases.
///
/// Backward returns dx and accumulates (+=) the gradients whose windows are present; frozen
/// weights (nil windows) cost no weight-gradient GEMM, but dx still flows through them.
public enum GemmaAttention {
    public struct Parameters {
        public var query: Tensor  // q_einsum [N, D, H]
        public var keyValue: Tensor  // kv_einsum [2, K, D, H]
        public var output: Tensor  // attn_vec_einsum [N, H, D]

        public init(query: Tensor, keyValue: Tensor, output: Tensor) {
            self.query = query
            self.keyValue = keyValue
            self.output = output
        }

        var numHeads: Int { query.shape[0] }
        var width: Int { query.shape[1] }
        var headDim: Int { query.shape[2] }
        var numKVHeads: Int { keyValue.shape[1] }
    }

    public struct Gradients {
        public var query: GradientSlice?  // [N, D, H]
        public var keyValue: GradientSlice?  // [2, K, D, H]
        public var output: GradientSlice?  // [N, H, D]

        public init(query: GradientSlice?, keyValue: GradientSlice?, output: GradientSlice?) {
            self.query = query
            self.keyValue = keyValue
            self.output = output
        }
    }

    /// Inputs shared by every layer of one pass.
    public struct Context {
        /// RoPE angles of each token of x, in [B·L] order.
        public let rotary: RotaryTable
        /// Prefix-LM mask [B, L, L].
        public let mask: AttentionMask

        public init(rotary: RotaryTable, mask: AttentionMask) {
            self.rotary = rotary
            self.mask = mask
        }

        /// The last `length` positions of every example as queries (see `QueryTail`).
        public func tail(_ length: Int) -> QueryTail {
            let (B, L) = (mask.batch, mask.queries)
            if length < 1 || length > L { fatalError("GemmaAttention.Context.tail: length \(length) outside 1...\(L)") }
            let rows = (0..<B).flatMap { b in ((L - length)..<L).map { b * L + $0 } }
            var allowed: [Bool] = []
            allowed.reserveCapacity(B * length * L)
            for b in 0..<B {
                allowed += mask.allowed[((b * L + L - length) * L)..<((b + 1) * L * L)]
            }
            return QueryTail(
                length: length, rows: rows, rotary: rotary.rows(rows),
                mask: AttentionMask(batch: B, queries: length, keys: L, allowed: allowed))
        }
    }

    /// Queries restricted to the last `length` positions of each example, while keys and values
    /// cover the whole sequence: the last decoder layer of a training pass needs outputs only
    /// where the loss reads logits.
    public struct QueryTail {
        public let length: Int
        /// Rows of the tail in the flattened [B·L] sequence, example by example.
        public let rows: [Int]
        /// RoPE angles of the tail rows, [B·length].
        public let rotary: RotaryTable
        /// Prefix-LM mask of the tail queries over all keys, [B, length, L].
        public let mask: AttentionMask
    }

    public struct Cache {
        let x: Tensor  // [B, L, D]
        let queryInput: Tensor  // [B, Lq, D]: x, or its tail rows
        let q: Tensor  // [B, Lq, N, H], rotated and scaled
        let k: Tensor  // [B, L, K, H], rotated
        let v: Tensor  // [B, L, K, H]
        let o: Tensor  // [B, Lq, N·H], attention output before attn_vec_einsum
        let statistics: AttentionStatistics  // [B, N, Lq]
    }

    /// - x: f32[B, L, D]
    /// - tail: when given, outputs only for its Lq queries per example
    /// - Returns: y f32[B, Lq, D] (Lq = L without a tail)
    public static func forward(_ x: Tensor, _ p: Parameters, _ context: Context, tail: QueryTail? = nil) -> (Tensor, Cache) {
        let (B, L, D) = (x.shape[0], x.shape[1], x.shape[2])
        let (N, K, H) = (p.numHeads, p.numKVHeads, p.headDim)
        let Lq = tail?.length ?? L

        // 1-3. q, k, v projections, RoPE, q ·= H^-0.5
        let (queryInput, q, k, v) = projectQueryKeyValue(x, p, context.rotary, tail: tail)

        // 4. o = softmax(mask(q·kᵀ))·v
        let (o, statistics) = Kernels.attention(
            q: q, k: k, v: v, batch: B, queryLength: Lq, keyLength: L, queryHeads: N, kvHeads: K, headDim: H,
            mask: tail?.mask ?? context.mask)

        // 5. y = o·Wo, with Wo [N, H, D] read as [N·H, D]
        let flatOutput = o.reshaped([B, Lq, N * H])
        let y = Kernels.matmul(flatOutput, p.output.reshaped([N * H, D]))
        return (y, Cache(x: x, queryInput: queryInput, q: q, k: k, v: v, o: flatOutput, statistics: statistics))
    }

    /// - dy: f32[B, L, D]
    /// - Returns: dx f32[B, L, D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients, _ context: Context) -> Tensor {
        backward(dy, cache, p, g, context, tail: nil, inputGradient: true)!
    }

    /// - dy: f32[B, Lq, D], Lq the tail length (L without a tail)
    /// - inputGradient: false skips dx (nothing below the layer needs it)
    /// - Returns: dx f32[B, L, D], or nil when `inputGradient` is false
    public static func backward(
        _ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients, _ context: Context,
        tail: QueryTail?, inputGradient: Bool
    ) -> Tensor? {
        let (B, Lq, D) = (dy.shape[0], dy.shape[1], dy.shape[2])
        let L = cache.x.shape[1]
        let (N, K, H) = (p.numHeads, p.numKVHeads, p.headDim)
        let (M, Mq) = (B * L, B * Lq)

        // 5'. y = o·Wo  →  dWo += oᵀ·dy, dO = dy·Woᵀ
        let outputMatrix = p.output.reshaped([N * H, D])
        if let dOutput = g.output {
            Kernels.accumulateWeightGradient(cache.o, dy, into: dOutput.reshaped([N * H, D]))
        }
        let dO = Kernels.matmul(dy, transposed: outputMatrix)

        // 4'. attention
        var (dq, dk, dv) = Kernels.attentionBackward(
            dO, q: cache.q, k: cache.k, v: cache.v, statistics: cache.statistics,
            batch: B, queryLength: Lq, keyLength: L, queryHeads: N, kvHeads: K, headDim: H,
            mask: tail?.mask ?? context.mask)

        // 3'. q was scaled by H^-0.5
        Kernels.scaleInPlace(&dq, by: queryScale(headDim: H))

        // 2'. RoPE is a rotation: its backward rotates by the opposite angle
        Kernels.applyRotary(&dq, table: tail?.rotary ?? context.rotary, heads: N, inverse: true)
        Kernels.applyRotary(&dk, table: context.rotary, heads: K, inverse: true)

        // 1'. projections: dx = d(q|k|v)·Wᵀ, dW += xᵀ·d(q|k|v). Without a tail q, k and v share
        //     one matrix [Wq | Wk | Wv] [D, (N + 2K)·H]; with one, q reads only the tail rows.
        if let tail {
            let dKeyValue = Kernels.concatenateColumns([dk.reshaped([M, K * H]), dv.reshaped([M, K * H])])
            let dQuery = dq.reshaped([Mq, N * H])
            accumulateProjectionGradient(cache.x, dKeyValue, into: [(2 * K, g.keyValue)])
            accumulateProjectionGradient(cache.queryInput, dQuery, into: [(N, g.query)])
            if !inputGradient { return nil }
            var dx = Kernels.matmul(dKeyValue, transposed: keyValueProjection(p))
            Kernels.addRows(Kernels.matmul(dQuery, transposed: queryProjection(p)), at: tail.rows, into: &dx)
            return dx.reshaped([B, L, D])
        }
        let dProjected = Kernels.concatenateColumns([
            dq.reshaped([M, N * H]), dk.reshaped([M, K * H]), dv.reshaped([M, K * H]),
        ])
        accumulateProjectionGradient(cache.x, dProjected, into: [(N, g.query), (2 * K, g.keyValue)])
        if !inputGradient { return nil }
        return Kernels.matmul(dProjected, transposed: stackedProjection(p)).reshaped([B, L, D])
    }

    /// dW += xᵀ·dProjected for weights laid out as `headsAsColumns`, when any is trainable.
    private static func accumulateProjectionGradient(
        _ x: Tensor, _ dProjected: Tensor, into slices: [(heads: Int, gradient: GradientSlice?)]
    ) {
        if slices.allSatisfy({ $0.gradient == nil }) { return }
        let (D, width) = (x.shape[x.rank - 1], dProjected.shape[dProjected.rank - 1])
        let rows = x.count / D
        var dStacked = Tensor(uninitialized: [D, width])
        Kernels.gemm(m: D, n: width, k: rows, a: x, lda: D, transposeA: true, b: dProjected, ldb: width, c: &dStacked, ldc: width)
        Kernels.accumulateColumnsAsHeads(dStacked, into: slices)
    }

    /// The query, key and value weights side by side: [D, (N + 2K)·H], columns in the order
    /// of the heads of q_einsum [N, D, H], then kv_einsum [2, K, D, H] read as [2K, D, H].
    static func stackedProjection(_ p: Parameters) -> Tensor {
        let (K, D, H) = (p.numKVHeads, p.width, p.headDim)
        return Kernels.headsAsColumns([p.query, p.keyValue.reshaped([2 * K, D, H])])
    }

    /// The query weights as [D, N·H].
    static func queryProjection(_ p: Parameters) -> Tensor {
        Kernels.headsAsColumns([p.query])
    }

    /// The key and value weights as [D, 2K·H].
    static func keyValueProjection(_ p: Parameters) -> Tensor {
        Kernels.headsAsColumns([p.keyValue.reshaped([2 * p.numKVHeads, p.width, p.headDim])])
    }

    /// Projects x to q f32[B, Lq, N, H] (rotated, scaled by H^-0.5) and k, v f32[B, L, K, H]
    /// (k rotated), with one RoPE table row per token of x; also returns the rows q was
    /// projected from ([B, Lq, D]: x itself without a tail).
    static func projectQueryKeyValue(_ x: Tensor, _ p: Parameters, _ rotary: RotaryTable, tail: QueryTail? = nil)
        -> (queryInput: Tensor, q: Tensor, k: Tensor, v: Tensor)
    {
        let (B, L, D) = (x.shape[0], x.shape[1], x.shape[2])
        let (N, K, H) = (p.numHeads, p.numKVHeads, p.headDim)
        if D != p.width { fatalError("GemmaAttention: x \(x.shape) does not match q_einsum \(p.query.shape)") }
        let M = B * L

        // 1. [q | k | v] = x·[Wq | Wk | Wv] in one product, then split by columns; with a tail,
        //    k and v from every row and q from the tail rows only
        var q: Tensor
        var k: Tensor
        let v: Tensor
        let queryInput: Tensor
        if let tail {
            let keyValue = Kernels.splitColumns(Kernels.matmul(x.reshaped([M, D]), keyValueProjection(p)), widths: [K * H, K * H])
            (k, v) = (keyValue[0].reshaped([B, L, K, H]), keyValue[1].reshaped([B, L, K, H]))
            queryInput = Kernels.selectRows(x, tail.rows).reshaped([B, tail.length, D])
            q = Kernels.matmul(queryInput, queryProjection(p)).reshaped([B, tail.length, N, H])
        } else {
            let parts = Kernels.splitColumns(Kernels.matmul(x.reshaped([M, D]), stackedProjection(p)), widths: [N * H, K * H, K * H])
            (q, k, v) = (parts[0].reshaped([B, L, N, H]), parts[1].reshaped([B, L, K, H]), parts[2].reshaped([B, L, K, H]))
            queryInput = x
        }

        // 2. RoPE on q and k
        Kernels.applyRotary(&q, table: tail?.rotary ?? rotary, heads: N)
        Kernels.applyRotary(&k, table: rotary, heads: K)

        // 3. q ·= H^-0.5
        Kernels.scaleInPlace(&q, by: queryScale(headDim: H))
        return (queryInput, q, k, v)
    }

    /// big_vision's `query_pre_attn_norm="rsqrt_head_dim"`: H^-0.5.
    static func queryScale(headDim: Int) -> Float { 1 / Float(headDim).squareRoot() }
}
