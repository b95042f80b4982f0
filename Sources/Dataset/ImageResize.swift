/// Bilinear resizing with antialiasing, as `tf.image.resize(method="bilinear", antialias=True)`
/// and `jax.image.resize(method="linear", antialias=True)` compute it.
///
/// Each output pixel i samples the input at x = (i + 0.5) · in/out − 0.5 (half-pixel centres)
/// with a triangle filter. When shrinking, the triangle is widened by the shrink factor: its
/// half-width is in/out input pixels instead of 1, so every input pixel contributes (this is
/// the antialiasing). When enlarging, it is the plain bilinear tent of half-width 1. Taps that
/// fall outside the image are dropped and the remaining weights renormalised to sum to 1.
/// The filter is separable; rows are filtered first, then columns.
enum ImageResize {
    /// Filter taps of one axis: output index `i` reads `count[i]` inputs from `start[i]` on,
    /// with weights `weights[i * stride ..< i * stride + count[i]]`.
    struct Taps {
        var start: [Int]
        var count: [Int]
        var weights: [Float]
        var stride: Int

        /// - inputExtent: the length of the input in its own pixels, normally `inputSize`. An
        ///   input decoded at 1/d scale from n pixels has ceil(n / d) pixels but covers n / d of
        ///   them; passing n / d keeps the sample positions those of the full-size image.
        init(inputSize: Int, outputSize: Int, inputExtent: Double? = nil) {
            let inverseScale = (inputExtent ?? Double(inputSize)) / Double(outputSize)
            let kernelScale = max(inverseScale, 1)
            stride = Int((2 * kernelScale).rounded(.up)) + 2
            start = Array(repeating: 0, count: outputSize)
            count = Array(repeating: 0, count: outputSize)
            weights = Array(repeating: 0, count: outputSize * stride)

            for i in 0..<outputSize {
                let center = (Double(i) + 0.5) * inverseScale - 0.5
                let first = max(0, Int((center - kernelScale).rounded(.up)))
                let last = min(inputSize - 1, Int((center + kernelScale).rounded(.down)))
                var taps: [Double] = []
                for j in first...max(first, last) where j <= last {
                    taps.append(max(0, 1 - abs(center - Double(j)) / kernelScale))
                }
                let total = taps.reduce(0, +)
                // jax drops a sample whose weights sum to (almost) nothing instead of dividing by it.
                let usable = total > 1000 * Double(Float.ulpOfOne)
                start[i] = first
                count[i] = taps.count
                for (k, weight) in taps.enumerated() {
                    weights[i * stride + k] = usable ? Float(weight / total) : 0
                }
            }
        }
    }

    /// Resizes `[height, width, 3]` samples to `[outputHeight, outputWidth, 3]` floats and maps
    /// each value v to v · outputScale + outputOffset.
    static func resize<Sample: ResizeSample>(
        _ source: UnsafeBufferPointer<Sample>, width: Int, height: Int,
        outputWidth: Int, outputHeight: Int, outputScale: Float, outputOffset: Float,
        into output: UnsafeMutableBufferPointer<Float>, inputExtent: (width: Double, height: Double)? = nil
    ) {
        let rows = Taps(inputSize: height, outputSize: outputHeight, inputExtent: inputExtent?.height)
        let columns = Taps(inputSize: width, outputSize: outputWidth, inputExtent: inputExtent?.width)
        let rowLength = width * 3
        var line = [Float](repeating: 0, count: rowLength)

        line.withUnsafeMutableBufferPointer { line in
            for outY in 0..<outputHeight {
                // 1. Vertical: blend the input rows of this output row into one line.
                for k in 0..<rowLength { line[k] = 0 }
                for tap in 0..<rows.count[outY] {
                    let weight = rows.weights[outY * rows.stride + tap]
                    let rowStart = (rows.start[outY] + tap) * rowLength
                    for k in 0..<rowLength {
                        line[k] += weight * source[rowStart + k].floatValue
                    }
                }

                // 2. Horizontal: filter the line into the output row.
                let outRow = outY * outputWidth * 3
                for outX in 0..<outputWidth {
                    var red: Float = 0
                    var green: Float = 0
                    var blue: Float = 0
                    let first = columns.start[outX]
                    for tap in 0..<columns.count[outX] {
                        let weight = columns.weights[outX * columns.stride + tap]
                        let x = (first + tap) * 3
                        red += weight * line[x]
                        green += weight * line[x + 1]
                        blue += weight * line[x + 2]
                    }
                    output[outRow + outX * 3] = red * outputScale + outputOffset
                    output[outRow + outX * 3 + 1] = green * outputScale + outputOffset
                    output[outRow + outX * 3 + 2] = blue * outputScale + outputOffset
                }
            }
        }
    }
}

/// A sample type the resizer reads.
protocol ResizeSample {
    var floatValue: Float { get }
}

extension UInt8: ResizeSample {
    var floatValue: Float { Float(self) }
}

extension Float: ResizeSample {
    var floatValue: Float { self }
}
