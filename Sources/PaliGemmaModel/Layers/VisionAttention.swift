import TensorCore

/// SigLIP multi-head self-attention (flax `MultiHeadDotProductAttention`): q, k, v and output
/// projections with biases, q scaled by 1/√H, softmax over all keys (no mask).
///
/// Backward returns dx and accumulates (+=) the gradients of the parameters whose windows are
/// present.
public enum VisionAttention {
    public struct Parameters {
        public var query: Dense.Parameters  // kernel [D, N·H], bias [N·H]
        public var key: Dense.Parameters  // kernel [D, N·H], bias [N·H]
        public var value: Dense.Parameters  // kernel [D, N·H], bias [N·H]
        public var out: Dense.Parameters  // kernel [N·H, D], bias [D]
        public var numHeads: Int

        /// Takes kernels in checkpoint layout: q/k/v [D, N, H], biases [N, H], out [N, H, D].
        public init(queryKernel: Tensor, queryBias: Tensor, keyKernel: Tensor, keyBias: Tensor,
                    valueKernel: Tensor, valueBias: Tensor, outKernel: Tensor, outBias: Tensor) {
            self.init(queryKernel: Weight(queryKernel), queryBias: queryBias, keyKernel: Weight(keyKernel), keyBias: keyBias,
                      valueKernel: Weight(valueKernel), valueBias: valueBias, outKernel: Weight(outKernel), outBias: outBias)
        }

        /// The same, with f32 or bf16 kernels.
        public init(queryKernel: Weight, queryBias: Tensor, keyKernel: Weight, keyBias: Tensor,
                    valueKernel: Weight, valueBias: Tensor, outKernel: Weight, outBias: Tensor) {
            let (width, heads, headDim) = (queryKernel.shape[0], queryKernel.shape[1], queryKernel.shape[2])
            let matrix = [width, heads * headDim]
            query = Dense.Parameters(kernel: queryKernel.reshaped(matrix), bias: queryBias.reshaped([heads * headDim]))
            key = Dense.Parameters(kernel: keyKernel.reshaped(matrix), bias: keyBias.reshaped([heads * headDim]))
            value = Dense.Parameters(kernel: valueKernel.reshaped(matrix), bias: valueBias.reshaped([heads * headDim]))
            out = Dense.Parameters(kernel: outKernel.reshaped([heads * headDim, width]), bias: outBias)
            numHeads = heads
        }

        var headDim: Int { query.kernel.shape[1] / numHeads }
    }

    public struct Gradients {
        public var query: Dense.Gradients
        public var key: Dense.Gradients
        public var value: Dense.Gradients
        public var out: Dense.Gradients

        public init(query: Dense.Gradients, key: Dense.Gradients, value: Dense.Gradients, out: Dense.Gradients) {
            self.query = query
            self.key = key
            self.value = value
            self.out = out
        }
    }

    public struct Cache {
        let query: Dense.Cache
        let key: Dense.Cache
        let value: Dense.Cache
        let out: Dense.Cache
        let q: Tensor  // [B, L, N, H], scaled
        let k: Tensor  // [B, L, N, H]
        let v: Tensor  // [B, L, N, H]
        let statistics: AttentionStatistics  // [B, N, L]
    }

    /// - x: f32[B, L, D]
    /// - Returns: y f32[B, L, D]
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        let (B, L) = (x.shape[0], x.shape[1])
        let (N, H) = (p.numHeads, p.headDim)

        // 1. q, k, v = x·W + b: [B, L, N·H]
        var (q, queryCache) = Dense.forward(x, p.query)
        let (k, keyCache) = Dense.forward(x, p.key)
        let (v, valueCache) = Dense.forward(x, p.value)

        // 2. q /= √H
        let scale = 1 / Float(H).squareRoot()
        Kernels.scaleInPlace(&q, by: scale)

        // 3. o = softmax(q·kᵀ)·v per head
        let (o, statistics) = Kernels.attention(
            q: q, k: k, v: v, batch: B, queryLength: L, keyLength: L, queryHeads: N, kvHeads: N, headDim: H, mask: nil)

        // 4. y = o·Wout + bout
        let (y, outCache) = Dense.forward(o.reshaped([B, L, N * H]), p.out)
        let cache = Cache(query: queryCache, key: keyCache, value: valueCache, out: outCache,
                          q: q, k: k, v: v, statistics: statistics)
        return (y, cache)
    }

    /// - dy: f32[B, L, D]
    /// - Returns: dx f32[B, L, D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        let (B, L) = (dy.shape[0], dy.shape[1])
        let (N, H) = (p.numHeads, p.headDim)

        // 4'. output projection
        let dO = Dense.backward(dy, cache.out, p.out, g.out)

        // 3'. attention
        var (dq, dk, dv) = Kernels.attentionBackward(
            dO, q: cache.q, k: cache.k, v: cache.v, statistics: cache.statistics,
            batch: B, queryLength: L, keyLength: L, queryHeads: N, kvHeads: N, headDim: H, mask: nil)

        // 2'. q was scaled by 1/√H
        Kernels.scaleInPlace(&dq, by: 1 / Float(H).squareRoot())

        // 1'. the three projections all read x
        var dx = Dense.backward(dq.reshaped([B, L, N * H]), cache.query, p.query, g.query)
        Kernels.addInPlace(&dx, Dense.backward(dk.reshaped([B, L, N * H]), cache.key, p.key, g.key))
        Kernels.addInPlace(&dx, Dense.backward(dv.reshaped([B, L, N * H]), cache.value, p.value, g.value))
        return dx
    }
}
