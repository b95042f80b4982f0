/// LayerNorm (SigLIP) and RMSNorm (Gemma) over the last axis, forward and backward.
///
/// Statistics are accumulated in f64 per row and stored as f32, one value per row.
/// Parameter gradients accumulate (`+=`) into the given windows, and are skipped when nil.
extension CPUKernels {
    // MARK: - LayerNorm

    /// y = (x − mean)·rstd·scale + bias, with rstd = 1/√(var + eps), over the last axis.
    ///
    /// - x: f32[..., D]
    /// - scale, bias: f32[D]
    /// - Returns: y f32[..., D], mean and rstd f32[rows].
    public static func layerNorm(_ x: Tensor, scale: Tensor, bias: Tensor, epsilon: Float)
        -> (y: Tensor, mean: Tensor, rstd: Tensor)
    {
        let (rows, width) = flattenRows(x, "layerNorm x")
        if scale.count != width || bias.count != width {
            fatalError("layerNorm: x \(x.shape) needs scale and bias of \(width), got \(scale.shape) and \(bias.shape)")
        }
        var y = Tensor(uninitialized: x.shape)
        var mean = Tensor(uninitialized: [rows])
        var rstd = Tensor(uninitialized: [rows])
        let out = y.mutablePointer()
        let means = mean.mutablePointer()
        let rstds = rstd.mutablePointer()
        let source = x.pointer
        let gain = scale.pointer
        let shift = bias.pointer
        Threading.parallelFor(rows, minimumChunk: max(1, elementwiseChunk / max(1, width))) { range in
            for row in range {
                let line = source + row * width
                var sum = 0.0
                for j in 0..<width { sum += Double(line[j]) }
                let mu = sum / Double(width)
                var squares = 0.0
                for j in 0..<width {
                    let centered = Double(line[j]) - mu
                    squares += centered * centered
                }
                let r = Float(1 / (squares / Double(width) + Double(epsilon)).squareRoot())
                let m = Float(mu)
                let target = out + row * width
                for j in 0..<width { target[j] = (line[j] - m) * r * gain[j] + shift[j] }
                means[row] = m
                rstds[row] = r
            }
        }
        return (y, mean, rstd)
    }

    /// Backward of `layerNorm`; returns dx and accumulates dScale and dBias when given.
    public static func layerNormBackward(
        _ dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, scale: Tensor,
        dScale: GradientSlice?, dBias: GradientSlice?
    ) -> Tensor {
        let (rows, width) = flattenRows(x, "layerNormBackward x")
        if dy.count != x.count || mean.count != rows || rstd.count != rows || scale.count != width {
            fatalError("layerNormBackward: dy \(dy.shape), x \(x.shape), mean \(mean.shape), rstd \(rstd.shape), scale \(scale.shape) disagree")
        }
        var dx = Tensor(uninitialized: x.shape)
        // dy·x̂, summed over rows afterwards into dScale.
        var dyTimesNormed = dScale == nil ? Tensor(zeros: [0]) : Tensor(uninitialized: x.shape)
        let out = dx.mutablePointer()
        let products = dScale == nil ? nil : dyTimesNormed.mutablePointer()
        let source = x.pointer
        let upstream = dy.pointer
        let means = mean.pointer
        let rstds = rstd.pointer
        let gain = scale.pointer
        Threading.parallelFor(rows, minimumChunk: max(1, elementwiseChunk / max(1, width))) { range in
            for row in range {
                let line = source + row * width
                let dLine = upstream + row * width
                let m = means[row]
                let r = rstds[row]
                // x̂ = (x − mean)·rstd; dx̂ = dy·scale;
                // dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
                var sumD = 0.0
                var sumDX = 0.0
                for j in 0..<width {
                    let normed = (line[j] - m) * r
                    let dNormed = dLine[j] * gain[j]
                    sumD += Double(dNormed)
                    sumDX += Double(dNormed * normed)
                }
                let meanD = Float(sumD / Double(width))
                let meanDX = Float(sumDX / Double(width))
                let target = out + row * width
                for j in 0..<width {
                    let normed = (line[j] - m) * r
                    target[j] = r * (dLine[j] * gain[j] - meanD - normed * meanDX)
                    if let products { products[row * width + j] = dLine[j] * normed }
                }
            }
        }
        if let dScale { accumulateRowSums(dyTimesNormed, into: dScale) }
        if let dBias { accumulateRowSums(dy, into: dBias) }
        return dx
    }

    // MARK: - RMSNorm

    /// y = x·rstd·(1 + scale), with rstd = 1/√(mean(x²) + eps), over the last axis (Gemma).
    ///
    /// - x: f32[..., D]
    /// - scale: f32[D], the stored offset from a gain of 1
    /// - Returns: y f32[..., D], rstd f32[rows].
    public static func rmsNorm(_ x: Tensor, scale: Tensor, epsilon: Float) -> (y: Tensor, rstd: Tensor) {
        let (rows, width) = flattenRows(x, "rmsNorm x")
        if scale.count != width { fatalError("rmsNorm: x \(x.shape) needs scale of \(width), got \(scale.shape)") }
        var y = Tensor(uninitialized: x.shape)
        var rstd = Tensor(uninitialized: [rows])
        let out = y.mutablePointer()
        let rstds = rstd.mutablePointer()
        let source = x.pointer
        let gain = scale.pointer
        Threading.parallelFor(rows, minimumChunk: max(1, elementwiseChunk / max(1, width))) { range in
            for row in range {
                let line = source + row * width
                var squares = 0.0
                for j in 0..<width { squares += Double(line[j]) * Double(line[j]) }
                let r = Float(1 / (squares / Double(width) + Double(epsilon)).squareRoot())
                let target = out + row * width
                for j in 0..<width { target[j] = line[j] * r * (1 + gain[j]) }
                rstds[row] = r
            }
        }
        return (y, rstd)
    }

    /// Backward of `rmsNorm`; returns dx and accumulates dScale when given.
    public static func rmsNormBackward(
        _ dy: Tensor, x: Tensor, rstd: Tensor, scale: Tensor, dScale: GradientSlice?
    ) -> Tensor {
        let (rows, width) = flattenRows(x, "rmsNormBackward x")
        if dy.count != x.count || rstd.count != rows || scale.count != width {
            fatalError("rmsNormBackward: dy \(dy.shape), x \(x.shape), rstd \(rstd.shape), scale \(scale.shape) disagree")
        }
        var dx = Tensor(uninitialized: x.shape)
        var dyTimesNormed = dScale == nil ? Tensor(zeros: [0]) : Tensor(uninitialized: x.shape)
        let out = dx.mutablePointer()
        let products = dScale == nil ? nil : dyTimesNormed.mutablePointer()
        let source = x.pointer
        let upstream = dy.pointer
        let rstds = rstd.pointer
        let gain = scale.pointer
        Threading.parallelFor(rows, minimumChunk: max(1, elementwiseChunk / max(1, width))) { range in
            for row in range {
                let line = source + row * width
                let dLine = upstream + row * width
                let r = rstds[row]
                // x̂ = x·rstd; dx̂ = dy·(1 + scale); dx = rstd·(dx̂ − x̂·mean(dx̂·x̂)).
                var sumDX = 0.0
                for j in 0..<width { sumDX += Double(dLine[j] * (1 + gain[j]) * line[j] * r) }
                let meanDX = Float(sumDX / Double(width))
                let target = out + row * width
                for j in 0..<width {
                    let normed = line[j] * r
                    target[j] = r * (dLine[j] * (1 + gain[j]) - normed * meanDX)
                    if let products { products[row * width + j] = dLine[j] * normed }
                }
            }
        }
        if let dScale { accumulateRowSums(dyTimesNormed, into: dScale) }
        return dx
    }
}
