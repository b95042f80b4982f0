import TensorCore

/// A dense layer with bias: y = x·kernel + bias (the ViT MLP layers and the image head).
///
/// Backward returns dx and accumulates (+=) dKernel and dBias into the gradient windows that
/// are present; a nil window means the parameter is frozen and its gradient is not computed.
public enum Dense {
    public struct Parameters {
        public var kernel: Weight  // [In, Out]
        public var bias: Tensor  // [Out]

        public init(kernel: Weight, bias: Tensor) {
            self.kernel = kernel
            self.bias = bias
        }

        public init(kernel: Tensor, bias: Tensor) {
            self.init(kernel: Weight(kernel), bias: bias)
        }
    }

    public struct Gradients {
        public var kernel: GradientSlice?  // [In, Out]
        public var bias: GradientSlice?  // [Out]

        public init(kernel: GradientSlice?, bias: GradientSlice?) {
            self.kernel = kernel
            self.bias = bias
        }
    }

    public struct Cache {
        let x: Tensor  // [..., In]
    }

    /// - x: f32[..., In]
    /// - Returns: y f32[..., Out]
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        // 1. y = x·kernel
        var y = Kernels.matmul(x, p.kernel)
        // 2. y += bias
        Kernels.addBroadcast(&y, p.bias)
        return (y, Cache(x: x))
    }

    /// - dy: f32[..., Out]
    /// - Returns: dx f32[..., In]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        // 2'. bias is added to every row: dBias += Σ_rows dy
        if let dBias = g.bias { Kernels.accumulateRowSums(dy, into: dBias) }
        // 1'. dKernel += xᵀ·dy; dx = dy·kernelᵀ
        if let dKernel = g.kernel { Kernels.accumulateWeightGradient(cache.x, dy, into: dKernel) }
        return Kernels.matmul(dy, transposed: p.kernel)
    }
}
