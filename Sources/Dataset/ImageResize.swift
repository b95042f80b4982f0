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

        /// - inputExtent: the length of the input in its own pixels, normally `inputSize`.
        ///   An input decoded at 1/d scale from n pixels has ceil(n / d) pixels but covers only
        ///   n / d of them. Passing n / d keeps the sample positions of the full-size image.
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

        // Raw pointers keep bounds checks and reference counting out of the inner loops.
        line.withUnsafeMutableBufferPointer { lineBuffer in
            rows.weights.withUnsafeBufferPointer { rowWeights in
                columns.weights.withUnsafeBufferPointer { columnWeights in
                    let line = lineBuffer.baseAddress!
                    let source = source.baseAddress!
                    let output = output.baseAddress!
                    for outY in 0..<outputHeight {
                        // 1. Vertical: blend the input rows of this output row into one line.
                        line.update(repeating: 0, count: rowLength)
                        for tap in 0..<rows.count[outY] {
                            let weight = rowWeights[outY * rows.stride + tap]
                            let row = source + (rows.start[outY] + tap) * rowLength
                            Sample.accumulate(row, weight: weight, into: line, count: rowLength)
                        }

                        // 2. Horizontal: filter the line into the output row.
                        let outRow = output + outY * outputWidth * 3
                        for outX in 0..<outputWidth {
                            var red: Float = 0
                            var green: Float = 0
                            var blue: Float = 0
                            let weights = columnWeights.baseAddress! + outX * columns.stride
                            var pixel = line + columns.start[outX] * 3
                            for tap in 0..<columns.count[outX] {
                                let weight = weights[tap]
                                red += weight * pixel[0]
                                green += weight * pixel[1]
                                blue += weight * pixel[2]
                                pixel += 3
                            }
                            outRow[outX * 3] = red * outputScale + outputOffset
                            outRow[outX * 3 + 1] = green * outputScale + outputOffset
                            outRow[outX * 3 + 2] = blue * outputScale + outputOffset
                        }
                    }
                }
            }
        }
    }
}

/// A sample type the resizer reads.
protocol ResizeSample {
    /// line[k] += weight * row[k] for k in 0..<count.
    static func accumulate(_ row: UnsafePointer<Self>, weight: Float, into line: UnsafeMutablePointer<Float>, count: Int)
}

extension UInt8: ResizeSample {
    static func accumulate(_ row: UnsafePointer<UInt8>, weight: Float, into line: UnsafeMutablePointer<Float>, count: Int) {
        // Eight samples at a time; the loop over scalars did not vectorise (measured 3x slower).
        let weights = SIMD8<Float>(repeating: weight)
        var k = 0
        let rawRow = UnsafeRawPointer(row)
        let rawLine = UnsafeMutableRawPointer(line)
        while k + 8 <= count {
            let bytes = rawRow.loadUnaligned(fromByteOffset: k, as: SIMD8<UInt8>.self)
            let values = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bytes))
            let sum = rawLine.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self) + weights * values
            rawLine.storeBytes(of: sum, toByteOffset: k * 4, as: SIMD8<Float>.self)
            k += 8
        }
        while k < count {
            line[k] += weight * Float(row[k])
            k += 1
        }
    }
}

extension Float: ResizeSample {
    static func accumulate(_ row: UnsafePointer<Float>, weight: Float, into line: UnsafeMutablePointer<Float>, count: Int) {
        for k in 0..<count {
            line[k] += weight * row[k]
        }
    }
}
