import Foundation
import TensorCore

/// Attention of new tokens over the keys and values in a `KVCache`.
///
/// Each example attends only to its own filled slots, so padding costs nothing and needs no
/// mask. Among a segment's new tokens, `DecodeStep.Segment.allows` applies the prefix-LM rule.
/// Scores are computed in f32 and masked with big_vision's finite −2.3819763e38, as in
/// `Kernels.attention`.
enum CachedAttention {
    /// Reusable score rows, sized once per decode for the largest step.
    struct Scratch {
        var scores: Tensor

        /// - rows: the most query rows one GEMM handles (max of the query-head group size and
        ///   the longest segment)
        /// - slots: the most slots one example attends to (the cache capacity)
        init(rows: Int, slots: Int) {
            scores = Tensor(zeros: [rows * slots])
        }
    }

    /// - q: f32[Rq, N, H], rotated and scaled, one row per query of `selection`, in segment order
    /// - Returns: o f32[Rq, N, H]
    static func forward(
        q: Tensor, cache: KVCache, layer: Int, step: DecodeStep, selection: QuerySelection,
        queryHeads N: Int, scratch: inout Scratch
    ) -> Tensor {
        let (K, H) = (cache.kvHeads, cache.headDim)
        let G = N / K
        var output = Tensor(uninitialized: q.shape)
        let keys = cache.keys(layer: layer)
        let values = cache.values(layer: layer)

        var queryRow = 0
        for segment in step.segments {
            let queries = selection.queries(segment)
            let slotCount = segment.start + segment.count
            let base = cache.offset(example: segment.example, slot: 0)
            let mask = allowedSlots(segment, queries: queries, slotCount: slotCount)

            if queries.count == 1 {
                // One query: the G heads that share a kv head are G contiguous rows of q.
                for j in 0..<K {
                    let offset = (queryRow * N + j * G) * H
                    attendBlock(
                        q: q, offset: offset, rows: G, rowStride: H, keys: keys, values: values,
                        kvOffset: base + j * H, kvStride: K * H, slotCount: slotCount, headDim: H,
                        mask: mask, maskRowStride: 0, scratch: &scratch, output: &output)
                }
            } else {
                // Several queries: one head at a time, its rows N·H apart.
                for n in 0..<N {
                    let offset = queryRow * N * H + n * H
                    attendBlock(
                        q: q, offset: offset, rows: queries.count, rowStride: N * H, keys: keys, values: values,
                        kvOffset: base + (n / G) * H, kvStride: K * H, slotCount: slotCount, headDim: H,
                        mask: mask, maskRowStride: slotCount, scratch: &scratch, output: &output)
                }
            }
            queryRow += queries.count
        }
        return output
    }

    /// Returns the slots each query of `segment` may attend, [queries.count, slotCount], or nil
    /// when every query may attend every slot (always the case for a single new token).
    private static func allowedSlots(_ segment: DecodeStep.Segment, queries: Range<Int>, slotCount: Int) -> [Bool]? {
        var mask = [Bool](repeating: true, count: queries.count * slotCount)
        var anyMasked = false
        for (row, query) in queries.enumerated() {
            for slot in segment.start..<slotCount where !segment.allows(query: query, slot: slot) {
                mask[row * slotCount + slot] = false
                anyMasked = true
            }
        }
        return anyMasked ? mask : nil
    }

    /// softmax(mask(q·kᵀ))·v for `rows` query rows against slots 0..<slotCount of one kv head.
    ///
    /// - mask: allowed slots, row r at r·maskRowStride (stride 0 shares one row); nil allows all
    private static func attendBlock(
        q: Tensor, offset: Int, rows: Int, rowStride: Int, keys: Tensor, values: Tensor,
        kvOffset: Int, kvStride: Int, slotCount: Int, headDim H: Int,
        mask: [Bool]?, maskRowStride: Int, scratch: inout Scratch, output: inout Tensor
    ) {
        // 1. scores = q·kᵀ: [rows, H]·[H, slotCount]
        Kernels.gemm(
            m: rows, n: slotCount, k: H, a: q, offsetA: offset, lda: rowStride,
            b: keys, offsetB: kvOffset, ldb: kvStride, transposeB: true, c: &scratch.scores, ldc: slotCount)

        // 2. mask and softmax each row
        scratch.scores.withUnsafeMutableBufferPointer { buffer in
            for row in 0..<rows {
                let line = buffer.baseAddress! + row * slotCount
                if let mask {
                    let maskStart = row * maskRowStride
                    for slot in 0..<slotCount where !mask[maskStart + slot] { line[slot] = Kernels.maskedLogit }
                }
                var maximum = -Float.infinity
                for slot in 0..<slotCount { maximum = max(maximum, line[slot]) }
                var sum: Float = 0
                for slot in 0..<slotCount {
                    let e = exp(line[slot] - maximum)
                    line[slot] = e
                    sum += e
                }
                let inverse = 1 / sum
                for slot in 0..<slotCount { line[slot] *= inverse }
            }
        }

        // 3. output = probabilities·v: [rows, slotCount]·[slotCount, H]
        Kernels.gemm(
            m: rows, n: H, k: slotCount, a: scratch.scores, lda: slotCount,
            b: values, offsetB: kvOffset, ldb: kvStride, c: &output, offsetC: offset, ldc: rowStride)
    }
}
