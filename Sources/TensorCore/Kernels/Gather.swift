/// Row gathers for embedding lookups and the patch extraction of the vision stem.
extension CPUKernels {
    // MARK: - Embedding rows

    /// Returns table[ids[i]]·factor for each id: f32[ids.count, D] from a stored table [V, D].
    ///
    /// With `roundToStoredDType`, each product is rounded to the table's dtype before widening,
    /// which reproduces `embedding * sqrt(D).astype(table dtype)` evaluated in f16 or bf16.
    public static func gatherRows(
        _ table: StoredArray, ids: [Int32], factor: Float, roundToStoredDType: Bool
    ) -> Tensor {
        if table.shape.count != 2 { fatalError("gatherRows: table must be [V, D], got \(table.shape)") }
        let (vocabulary, width) = (table.shape[0], table.shape[1])
        var rows = Tensor(uninitialized: [ids.count, width])
        let out = rows.mutablePointer()
        for (i, id) in ids.enumerated() {
            let index = Int(id)
            if index < 0 || index >= vocabulary {
                fatalError("gatherRows: token id \(id) outside the vocabulary of \(vocabulary)")
            }
            let target = out + i * width
            table.rows(index..<(index + 1)).withUnsafeBytes { bytes in
                convertToFloat(bytes.baseAddress!, dtype: table.dtype, count: width, into: target)
            }
            for j in 0..<width {
                let product = target[j] * factor
                target[j] = roundToStoredDType ? roundToDType(product, table.dtype) : product
            }
        }
        return rows
    }

    /// gradient[ids[i]] += factor·dRows[i] for a gradient table [V, D].
    public static func scatterAddRows(_ dRows: Tensor, ids: [Int32], factor: Float, into gradient: GradientSlice) {
        if gradient.shape.count != 2 || dRows.count != ids.count * gradient.shape[1] {
            fatalError("scatterAddRows: dRows \(dRows.shape) and \(ids.count) ids do not match gradient \(gradient.shape)")
        }
        let (vocabulary, width) = (gradient.shape[0], gradient.shape[1])
        let source = dRows.pointer
        let out = gradient.pointer
        withExtendedLifetime(gradient.buffer) {
            // Repeated ids add into the same row, so this stays on one thread.
            for (i, id) in ids.enumerated() {
                let index = Int(id)
                if index < 0 || index >= vocabulary {
                    fatalError("scatterAddRows: token id \(id) outside the vocabulary of \(vocabulary)")
                }
                let target = out + index * width
                let line = source + i * width
                for j in 0..<width { target[j] += factor * line[j] }
            }
        }
    }

    /// Rounds an f32 value to the nearest value representable in `dtype`.
    public static func roundToDType(_ value: Float, _ dtype: DType) -> Float {
        switch dtype {
        case .f32: return value
        case .f16: return Float(Float16(value))
        case .bf16: return float(fromBF16: bf16Bits(from: value))
        }
    }

    // MARK: - Patches

    /// Cuts images into non-overlapping p×p patches (a VALID convolution with stride p).
    ///
    /// - images: f32[B, height, width, C]
    /// - Returns: f32[B, (height/p)·(width/p), p·p·C]; patches in row-major grid order, and each
    ///   patch flattened as (row in patch, column in patch, channel), the order of an HWIO kernel.
    ///   Pixels beyond the last full patch are dropped, as a VALID convolution does.
    public static func extractPatches(_ images: Tensor, patchSize p: Int) -> Tensor {
        if images.rank != 4 || p <= 0 {
            fatalError("extractPatches: expected images [B, height, width, C] and a positive patch size, got \(images.shape), \(p)")
        }
        let (B, height, width, C) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let (gridRows, gridColumns) = (height / p, width / p)
        let patchLength = p * p * C
        var patches = Tensor(uninitialized: [B, gridRows * gridColumns, patchLength])
        let out = patches.mutablePointer()
        let source = images.pointer
        Threading.parallelFor(B * gridRows, minimumChunk: 1) { range in
            for item in range {
                let (b, gridRow) = (item / gridRows, item % gridRows)
                for gridColumn in 0..<gridColumns {
                    let patch = out + ((b * gridRows + gridRow) * gridColumns + gridColumn) * patchLength
                    for r in 0..<p {
                        let pixelRow = gridRow * p + r
                        let line = source + ((b * height + pixelRow) * width + gridColumn * p) * C
                        (patch + r * p * C).update(from: line, count: p * C)
                    }
                }
            }
        }
        return patches
    }
}
