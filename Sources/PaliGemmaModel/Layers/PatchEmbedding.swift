import TensorCore

/// The ViT stem: a p×p convolution with stride p (VALID) and bias, as patch extraction + GEMM.
///
/// The kernel is HWIO [p, p, C, D], which read row-major is the [p·p·C, D] matrix that
/// multiplies patches flattened as (row, column, channel). Images are inputs, not parameters,
/// so backward only accumulates (+=) dKernel and dBias and returns no input gradient.
public enum PatchEmbedding {
    public struct Parameters {
        public var kernel: Weight  // [p, p, C, D]
        public var bias: Tensor  // [D]

        public init(kernel: Weight, bias: Tensor) {
            self.kernel = kernel
            self.bias = bias
        }

        public init(kernel: Tensor, bias: Tensor) {
            self.init(kernel: Weight(kernel), bias: bias)
        }
    }

    public struct Gradients {
        public var kernel: GradientSlice?  // [p, p, C, D]
        public var bias: GradientSlice?  // [D]

        public init(kernel: GradientSlice?, bias: GradientSlice?) {
            self.kernel = kernel
            self.bias = bias
        }
    }

    public struct Cache {
        /// Flattened patches, kept only when the kernel is trainable: [B, P, p·p·C].
        let patches: Tensor?
    }

    /// - images: f32[B, height, width, C] in [-1, 1]
    /// - Returns: tokens f32[B, P, D], P = (height/p)·(width/p) in row-major grid order
    public static func forward(_ images: Tensor, _ p: Parameters, keepPatches: Bool) -> (Tensor, Cache) {
        let kernelShape = p.kernel.shape
        let patchSize = kernelShape[0]
        let (kernelRows, width) = (kernelShape[0] * kernelShape[1] * kernelShape[2], kernelShape[3])
        if images.rank != 4 || images.shape[3] * patchSize * patchSize != kernelRows {
            fatalError("PatchEmbedding: images \(images.shape) do not match kernel \(kernelShape)")
        }
        // 1. patches = im2col(images): [B, P, p·p·C]
        let patches = Kernels.extractPatches(images, patchSize: patchSize)
        // 2. tokens = patches·kernel + bias
        var tokens = Kernels.matmul(patches, p.kernel.reshaped([kernelRows, width]))
        Kernels.addBroadcast(&tokens, p.bias)
        return (tokens, Cache(patches: keepPatches ? patches : nil))
    }

    /// - dy: f32[B, P, D]
    public static func backward(_ dy: Tensor, _ cache: Cache, _ g: Gradients) {
        // 2'. dBias += Σ dy; dKernel += patchesᵀ·dy
        if let dBias = g.bias { Kernels.accumulateRowSums(dy, into: dBias) }
        if let dKernel = g.kernel {
            guard let patches = cache.patches else {
                fatalError("PatchEmbedding.backward: the kernel is trainable but the forward pass kept no patches")
            }
            Kernels.accumulateWeightGradient(patches, dy, into: dKernel)
        }
    }
}
