import Foundation
import TensorCore

/// A smooth starting point for the 1024 `<locNNNN>` rows of the token table, for models trained
/// from scratch.
///
/// With random rows, each of the 1024 location tokens is a separate class, learned only from the
/// few examples whose boxes fall in its bin. A prediction one bin off is then as wrong as one 500
/// bins off. Rows made of sines and cosines of the bin index make neighbouring bins similar as
/// inputs, and also as outputs because the table is tied to the logits. What the model learns
/// for bin 400 then carries over to bins 395 to 405. The released checkpoints already have
/// trained rows and do not need this.
public enum LocationEmbeddingInit {
    /// The number of `<loc>` tokens.
    public static let binCount = 1024

    /// Returns row `bin` of the table, `[width]`: pairs of sin and cos of `bin * frequency`, with
    /// the frequencies spaced geometrically from one cycle over 4096 bins to one over 4 bins.
    /// The row's L2 norm is 1, as for the table's random rows (std 1/√width).
    public static func row(bin: Int, width: Int) -> [Float] {
        precondition(width >= 2, "LocationEmbeddingInit.row: width must be at least 2")
        let pairs = width / 2
        let scale = 1 / Double(pairs).squareRoot()
        var values = [Float](repeating: 0, count: width)
        for k in 0..<pairs {
            let fraction = pairs > 1 ? Double(k) / Double(pairs - 1) : 0
            let wavelength = 4096 * pow(4.0 / 4096, fraction)
            let angle = 2 * Double.pi * Double(bin) / wavelength
            values[2 * k] = Float(scale * sin(angle))
            values[2 * k + 1] = Float(scale * cos(angle))
        }
        return values
    }

    /// Replaces the location rows that fall in elements `[first, first + count)` of a row-major
    /// `[vocab, width]` table, given as `dtype` bytes.
    ///
    /// - Parameters:
    ///   - locBase: the id of `<loc0000>`; `<locNNNN>` is `locBase + NNNN`.
    public static func patch(
        _ bytes: UnsafeMutableRawBufferPointer, dtype: DType, first: Int, count: Int, width: Int, locBase: Int
    ) {
        guard count > 0 else { return }
        let lowestRow = max(first / width, locBase)
        let highestRow = min((first + count - 1) / width, locBase + binCount - 1)
        guard lowestRow <= highestRow else { return }
        for rowIndex in lowestRow...highestRow {
            let values = row(bin: rowIndex - locBase, width: width)

            // The part of this row inside the chunk, as element offsets into the row and the chunk.
            let rowStart = rowIndex * width
            let from = max(rowStart, first)
            let to = min(rowStart + width, first + count)
            guard from < to else { continue }
            values.withUnsafeBufferPointer { source in
                convertFromFloat(
                    source.baseAddress! + (from - rowStart), count: to - from, to: dtype,
                    into: bytes.baseAddress! + (from - first) * dtype.byteSize)
            }
        }
    }
}

/// Fixed 2-D sine-cosine values for the vision tower's position embedding, the `sincos2d` choice
/// that big_vision's ViT offers beside learned values.
///
/// A model trained from scratch must learn where each image token sits before it can write a
/// box. These values give every token its row and column from the first step, so the decoder
/// can read positions off the image tokens at once. They remain trainable like learned values.
public enum VisionPositionInit {
    /// Returns the embedding of every patch, `[1, side * side, width]` flattened, patches in
    /// row-major order. Each row is `[sin(y ω), cos(y ω), sin(x ω), cos(x ω)]` for the patch's row y and
    /// column x, with `width / 4` frequencies ω from 1 down to 1/10000, spaced geometrically.
    public static func values(side: Int, width: Int) -> [Float] {
        precondition(width % 4 == 0 && width >= 8, "VisionPositionInit.values: width must be a multiple of 4, at least 8")
        let quarter = width / 4
        let frequencies = (0..<quarter).map { 1 / pow(10_000, Double($0) / Double(quarter - 1)) }
        var values = [Float](repeating: 0, count: side * side * width)
        for y in 0..<side {
            for x in 0..<side {
                let offset = (y * side + x) * width
                for (k, omega) in frequencies.enumerated() {
                    values[offset + k] = Float(sin(Double(y) * omega))
                    values[offset + quarter + k] = Float(cos(Double(y) * omega))
                    values[offset + 2 * quarter + k] = Float(sin(Double(x) * omega))
                    values[offset + 3 * quarter + k] = Float(cos(Double(x) * omega))
                }
            }
        }
        return values
    }
}
