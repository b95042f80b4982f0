import TensorCore

/// LayerNorm over the last axis with gain and bias, eps 1e-6 (flax's default, used by SigLIP).
///
/// Backward returns dx and accumulates (+=) dScale and dBias into the windows that are present.
public enum LayerNorm {
    public struct Parameters {
        public var scale: Tensor  // [D]
        public var bias: Tensor  // [D]

        public init(scale: Tensor, bias: Tensor) {
            self.scale = scale
            self.bias = bias
        }
    }

    public struct Gradients {
        public var scale: GradientSlice?  // [D]
        public var bias: GradientSlice?  // [D]

        public init(scale: GradientSlice?, bias: GradientSlice?) {
            self.scale = scale
            self.bias = bias
        }
    }

    public struct Cache {
        let x: Tensor  // [..., D]
        let mean: Tensor  // [rows]
        let rstd: Tensor  // [rows]
    }

    /// - x: f32[..., D]
    /// - Returns: y f32[..., D] = (x − mean)/√(var + eps)·scale + bias
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        let (y, mean, rstd) = Kernels.layerNorm(x, scale: p.scale, bias: p.bias, epsilon: PaliGemmaConfig.normEpsilon)
        return (y, Cache(x: x, mean: mean, rstd: rstd))
    }

    /// - dy: f32[..., D]
    /// - Returns: dx f32[..., D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        Kernels.layerNormBackward(
            dy, x: cache.x, mean: cache.mean, rstd: cache.rstd, scale: p.scale, dScale: g.scale, dBias: g.bias)
    }
}
