import TensorCore

/// One pre-LN SigLIP encoder block: x += MHSA(LN0(x)); x += MLP(LN1(x)).
///
/// Backward returns dx and accumulates (+=) the gradients whose windows are present.
public enum EncoderBlock {
    public struct Parameters {
        public var layerNorm0: LayerNorm.Parameters
        public var attention: VisionAttention.Parameters
        public var layerNorm1: LayerNorm.Parameters
        public var mlp: VisionMLP.Parameters
    }

    public struct Gradients {
        public var layerNorm0: LayerNorm.Gradients
        public var attention: VisionAttention.Gradients
        public var layerNorm1: LayerNorm.Gradients
        public var mlp: VisionMLP.Gradients
    }

    public struct Cache {
        let layerNorm0: LayerNorm.Cache
        let attention: VisionAttention.Cache
        let layerNorm1: LayerNorm.Cache
        let mlp: VisionMLP.Cache
    }

    /// - x: f32[B, P, D]
    /// - Returns: y f32[B, P, D]
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        // 1. h = x + attention(LN0(x))
        let (normed0, ln0) = LayerNorm.forward(x, p.layerNorm0)
        let (attended, attention) = VisionAttention.forward(normed0, p.attention)
        let h = Kernels.add(x, attended)
        // 2. y = h + mlp(LN1(h))
        let (normed1, ln1) = LayerNorm.forward(h, p.layerNorm1)
        let (mlpOut, mlp) = VisionMLP.forward(normed1, p.mlp)
        let y = Kernels.add(h, mlpOut)
        return (y, Cache(layerNorm0: ln0, attention: attention, layerNorm1: ln1, mlp: mlp))
    }

    /// - dy: f32[B, P, D]
    /// - Returns: dx f32[B, P, D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        // 2'. dh = dy + LN1ᵀ(mlpᵀ(dy))
        let dNormed1 = VisionMLP.backward(dy, cache.mlp, p.mlp, g.mlp)
        var dh = LayerNorm.backward(dNormed1, cache.layerNorm1, p.layerNorm1, g.layerNorm1)
        Kernels.addInPlace(&dh, dy)
        // 1'. dx = dh + LN0ᵀ(attentionᵀ(dh))
        let dNormed0 = VisionAttention.backward(dh, cache.attention, p.attention, g.attention)
        var dx = LayerNorm.backward(dNormed0, cache.layerNorm0, p.layerNorm0, g.layerNorm0)
        Kernels.addInPlace(&dx, dh)
        return dx
    }
}
