import Foundation

/// Which keys each query may attend to, per example: `allowed[b][i][j]` for query i, key j.
public struct AttentionMask: Sendable, Equatable {
    public let batch: Int
    public let queries: Int
    public let keys: Int
    /// Row-major [batch, queries, keys]; true where attention is allowed.
    public let allowed: [Bool]

    public init(batch: Int, queries: Int, keys: Int, allowed: [Bool]) {
        if allowed.count != batch * queries * keys {
            fatalError("AttentionMask: [\(batch), \(queries), \(keys)] needs \(batch * queries * keys) entries, got \(allowed.count)")
        }
        self.batch = batch
        self.queries = queries
        self.keys = keys
        self.allowed = allowed
    }

    /// Whether query `query` of example `example` may attend to key `key`.
    public func isAllowed(example: Int, query: Int, key: Int) -> Bool {
        allowed[(example * queries + query) * keys + key]
    }
}

/// Softmax statistics of each attention row, kept by the forward pass so that the backward
/// pass can rebuild the probabilities from recomputed scores instead of storing them.
public struct AttentionStatistics {
    /// Maximum score of each row: f32[B, N, L].
    public let rowMax: Tensor
    /// Σ exp(score − rowMax) of each row: f32[B, N, L].
    public let rowSum: Tensor
}

/// Scaled dot-product attention over heads, one head at a time.
///
/// Layouts: q f32[B, L, N, H], k and v f32[B, S, K, H], output f32[B, L, N, H]. Query head n
/// reads key/value head n / (N / K), which covers multi-head (K = N) and multi-query (K = 1)
/// attention. The caller scales q beforehand. Masked scores are replaced by the finite value
/// −2.3819763e38, as big_vision does, so a row with no allowed key becomes uniform, not NaN.
/// Only one head's [L, S] score matrix exists at a time: the backward pass recomputes scores
/// from q and k and the saved row statistics, so memory does not grow with B·N·L·S.
extension CPUKernels {
    /// The finite stand-in for −∞ that big_vision writes into masked attention logits.
    public static let maskedLogit: Float = -2.3819763e38

    /// Attention forward; returns the output and the statistics the backward pass needs.
    public static func attention(
        q: Tensor, k: Tensor, v: Tensor,
        batch: Int, queryLength: Int, keyLength: Int, queryHeads: Int, kvHeads: Int, headDim: Int,
        mask: AttentionMask?
    ) -> (output: Tensor, statistics: AttentionStatistics) {
        let (B, L, S, N, K, H) = (batch, queryLength, keyLength, queryHeads, kvHeads, headDim)
        checkAttentionShapes(q: q, k: k, v: v, B, L, S, N, K, H, mask)
        var output = Tensor(uninitialized: [B, L, N, H])
        var rowMax = Tensor(uninitialized: [B, N, L])
        var rowSum = Tensor(uninitialized: [B, N, L])
        var scores = Tensor(uninitialized: [L, S])

        for b in 0..<B {
            for n in 0..<N {
                let j = n / (N / K)
                let qOffset = b * L * N * H + n * H
                let kvOffset = b * S * K * H + j * H

                // 1. scores = q·kᵀ: [L, H]·[H, S].
                gemm(m: L, n: S, k: H, a: q, offsetA: qOffset, lda: N * H,
                     b: k, offsetB: kvOffset, ldb: K * H, transposeB: true, c: &scores, ldc: S)

                // 2. mask and softmax each row, keeping max and sum.
                let rowOffset = (b * N + n) * L
                softmaxRows(&scores, rows: L, columns: S, mask: mask, example: b,
                            rowMax: &rowMax, rowSum: &rowSum, statisticsOffset: rowOffset)

                // 3. output = probabilities·v: [L, S]·[S, H].
                gemm(m: L, n: H, k: S, a: scores, lda: S,
                     b: v, offsetB: kvOffset, ldb: K * H, c: &output, offsetC: qOffset, ldc: N * H)
            }
        }
        return (output, AttentionStatistics(rowMax: rowMax, rowSum: rowSum))
    }

    /// Attention backward; returns dq f32[B, L, N, H], dk and dv f32[B, S, K, H].
    public static func attentionBackward(
        _ dOutput: Tensor, q: Tensor, k: Tensor, v: Tensor, statistics: AttentionStatistics,
        batch: Int, queryLength: Int, keyLength: Int, queryHeads: Int, kvHeads: Int, headDim: Int,
        mask: AttentionMask?
    ) -> (dq: Tensor, dk: Tensor, dv: Tensor) {
        let (B, L, S, N, K, H) = (batch, queryLength, keyLength, queryHeads, kvHeads, headDim)
        checkAttentionShapes(q: q, k: k, v: v, B, L, S, N, K, H, mask)
        if dOutput.count != q.count { fatalError("attentionBackward: dOutput \(dOutput.shape) must match q \(q.shape)") }
        var dq = Tensor(uninitialized: [B, L, N, H])
        var dk = Tensor(zeros: [B, S, K, H])
        var dv = Tensor(zeros: [B, S, K, H])
        var probabilities = Tensor(uninitialized: [L, S])
        var dScores = Tensor(uninitialized: [L, S])

        for b in 0..<B {
            for n in 0..<N {
                let j = n / (N / K)
                let qOffset = b * L * N * H + n * H
                let kvOffset = b * S * K * H + j * H
                let rowOffset = (b * N + n) * L

                // 3'. rebuild the probabilities P from q·kᵀ and the saved row statistics.
                gemm(m: L, n: S, k: H, a: q, offsetA: qOffset, lda: N * H,
                     b: k, offsetB: kvOffset, ldb: K * H, transposeB: true, c: &probabilities, ldc: S)
                rebuildProbabilities(&probabilities, rows: L, columns: S, mask: mask, example: b,
                                     statistics: statistics, statisticsOffset: rowOffset)

                // output = P·v  →  dv += Pᵀ·dOutput, dP = dOutput·vᵀ.
                gemm(m: S, n: H, k: L, a: probabilities, lda: S, transposeA: true,
                     b: dOutput, offsetB: qOffset, ldb: N * H, beta: 1, c: &dv, offsetC: kvOffset, ldc: K * H)
                gemm(m: L, n: S, k: H, a: dOutput, offsetA: qOffset, lda: N * H,
                     b: v, offsetB: kvOffset, ldb: K * H, transposeB: true, c: &dScores, ldc: S)

                // 2'. P = softmax(scores)  →  dScores = P ⊙ (dP − Σⱼ dP·P); masked scores get none.
                softmaxBackwardRows(&dScores, probabilities: probabilities, rows: L, columns: S, mask: mask, example: b)

                // 1'. scores = q·kᵀ  →  dq = dScores·k, dk += dScoresᵀ·q.
                gemm(m: L, n: H, k: S, a: dScores, lda: S,
                     b: k, offsetB: kvOffset, ldb: K * H, c: &dq, offsetC: qOffset, ldc: N * H)
                gemm(m: S, n: H, k: L, a: dScores, lda: S, transposeA: true,
                     b: q, offsetB: qOffset, ldb: N * H, beta: 1, c: &dk, offsetC: kvOffset, ldc: K * H)
            }
        }
        return (dq, dk, dv)
    }

    // MARK: - Row softmax helpers

    static func softmaxRows(
        _ scores: inout Tensor, rows: Int, columns: Int, mask: AttentionMask?, example: Int,
        rowMax: inout Tensor, rowSum: inout Tensor, statisticsOffset: Int
    ) {
        let values = scores.mutablePointer()
        let maxima = rowMax.mutablePointer() + statisticsOffset
        let sums = rowSum.mutablePointer() + statisticsOffset
        withMaskRows(mask, example: example, rows: rows, columns: columns) { allowed in
            Threading.parallelFor(rows, minimumChunk: max(1, 8192 / max(1, columns))) { range in
                for row in range {
                    let line = values + row * columns
                    if let allowed {
                        let permitted = allowed + row * columns
                        for s in 0..<columns where !permitted[s] { line[s] = maskedLogit }
                    }
                    var maximum = -Float.infinity
                    for s in 0..<columns { maximum = max(maximum, line[s]) }
                    var sum: Float = 0
                    for s in 0..<columns {
                        let e = exp(line[s] - maximum)
                        line[s] = e
                        sum += e
                    }
                    let inverse = 1 / sum
                    for s in 0..<columns { line[s] *= inverse }
                    maxima[row] = maximum
                    sums[row] = sum
                }
            }
        }
    }

    static func rebuildProbabilities(
        _ scores: inout Tensor, rows: Int, columns: Int, mask: AttentionMask?, example: Int,
        statistics: AttentionStatistics, statisticsOffset: Int
    ) {
        let values = scores.mutablePointer()
        let maxima = statistics.rowMax.pointer + statisticsOffset
        let sums = statistics.rowSum.pointer + statisticsOffset
        withMaskRows(mask, example: example, rows: rows, columns: columns) { allowed in
            Threading.parallelFor(rows, minimumChunk: max(1, 8192 / max(1, columns))) { range in
                for row in range {
                    let line = values + row * columns
                    if let allowed {
                        let permitted = allowed + row * columns
                        for s in 0..<columns where !permitted[s] { line[s] = maskedLogit }
                    }
                    let maximum = maxima[row]
                    let inverse = 1 / sums[row]
                    for s in 0..<columns { line[s] = exp(line[s] - maximum) * inverse }
                }
            }
        }
    }

    static func softmaxBackwardRows(
        _ dScores: inout Tensor, probabilities: Tensor, rows: Int, columns: Int, mask: AttentionMask?, example: Int
    ) {
        let gradients = dScores.mutablePointer()
        let p = probabilities.pointer
        withMaskRows(mask, example: example, rows: rows, columns: columns) { allowed in
            Threading.parallelFor(rows, minimumChunk: max(1, 8192 / max(1, columns))) { range in
                for row in range {
                    let line = gradients + row * columns
                    let probabilityLine = p + row * columns
                    var dot: Float = 0
                    for s in 0..<columns { dot += line[s] * probabilityLine[s] }
                    for s in 0..<columns { line[s] = probabilityLine[s] * (line[s] - dot) }
                    if let allowed {
                        // The mask replaces scores with a constant, so masked scores get no gradient.
                        let permitted = allowed + row * columns
                        for s in 0..<columns where !permitted[s] { line[s] = 0 }
                    }
                }
            }
        }
    }

    static func withMaskRows(
        _ mask: AttentionMask?, example: Int, rows: Int, columns: Int,
        _ body: (UnsafePointer<Bool>?) -> Void
    ) {
        guard let mask else { return body(nil) }
        mask.allowed.withUnsafeBufferPointer { all in
            body(all.baseAddress! + example * rows * columns)
        }
    }

    static func checkAttentionShapes(
        q: Tensor, k: Tensor, v: Tensor,
        _ B: Int, _ L: Int, _ S: Int, _ N: Int, _ K: Int, _ H: Int, _ mask: AttentionMask?
    ) {
        if K <= 0 || N % K != 0 { fatalError("attention: \(N) query heads are not a multiple of \(K) key/value heads") }
        if q.count != B * L * N * H || k.count != B * S * K * H || v.count != B * S * K * H {
            fatalError("attention: q \(q.shape), k \(k.shape), v \(v.shape) do not match B=\(B) L=\(L) S=\(S) N=\(N) K=\(K) H=\(H)")
        }
        if let mask, mask.batch != B || mask.queries != L || mask.keys != S {
            fatalError("attention: mask [\(mask.batch), \(mask.queries), \(mask.keys)] does not match [\(B), \(L), \(S)]")
        }
    }
}
