import TensorCore

/// Gemma's gated feed-forward block: (gelu(x·W[0]) ⊙ x·W[1])·linear, with gating_einsum
/// W [2, D, F] (index 0 gate, 1 up) and linear [F, D]. No biases.
///
/// Backward returns dx and accumulates (+=) the gradients whose windows are present.
public enum GatedMLP {
    public struct Parameters {
        public var gating: Weight  // [2, D, F]
        public var linear: Weight  // [F, D]

        public init(gating: Weight, linear: Weight) {
            self.gating = gating
            self.linear = linear
        }

        public init(gating: Tensor, linear: Tensor) {
            self.init(gating: Weight(gating), linear: Weight(linear))
        }
    }

    public struct Gradients {
        public var gating: GradientSlice?  // [2, D, F]
        public var linear: GradientSlice?  // [F, D]

        public init(gating: GradientSlice?, linear: GradientSlice?) {
            self.gating = gating
            self.linear = linear
        }
    }

    public struct Cache {
        let x: Tensor  // [..., D]
        let gate: Tensor  // [..., F], before GELU
        let up: Tensor  // [..., F]
    }

    /// - x: f32[..., D]
    /// - Returns: y f32[..., D]
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        // 1. gate = x·W[0]; up = x·W[1]
        let gate = Kernels.matmul(x, p.gating.slice(0))
        let up = Kernels.matmul(x, p.gating.slice(1))
        // 2. h = gelu(gate)·up
        let h = Kernels.gatedGELU(gate: gate, up: up)
        // 3. y = h·linear
        let y = Kernels.matmul(h, p.linear)
        return (y, Cache(x: x, gate: gate, up: up))
    }

    /// - dy: f32[..., D]
    /// - Returns: dx f32[..., D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        // 3'. dLinear += hᵀ·dy (h recomputed from the cache); dh = dy·linearᵀ
        if let dLinear = g.linear {
            let h = Kernels.gatedGELU(gate: cache.gate, up: cache.up)
            Kernels.accumulateWeightGradient(h, dy, into: dLinear)
        }
        let dh = Kernels.matmul(dy, transposed: p.linear)

        // 2'. h = gelu(gate)·up
        let (dGate, dUp) = Kernels.gatedGELUBackward(dh, gate: cache.gate, up: cache.up)

        // 1'. dx = dGate·W[0]ᵀ + dUp·W[1]ᵀ; dW[i] += xᵀ·d(gate|up)
        if let dGating = g.gating {
            Kernels.accumulateWeightGradient(cache.x, dGate, into: dGating.slice(0))
            Kernels.accumulateWeightGradient(cache.x, dUp, into: dGating.slice(1))
        }
        var dx = Kernels.matmul(dGate, transposed: p.gating.slice(0))
        Kernels.addInPlace(&dx, Kernels.matmul(dUp, transposed: p.gating.slice(1)))
        return dx
    }
}
