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
    /// - Returns: y f32[B, L, D]
    public static func forward(_ x: Tensor, _ p: Parameters, _ context: GemmaAttention.Context) -> (Tensor, Cache) {
        // 1. h = x + attention(RMSNorm(x))
        let (h, norm0, attention) = PhaseTimer.measure(StepPhase.attention) {
            let (normed0, norm0) = RMSNorm.forward(x, p.preAttentionNorm)
            let (attended, attention) = GemmaAttention.forward(normed0, p.attention, context)
            return (Kernels.add(attended, x), norm0, attention)
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
        // 2'. dh = dy + RMSNormᵀ(mlpᵀ(dy))
        let dh = PhaseTimer.measure(StepPhase.mlp) {
            let dNormed1 = GatedMLP.backward(dy, cache.mlp, p.mlp, g.mlp)
            var dh = RMSNorm.backward(dNormed1, cache.preFFWNorm, p.preFFWNorm, g.preFFWNorm)
            Kernels.addInPlace(&dh, dy)
            return dh
        }
        // 1'. dx = dh + RMSNormᵀ(attentionᵀ(dh))
        return PhaseTimer.measure(StepPhase.attention) {
            let dNormed0 = GemmaAttention.backward(dh, cache.attention, p.attention, g.attention, context)
            var dx = RMSNorm.backward(dNormed0, cache.preAttentionNorm, p.preAttentionNorm, g.preAttentionNorm)
            Kernels.addInPlace(&dx, dh)
            return dx
        }
    }
}
