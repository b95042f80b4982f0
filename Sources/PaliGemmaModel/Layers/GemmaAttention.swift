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
    }

    public struct Cache {
        let x: Tensor  // [B, L, D]
        let q: Tensor  // [B, L, N, H], rotated and scaled
        let k: Tensor  // [B, L, K, H], rotated
        let v: Tensor  // [B, L, K, H]
        let o: Tensor  // [B, L, N·H], attention output before attn_vec_einsum
        let statistics: AttentionStatistics  // [B, N, L]
    }

    /// - x: f32[B, L, D]
    /// - Returns: y f32[B, L, D]
    public static func forward(_ x: Tensor, _ p: Parameters, _ context: Context) -> (Tensor, Cache) {
        let (B, L, D) = (x.shape[0], x.shape[1], x.shape[2])
        let (N, K, H) = (p.numHeads, p.numKVHeads, p.headDim)

        // 1-3. q, k, v projections, RoPE, q ·= H^-0.5
        let (q, k, v) = projectQueryKeyValue(x, p, context.rotary)

        // 4. o = softmax(mask(q·kᵀ))·v
        let (o, statistics) = Kernels.attention(
            q: q, k: k, v: v, batch: B, queryLength: L, keyLength: L, queryHeads: N, kvHeads: K, headDim: H,
            mask: context.mask)

        // 5. y = o·Wo, with Wo [N, H, D] read as [N·H, D]
        let flatOutput = o.reshaped([B, L, N * H])
        let y = Kernels.matmul(flatOutput, p.output.reshaped([N * H, D]))
        return (y, Cache(x: x, q: q, k: k, v: v, o: flatOutput, statistics: statistics))
    }

    /// - dy: f32[B, L, D]
    /// - Returns: dx f32[B, L, D]
    public static func backward(
        _ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients, _ context: Context
    ) -> Tensor {
        let (B, L, D) = (dy.shape[0], dy.shape[1], dy.shape[2])
        let (N, K, H) = (p.numHeads, p.numKVHeads, p.headDim)
        let M = B * L

        // 5'. y = o·Wo  →  dWo += oᵀ·dy, dO = dy·Woᵀ
        let outputMatrix = p.output.reshaped([N * H, D])
        if let dOutput = g.output {
            Kernels.accumulateWeightGradient(cache.o, dy, into: dOutput.reshaped([N * H, D]))
        }
        let dO = Kernels.matmul(dy, transposed: outputMatrix)

        // 4'. attention
        var (dq, dk, dv) = Kernels.attentionBackward(
            dO, q: cache.q, k: cache.k, v: cache.v, statistics: cache.statistics,
            batch: B, queryLength: L, keyLength: L, queryHeads: N, kvHeads: K, headDim: H, mask: context.mask)

        // 3'. q was scaled by H^-0.5
        Kernels.scaleInPlace(&dq, by: queryScale(headDim: H))

        // 2'. RoPE is a rotation: its backward rotates by the opposite angle
        Kernels.applyRotary(&dq, table: context.rotary, heads: N, inverse: true)
        Kernels.applyRotary(&dk, table: context.rotary, heads: K, inverse: true)

        // 1'. projections: dx = Σ d(q|k|v)·Wᵀ, dW += xᵀ·d(q|k|v)
        var dx = Tensor(zeros: [B, L, D])
        for n in 0..<N {
            Kernels.gemm(m: M, n: D, k: H, a: dq, offsetA: n * H, lda: N * H, b: p.query, offsetB: n * D * H, ldb: H,
                         transposeB: true, beta: 1, c: &dx, ldc: D)
            if let dQuery = g.query {
                Kernels.gemm(m: D, n: H, k: M, a: cache.x, lda: D, transposeA: true, b: dq, offsetB: n * H, ldb: N * H,
                             accumulateInto: dQuery, offsetC: n * D * H, ldc: H)
            }
        }
        for j in 0..<K {
            for (part, gradient) in [(0, dk), (1, dv)] {
                let weightOffset = (part * K + j) * D * H
                Kernels.gemm(m: M, n: D, k: H, a: gradient, offsetA: j * H, lda: K * H,
                             b: p.keyValue, offsetB: weightOffset, ldb: H, transposeB: true, beta: 1, c: &dx, ldc: D)
                if let dKeyValue = g.keyValue {
                    Kernels.gemm(m: D, n: H, k: M, a: cache.x, lda: D, transposeA: true,
                                 b: gradient, offsetB: j * H, ldb: K * H,
                                 accumulateInto: dKeyValue, offsetC: weightOffset, ldc: H)
                }
            }
        }
        return dx
    }

    /// Projects x to q f32[B, L, N, H] (rotated, scaled by H^-0.5) and k, v f32[B, L, K, H]
    /// (k rotated), with one RoPE table row per token of x.
    static func projectQueryKeyValue(_ x: Tensor, _ p: Parameters, _ rotary: RotaryTable)
        -> (q: Tensor, k: Tensor, v: Tensor)
    {
        let (B, L, D) = (x.shape[0], x.shape[1], x.shape[2])
        let (N, K, H) = (p.numHeads, p.numKVHeads, p.headDim)
        if D != p.width { fatalError("GemmaAttention: x \(x.shape) does not match q_einsum \(p.query.shape)") }
        let M = B * L

        // 1. q[b, l, n] = x·Wq[n]; k[b, l, j] = x·Wkv[0, j]; v[b, l, j] = x·Wkv[1, j]
        var q = Tensor(uninitialized: [B, L, N, H])
        var k = Tensor(uninitialized: [B, L, K, H])
        var v = Tensor(uninitialized: [B, L, K, H])
        for n in 0..<N {
            Kernels.gemm(m: M, n: H, k: D, a: x, lda: D, b: p.query, offsetB: n * D * H, ldb: H,
                         c: &q, offsetC: n * H, ldc: N * H)
        }
        for j in 0..<K {
            Kernels.gemm(m: M, n: H, k: D, a: x, lda: D, b: p.keyValue, offsetB: j * D * H, ldb: H,
                         c: &k, offsetC: j * H, ldc: K * H)
            Kernels.gemm(m: M, n: H, k: D, a: x, lda: D, b: p.keyValue, offsetB: (K + j) * D * H, ldb: H,
                         c: &v, offsetC: j * H, ldc: K * H)
        }

        // 2. RoPE on q and k
        Kernels.applyRotary(&q, table: rotary, heads: N)
        Kernels.applyRotary(&k, table: rotary, heads: K)

        // 3. q ·= H^-0.5
        Kernels.scaleInPlace(&q, by: queryScale(headDim: H))
        return (q, k, v)
    }

    /// big_vision's `query_pre_attn_norm="rsqrt_head_dim"`: H^-0.5.
    static func queryScale(headDim: Int) -> Float { 1 / Float(headDim).squareRoot() }
}
