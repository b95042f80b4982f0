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

    /// Returns table[ids[i]]·factor for each id from an f32 table [V, D]: f32[ids.count, D].
    public static func gatherRows(_ table: Tensor, ids: [Int32], factor: Float) -> Tensor {
        if table.rank != 2 { fatalError("gatherRows: table must be [V, D], got \(table.shape)") }
        let (vocabulary, width) = (table.shape[0], table.shape[1])
        var rows = Tensor(uninitialized: [ids.count, width])
        let out = rows.mutablePointer()
        let source = table.pointer
        for (i, id) in ids.enumerated() {
            let index = Int(id)
            if index < 0 || index >= vocabulary {
                fatalError("gatherRows: token id \(id) outside the vocabulary of \(vocabulary)")
            }
            let line = source + index * width
            let target = out + i * width
            for j in 0..<width { target[j] = line[j] * factor }
        }
        return rows
    }

    /// Returns rows `indices` of x viewed as [rows, D]: f32[indices.count, D].
    public static func selectRows(_ x: Tensor, _ indices: [Int]) -> Tensor {
        let (rowCount, width) = flattenRows(x, "selectRows x")
        var rows = Tensor(uninitialized: [indices.count, width])
        let out = rows.mutablePointer()
        let source = x.pointer
        for (i, index) in indices.enumerated() {
            if index < 0 || index >= rowCount { fatalError("selectRows: row \(index) out of range for \(x.shape)") }
            (out + i * width).update(from: source + index * width, count: width)
        }
        return rows
    }

    /// x[indices[i]] += rows[i] for x viewed as [rows, D] (the backward of `selectRows`).
    public static func addRows(_ rows: Tensor, at indices: [Int], into x: inout Tensor) {
        let (rowCount, width) = flattenRows(x, "addRows x")
        if rows.count != indices.count * width {
            fatalError("addRows: rows \(rows.shape) do not match \(indices.count) indices of width \(width)")
        }
        let out = x.mutablePointer()
        let source = rows.pointer
        for (i, index) in indices.enumerated() {
            if index < 0 || index >= rowCount { fatalError("addRows: row \(index) out of range for \(x.shape)") }
            let target = out + index * width
            let line = source + i * width
            for j in 0..<width { target[j] += line[j] }
        }
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
