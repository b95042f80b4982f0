import TensorCore

/// One Gemma-1 decoder block: h = x + attn(RMSNorm(x)); y = h + mlp(RMSNorm(h)).
///
/// Backward returns dx and accumulates (+=) the gradients whose windows are present.
public enum DecoderBlock {
    public struct Parameters {
        public var preAttentionNorm: RMSNorm.Parameters
        public var attention: GemmaAttention.Parameters
        public var preFFWNorm: RMSNorm.Parameters
        public var mlp: GatedMLP.Parameters
    }

    public struct Gradients {
        public var preAttentionNorm: RMSNorm.Gradients
        public var attention: GemmaAttention.Gradients
        public var preFFWNorm: RMSNorm.Gradients
        public var mlp: GatedMLP.Gradients
    }

    public struct Cache {
        let preAttentionNorm: RMSNorm.Cache
        let attention: GemmaAttention.Cache
        let preFFWNorm: RMSNorm.Cache
        let mlp: GatedMLP.Cache
    }

    /// - x: f32[B, L, D]
    /// - tail: when given, outputs only for its last Lq positions of each example
    /// - Returns: y f32[B, Lq, D] (Lq = L without a tail)
    public static func forward(
        _ x: Tensor, _ p: Parameters, _ context: GemmaAttention.Context, tail: GemmaAttention.QueryTail? = nil
    ) -> (Tensor, Cache) {
        // 1. h = x + attention(RMSNorm(x)), at the tail rows when there is a tail
        let (h, norm0, attention) = PhaseTimer.measure(StepPhase.attention) {
            let (normed0, norm0) = RMSNorm.forward(x, p.preAttentionNorm)
            let (attended, attention) = GemmaAttention.forward(normed0, p.attention, context, tail: tail)
            let residual = tail.map { Kernels.selectRows(x, $0.rows).reshaped(attended.shape) } ?? x
            return (Kernels.add(attended, residual), norm0, attention)
        }
        // 2. y = h + mlp(RMSNorm(h))
        let (y, norm1, mlp) = PhaseTimer.measure(StepPhase.mlp) {
            let (normed1, norm1) = RMSNorm.forward(h, p.preFFWNorm)
            let (mlpOut, mlp) = GatedMLP.forward(normed1, p.mlp)
            return (Kernels.add(mlpOut, h), norm1, mlp)
        }
        return (y, Cache(preAttentionNorm: norm0, attention: attention, preFFWNorm: norm1, mlp: mlp))
    }

    /// - dy: f32[B, L, D]
    /// - Returns: dx f32[B, L, D]
    public static func backward(
        _ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients, _ context: GemmaAttention.Context
    ) -> Tensor {
        backward(dy, cache, p, g, context, tail: nil, inputGradient: true)!
    }

    /// - dy: f32[B, Lq, D], Lq the tail length (L without a tail)
    /// - inputGradient: false skips dx when the pre-attention norm is frozen too (nothing
    ///   below the block needs it)
    /// - Returns: dx f32[B, L, D], or nil when it was skipped
    public static func backward(
        _ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients, _ context: GemmaAttention.Context,
        tail: GemmaAttention.QueryTail?, inputGradient: Bool
    ) -> Tensor? {
        // 2'. dh = dy + RMSNormᵀ(mlpᵀ(dy))
        let dh = PhaseTimer.measure(StepPhase.mlp) {
            let dNormed1 = GatedMLP.backward(dy, cache.mlp, p.mlp, g.mlp)
            var dh = RMSNorm.backward(dNormed1, cache.preFFWNorm, p.preFFWNorm, g.preFFWNorm)
            Kernels.addInPlace(&dh, dy)
            return dh
        }
        // 1'. dx = dh + RMSNormᵀ(attentionᵀ(dh)), dh added at the tail rows when there is a tail
        return PhaseTimer.measure(StepPhase.attention) {
            let needNormed = inputGradient || g.preAttentionNorm.scale != nil
            guard let dNormed0 = GemmaAttention.backward(
                dh, cache.attention, p.attention, g.attention, context, tail: tail, inputGradient: needNormed)
            else { return nil }
            var dx = RMSNorm.backward(dNormed0, cache.preAttentionNorm, p.preAttentionNorm, g.preAttentionNorm)
            if !inputGradient { return nil }
            if let tail {
                Kernels.addRows(dh, at: tail.rows, into: &dx)
            } else {
                Kernels.addInPlace(&dx, dh)
            }
            return dx
        }
    }
}
