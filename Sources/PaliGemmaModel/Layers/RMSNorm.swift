import TensorCore

/// Gemma's RMSNorm over the last axis: y = x/√(mean(x²) + 1e-6)·(1 + scale).
///
/// The stored `scale` is an offset from a gain of 1 (zero-initialised). Backward returns dx and
/// accumulates (+=) dScale when its window is present.
public enum RMSNorm {
    public struct Parameters {
        public var scale: Tensor  // [D]

        public init(scale: Tensor) { self.scale = scale }
    }

    public struct Gradients {
        public var scale: GradientSlice?  // [D]

        public init(scale: GradientSlice?) { self.scale = scale }
    }

    public struct Cache {
        let x: Tensor  // [..., D]
        let rstd: Tensor  // [rows]
    }

    /// - x: f32[..., D]
    /// - Returns: y f32[..., D]
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        let (y, rstd) = Kernels.rmsNorm(x, scale: p.scale, epsilon: PaliGemmaConfig.normEpsilon)
        return (y, Cache(x: x, rstd: rstd))
    }

    /// - dy: f32[..., D]
    /// - Returns: dx f32[..., D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        Kernels.rmsNormBackward(dy, x: cache.x, rstd: cache.rstd, scale: p.scale, dScale: g.scale)
    }
}
