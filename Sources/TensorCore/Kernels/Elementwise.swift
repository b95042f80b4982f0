import Foundation

/// Elementwise kernels and row reductions, split across threads in contiguous chunks.
extension CPUKernels {
    /// Elements per thread below which a loop stays on one thread.
    static let elementwiseChunk = 1 << 15

    // MARK: - Sums and scaling

    /// x += y for tensors of equal element count.
    public static func addInPlace(_ x: inout Tensor, _ y: Tensor) {
        if x.count != y.count { fatalError("addInPlace: shapes \(x.shape) and \(y.shape) differ in size") }
        let out = x.mutablePointer()
        let source = y.pointer
        Threading.parallelFor(x.count, minimumChunk: elementwiseChunk) { range in
            for i in range { out[i] += source[i] }
        }
    }

    /// Returns a + b for tensors of equal element count, shaped like `a`.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        var sum = a
        addInPlace(&sum, b)
        return sum
    }

    /// x += y broadcast over the leading axes: x is viewed as [x.count / y.count, y.count].
    ///
    /// Adds a bias `[N]` to `[..., N]`, or a position embedding `[P, D]` to `[B, P, D]`.
    public static func addBroadcast(_ x: inout Tensor, _ y: Tensor) {
        let width = y.count
        if width == 0 || x.count % width != 0 {
            fatalError("addBroadcast: \(y.shape) does not tile \(x.shape)")
        }
        let out = x.mutablePointer()
        let source = y.pointer
        Threading.parallelFor(x.count / width, minimumChunk: max(1, elementwiseChunk / width)) { rows in
            for row in rows {
                let target = out + row * width
                for j in 0..<width { target[j] += source[j] }
            }
        }
    }

    /// x *= factor.
    public static func scaleInPlace(_ x: inout Tensor, by factor: Float) {
        let out = x.mutablePointer()
        Threading.parallelFor(x.count, minimumChunk: elementwiseChunk) { range in
            for i in range { out[i] *= factor }
        }
    }

    // MARK: - Accumulation into gradients

    /// gradient += factor·t, for a window of the same element count.
    public static func accumulate(_ t: Tensor, into gradient: GradientSlice, scale factor: Float = 1) {
        if t.count != gradient.count {
            fatalError("accumulate: tensor \(t.shape) does not match gradient window \(gradient.shape)")
        }
        let out = gradient.pointer
        let source = t.pointer
        withExtendedLifetime(gradient.buffer) {
            Threading.parallelFor(t.count, minimumChunk: elementwiseChunk) { range in
                for i in range { out[i] += factor * source[i] }
            }
        }
    }

    /// gradient += Σ over rows of t, with t viewed as [t.count / gradient.count, gradient.count].
    ///
    /// The gradient of a broadcast add: a bias or a position embedding.
    public static func accumulateRowSums(_ t: Tensor, into gradient: GradientSlice) {
        let width = gradient.count
        if width == 0 || t.count % width != 0 {
            fatalError("accumulateRowSums: gradient window \(gradient.shape) does not tile \(t.shape)")
        }
        let rows = t.count / width
        let out = gradient.pointer
        let source = t.pointer
        withExtendedLifetime(gradient.buffer) {
            // Each thread owns a range of columns and walks all rows, so no partial sums are needed.
            Threading.parallelFor(width, minimumChunk: max(16, elementwiseChunk / max(1, rows))) { columns in
                for row in 0..<rows {
                    let line = source + row * width
                    for j in columns { out[j] += line[j] }
                }
            }
        }
    }

    // MARK: - GELU (tanh approximation)

    static let geluCoefficient: Float = 0.044715
    static let sqrtTwoOverPi: Float = 0.7978845608028654

    /// GELU with the tanh approximation, as `jax.nn.gelu(approximate=True)`:
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static func geluTanh(_ x: Tensor) -> Tensor {
        var y = Tensor(uninitialized: x.shape)
        let out = y.mutablePointer()
        let source = x.pointer
        Threading.parallelFor(x.count, minimumChunk: elementwiseChunk / 4) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                VectorMath.store(gelu(VectorMath.load(source + i)), out + i)
                i += 16
            }
            while i < range.upperBound {
                out[i] = gelu(source[i])
                i += 1
            }
        }
        return y
    }

    /// dx = dy·gelu'(x).
    public static func geluTanhBackward(_ dy: Tensor, _ x: Tensor) -> Tensor {
        if dy.count != x.count { fatalError("geluTanhBackward: dy \(dy.shape) and x \(x.shape) differ") }
        var dx = Tensor(uninitialized: x.shape)
        let out = dx.mutablePointer()
        let source = x.pointer
        let upstream = dy.pointer
        Threading.parallelFor(x.count, minimumChunk: elementwiseChunk / 4) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let derivative = geluAndDerivative(VectorMath.load(source + i)).derivative
                VectorMath.store(VectorMath.load(upstream + i) * derivative, out + i)
                i += 16
            }
            while i < range.upperBound {
                out[i] = upstream[i] * geluDerivative(source[i])
                i += 1
            }
        }
        return dx
    }

    /// h = gelu(gate)·up, the gated MLP activation.
    public static func gatedGELU(gate: Tensor, up: Tensor) -> Tensor {
        if gate.count != up.count { fatalError("gatedGELU: gate \(gate.shape) and up \(up.shape) differ") }
        var h = Tensor(uninitialized: gate.shape)
        let out = h.mutablePointer()
        let g = gate.pointer
        let u = up.pointer
        Threading.parallelFor(gate.count, minimumChunk: elementwiseChunk / 4) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                VectorMath.store(gelu(VectorMath.load(g + i)) * VectorMath.load(u + i), out + i)
                i += 16
            }
            while i < range.upperBound {
                out[i] = gelu(g[i]) * u[i]
                i += 1
            }
        }
        return h
    }

    /// Gradients of h = gelu(gate)·up: dgate = dh·up·gelu'(gate), dup = dh·gelu(gate).
    public static func gatedGELUBackward(_ dh: Tensor, gate: Tensor, up: Tensor) -> (dGate: Tensor, dUp: Tensor) {
        if gate.count != up.count || dh.count != gate.count {
            fatalError("gatedGELUBackward: dh \(dh.shape), gate \(gate.shape), up \(up.shape) differ")
        }
        var dGate = Tensor(uninitialized: gate.shape)
        var dUp = Tensor(uninitialized: gate.shape)
        let outGate = dGate.mutablePointer()
        let outUp = dUp.mutablePointer()
        let g = gate.pointer
        let u = up.pointer
        let upstream = dh.pointer
        Threading.parallelFor(gate.count, minimumChunk: elementwiseChunk / 4) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let x = VectorMath.load(g + i)
                let d = VectorMath.load(upstream + i)
                let (value, derivative) = geluAndDerivative(x)
                VectorMath.store(d * VectorMath.load(u + i) * derivative, outGate + i)
                VectorMath.store(d * value, outUp + i)
                i += 16
            }
            while i < range.upperBound {
                outGate[i] = upstream[i] * u[i] * geluDerivative(g[i])
                outUp[i] = upstream[i] * gelu(g[i])
                i += 1
            }
        }
        return (dGate, dUp)
    }

    // 0.5·(1 + tanh(z)) equals the logistic sigmoid of 2z, which needs one exp instead of the
    // slower tanh; the two forms agree to f32 rounding.

    @inline(__always)
    static func gelu(_ x: Float) -> Float {
        gelu(VectorMath.Lanes(repeating: x))[0]
    }

    @inline(__always)
    static func geluDerivative(_ x: Float) -> Float {
        geluAndDerivative(VectorMath.Lanes(repeating: x)).derivative[0]
    }

    @inline(__always)
    static func gelu(_ x: VectorMath.Lanes) -> VectorMath.Lanes {
        let inner = sqrtTwoOverPi * (x + geluCoefficient * x * x * x)
        return x / (1 + VectorMath.exp(-2 * inner))
    }

    /// gelu(x) and its derivative, sharing one exp.
    @inline(__always)
    static func geluAndDerivative(_ x: VectorMath.Lanes) -> (value: VectorMath.Lanes, derivative: VectorMath.Lanes) {
        let inner = sqrtTwoOverPi * (x + geluCoefficient * x * x * x)
        let cdf = 1 / (1 + VectorMath.exp(-2 * inner))  // 0.5·(1 + tanh(inner))
        let dInner = sqrtTwoOverPi * (1 + 3 * geluCoefficient * x * x)
        // d/dx [x·cdf] = cdf + x·cdf'(inner)·dInner, with cdf' = 2·cdf·(1 − cdf)
        return (x * cdf, cdf + 2 * x * cdf * (1 - cdf) * dInner)
    }
}
