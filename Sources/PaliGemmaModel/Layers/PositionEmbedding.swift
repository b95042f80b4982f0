import TensorCore

/// The learned position embedding of the ViT, added to every image's tokens.
///
/// Backward returns dx (= dy) and accumulates (+=) the batch sum of dy into dEmbedding.
public enum PositionEmbedding {
    public struct Parameters {
        public var embedding: Tensor  // [1, P, D]

        public init(embedding: Tensor) { self.embedding = embedding }
    }

    public struct Gradients {
        public var embedding: GradientSlice?  // [1, P, D]

        public init(embedding: GradientSlice?) { self.embedding = embedding }
    }

    /// - x: f32[B, P, D]
    /// - Returns: x + embedding, f32[B, P, D]
    public static func forward(_ x: Tensor, _ p: Parameters) -> Tensor {
        var y = x
        Kernels.addBroadcast(&y, p.embedding)
        return y
    }

    /// - dy: f32[B, P, D]
    /// - Returns: dx f32[B, P, D]
    public static func backward(_ dy: Tensor, _ g: Gradients) -> Tensor {
        if let dEmbedding = g.embedding { Kernels.accumulateRowSums(dy, into: dEmbedding) }
        return dy
    }
}
