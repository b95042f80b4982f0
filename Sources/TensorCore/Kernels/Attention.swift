import Foundation

/// The keys each query may attend to, per example: `allowed[b][i][j]` for query i and key j.
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

    /// Returns whether query `query` of example `example` may attend to key `key`.
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

/// Scaled dot-product attention over heads.
///
/// Layouts: q f32[B, L, N, H], k and v f32[B, S, K, H], output f32[B, L, N, H]. Query head n
/// reads key/value head n / (N / K), which covers multi-head (K = N) and multi-query (K = 1)
/// attention. The caller scales q beforehand. Masked scores are replaced by the finite value
/// −2.3819763e38, as big_vision does, so a row with no allowed key becomes uniform, not NaN.
/// Work is split across threads by (example, key/value head) group; each group's query heads
/// run one after another, so a thread keeps one [L, S] score matrix at a time, and the backward
/// pass recomputes scores from q and k and the saved row statistics instead of storing them.
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
        let (qs, ks, vs) = (q.pointer, k.pointer, v.pointer)
        let out = output.mutablePointer()
        let maxima = rowMax.mutablePointer()
        let sums = rowSum.mutablePointer()

        withMaskPointer(mask) { allowed in
            Threading.parallelFor(B * K, minimumChunk: 1) { groups in
                var scores = Tensor(uninitialized: [L, S])
                let p = scores.mutablePointer()
                for group in groups {
                    let (b, j) = (group / K, group % K)
                    let kvOffset = b * S * K * H + j * H
                    let permitted = allowed.map { $0 + b * L * S }
                    for n in (j * (N / K))..<((j + 1) * (N / K)) {
                        let qOffset = b * L * N * H + n * H
                        let rowOffset = (b * N + n) * L

                        // 1. scores = q·kᵀ: [L, H]·[H, S]
                        rawGEMM(m: L, n: S, k: H, alpha: 1, a: qs + qOffset, lda: N * H, transposeA: false,
                                b: ks + kvOffset, ldb: K * H, transposeB: true, beta: 0, c: p, ldc: S)

                        // 2. mask, softmax each row, keep max and sum
                        softmaxRows(p, rows: L, columns: S, allowed: permitted,
                                    rowMax: maxima + rowOffset, rowSum: sums + rowOffset)

                        // 3. output = probabilities·v: [L, S]·[S, H]
                        rawGEMM(m: L, n: H, k: S, alpha: 1, a: p, lda: S, transposeA: false,
                                b: vs + kvOffset, ldb: K * H, transposeB: false, beta: 0, c: out + qOffset, ldc: N * H)
                    }
                }
                withExtendedLifetime(scores) {}
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
        let (qs, ks, vs, dOut) = (q.pointer, k.pointer, v.pointer, dOutput.pointer)
        let (dqs, dks, dvs) = (dq.mutablePointer(), dk.mutablePointer(), dv.mutablePointer())
        let maxima = statistics.rowMax.pointer
        let sums = statistics.rowSum.pointer

        withMaskPointer(mask) { allowed in
            // Each group owns its slices of dk and dv, so groups never write the same memory.
            Threading.parallelFor(B * K, minimumChunk: 1) { groups in
                var probabilityBuffer = Tensor(uninitialized: [L, S])
                var dScoreBuffer = Tensor(uninitialized: [L, S])
                let p = probabilityBuffer.mutablePointer()
                let dScores = dScoreBuffer.mutablePointer()
                for group in groups {
                    let (b, j) = (group / K, group % K)
                    let kvOffset = b * S * K * H + j * H
                    let permitted = allowed.map { $0 + b * L * S }
                    for n in (j * (N / K))..<((j + 1) * (N / K)) {
                        let qOffset = b * L * N * H + n * H
                        let rowOffset = (b * N + n) * L

                        // 3'. rebuild the probabilities P from q·kᵀ and the saved row statistics
                        rawGEMM(m: L, n: S, k: H, alpha: 1, a: qs + qOffset, lda: N * H, transposeA: false,
                                b: ks + kvOffset, ldb: K * H, transposeB: true, beta: 0, c: p, ldc: S, record: false)
                        rebuildProbabilities(p, rows: L, columns: S, allowed: permitted,
                                             rowMax: maxima + rowOffset, rowSum: sums + rowOffset)

                        // output = P·v  →  dv += Pᵀ·dOutput, dP = dOutput·vᵀ
                        rawGEMM(m: S, n: H, k: L, alpha: 1, a: p, lda: S, transposeA: true,
                                b: dOut + qOffset, ldb: N * H, transposeB: false, beta: 1, c: dvs + kvOffset, ldc: K * H)
                        rawGEMM(m: L, n: S, k: H, alpha: 1, a: dOut + qOffset, lda: N * H, transposeA: false,
                                b: vs + kvOffset, ldb: K * H, transposeB: true, beta: 0, c: dScores, ldc: S)

                        // 2'. P = softmax(scores)  →  dScores = P ⊙ (dP − Σⱼ dP·P); masked scores get none
                        softmaxBackwardRows(dScores, probabilities: p, rows: L, columns: S, allowed: permitted)

                        // 1'. scores = q·kᵀ  →  dq = dScores·k, dk += dScoresᵀ·q
                        rawGEMM(m: L, n: H, k: S, alpha: 1, a: dScores, lda: S, transposeA: false,
                                b: ks + kvOffset, ldb: K * H, transposeB: false, beta: 0, c: dqs + qOffset, ldc: N * H)
                        rawGEMM(m: S, n: H, k: L, alpha: 1, a: dScores, lda: S, transposeA: true,
                                b: qs + qOffset, ldb: N * H, transposeB: false, beta: 1, c: dks + kvOffset, ldc: K * H)
                    }
                }
                withExtendedLifetime((probabilityBuffer, dScoreBuffer)) {}
            }
        }
        return (dq, dk, dv)
    }

    // MARK: - Row softmax helpers (one thread)

    static func softmaxRows(
        _ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int, allowed: UnsafePointer<Bool>?,
        rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<rows {
            let line = values + row * columns
            if let allowed {
                let permitted = allowed + row * columns
                for s in 0..<columns where !permitted[s] { line[s] = maskedLogit }
            }
            let maximum = VectorMath.maximum(line, count: columns)
            let sum = Float(VectorMath.exponentiate(line, count: columns, shift: maximum))
            let inverse = 1 / sum
            for s in 0..<columns { line[s] *= inverse }
            rowMax[row] = maximum
            rowSum[row] = sum
        }
    }

    static func rebuildProbabilities(
        _ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int, allowed: UnsafePointer<Bool>?,
        rowMax: UnsafePointer<Float>, rowSum: UnsafePointer<Float>
    ) {
        for row in 0..<rows {
            let line = values + row * columns
            if let allowed {
                let permitted = allowed + row * columns
                for s in 0..<columns where !permitted[s] { line[s] = maskedLogit }
            }
            VectorMath.exponentiate(line, count: columns, shift: rowMax[row], factor: 1 / rowSum[row])
        }
    }

    static func softmaxBackwardRows(
        _ gradients: UnsafeMutablePointer<Float>, probabilities: UnsafePointer<Float>, rows: Int, columns: Int,
        allowed: UnsafePointer<Bool>?
    ) {
        for row in 0..<rows {
            let line = gradients + row * columns
            let probabilityLine = probabilities + row * columns
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

    static func withMaskPointer(_ mask: AttentionMask?, _ body: (UnsafePointer<Bool>?) -> Void) {
        guard let mask else { return body(nil) }
        mask.allowed.withUnsafeBufferPointer { body($0.baseAddress!) }
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
