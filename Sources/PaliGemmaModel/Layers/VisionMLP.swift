import TensorCore

/// The SigLIP MLP block: Dense(D→F) + bias, GELU (tanh approximation), Dense(F→D) + bias.
///
/// Backward returns dx and accumulates (+=) the gradients whose windows are present.
public enum VisionMLP {
    public struct Parameters {
        public var dense0: Dense.Parameters  // kernel [D, F], bias [F]
        public var dense1: Dense.Parameters  // kernel [F, D], bias [D]

        public init(dense0: Dense.Parameters, dense1: Dense.Parameters) {
            self.dense0 = dense0
            self.dense1 = dense1
        }
    }

    public struct Gradients {
        public var dense0: Dense.Gradients
        public var dense1: Dense.Gradients

        public init(dense0: Dense.Gradients, dense1: Dense.Gradients) {
            self.dense0 = dense0
            self.dense1 = dense1
        }
    }

    public struct Cache {
        let dense0: Dense.Cache
        let hidden: Tensor  // [..., F], before GELU
        let dense1: Dense.Cache
    }

    /// - x: f32[..., D]
    /// - Returns: y f32[..., D]
    public static func forward(_ x: Tensor, _ p: Parameters) -> (Tensor, Cache) {
        // 1. hidden = x·W0 + b0
        let (hidden, cache0) = Dense.forward(x, p.dense0)
        // 2. activated = gelu(hidden)
        let activated = Kernels.geluTanh(hidden)
        // 3. y = activated·W1 + b1
        let (y, cache1) = Dense.forward(activated, p.dense1)
        return (y, Cache(dense0: cache0, hidden: hidden, dense1: cache1))
    }

    /// - dy: f32[..., D]
    /// - Returns: dx f32[..., D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ p: Parameters, _ g: Gradients) -> Tensor {
        let dActivated = Dense.backward(dy, cache.dense1, p.dense1, g.dense1)  // 3'
        let dHidden = Kernels.geluTanhBackward(dActivated, cache.hidden)  // 2'
        return Dense.backward(dHidden, cache.dense0, p.dense0, g.dense0)  // 1'
    }
}
