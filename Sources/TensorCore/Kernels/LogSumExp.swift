import Foundation

/// log Σ exp over long rows, for the log-probability of each decoded token.
///
/// A decoding step needs log softmax(logits)[token] for one token per row, over 257152 logits.
/// `softmaxCrossEntropy` calls the scalar `expf` per logit, which took about 10 % of a
/// bench-small decoding step (perf, one thread). Here exp is evaluated eight lanes at a time
/// with Cephes' single-precision polynomial, and the row is split across threads.
extension CPUKernels {
    /// Returns log Σⱼ exp(x[i, j]) for each row i of logits: f32[R, V].
    ///
    /// Accuracy: each exp has a relative error of about 2e-7 (see `exp8`), sums of 64 terms
    /// are formed in f32 and added in f64, so the result is within about 1e-6 of the exact value
    /// for rows of finite values.
    public static func rowLogSumExp(_ logits: Tensor) -> [Float] {
        let (rows, columns) = flattenRows(logits, "rowLogSumExp logits")
        var results = [Float](repeating: 0, count: rows)
        if columns == 0 { return results.map { _ in -Float.infinity } }
        let chunk = 1 << 15
        let chunks = (columns + chunk - 1) / chunk

        for row in 0..<rows {
            let line = logits.pointer + row * columns

            // 1. the row maximum
            var maxima = [Float](repeating: -.infinity, count: chunks)
            maxima.withUnsafeMutableBufferPointer { out in
                Threading.parallelFor(chunks, minimumChunk: 1) { range in
                    for c in range {
                        out[c] = maximum(line + c * chunk, min(chunk, columns - c * chunk))
                    }
                }
            }
            let rowMax = maxima.max()!

            // 2. Σ exp(x − max), per chunk in f64
            var sums = [Double](repeating: 0, count: chunks)
            sums.withUnsafeMutableBufferPointer { out in
                Threading.parallelFor(chunks, minimumChunk: 1) { range in
                    for c in range {
                        out[c] = sumOfExp(line + c * chunk, min(chunk, columns - c * chunk), minus: rowMax)
                    }
                }
            }
            results[row] = rowMax + Float(log(sums.reduce(0, +)))
        }
        return results
    }

    /// e^x for each lane, x ≤ 0 (Cephes `expf`: x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-7
    /// polynomial in r, then scaling by 2ⁿ through the exponent bits). Lanes below −87 give 0,
    /// which is below 2⁻¹²⁵ and so negligible next to the row maximum's e⁰ = 1.
    @inline(__always)
    static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let tiny = x .< -87
        let clamped = x.replacing(with: -87, where: tiny)
        // Adding 1.5·2²³ rounds x·log₂e to the nearest integer n and leaves n in the low
        // mantissa bits, so n is read with integer lanes instead of a per-lane conversion.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = clamped * 1.442_695_04 + magic
        let n = shifted - magic
        let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let polynomial = p * r * r + r + 1
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let exponent = (integer &+ 127) &<< 23
        let scale = unsafeBitCast(exponent, to: SIMD8<Float>.self)
        return (polynomial * scale).replacing(with: 0, where: tiny)
    }

    private static func maximum(_ values: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            lanes = pointwiseMax(lanes, UnsafeRawPointer(values + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var result = lanes.max()
        while i < count {
            result = max(result, values[i])
            i += 1
        }
        return result
    }

    private static func sumOfExp(_ values: UnsafePointer<Float>, _ count: Int, minus offset: Float) -> Double {
        let shift = SIMD8<Float>(repeating: offset)
        var total = 0.0
        var i = 0
        while i + 64 <= count {
            var block = SIMD8<Float>()
            for lane in stride(from: 0, to: 64, by: 8) {
                block += exp8(UnsafeRawPointer(values + i + lane).loadUnaligned(as: SIMD8<Float>.self) - shift)
            }
            total += Double(block.sum())
            i += 64
        }
        while i < count {
            total += Double(exp(values[i] - offset))
            i += 1
        }
        return total
    }
}
