import TensorCore
import XCTest

/// The threaded kernels must give the same values with one thread as with several.
final class ThreadingTests: XCTestCase {
    override func tearDown() {
        Threading.setThreadCount(0)
    }

    private func run(threads: Int, _ body: () -> [Tensor]) -> [Tensor] {
        Threading.setThreadCount(threads)
        return body()
    }

    func testKernelsAgreeAcrossThreadCounts() {
        var random = TestRandom(seed: 5)
        let x = random.tensor([300, 257])
        let dy = random.tensor([300, 257])
        let scale = random.tensor([257])
        let bias = random.tensor([257])
        let table = RotaryTable(positions: (0..<300).map { Int32($0) }, headDim: 8)
        let rotary = random.tensor([300, 4, 8])

        let compute: () -> [Tensor] = {
            let gelu = Kernels.geluTanh(x)
            let gated = Kernels.gatedGELU(gate: x, up: dy)
            let (layerNormed, mean, rstd) = Kernels.layerNorm(x, scale: scale, bias: bias, epsilon: 1e-6)
            let dScale = GradientBuffer(zeros: [257])
            let dBias = GradientBuffer(zeros: [257])
            let dx = Kernels.layerNormBackward(dy, x: x, mean: mean, rstd: rstd, scale: scale,
                                               dScale: dScale.whole, dBias: dBias.whole)
            let (rmsNormed, _) = Kernels.rmsNorm(x, scale: scale, epsilon: 1e-6)
            var rotated = rotary
            Kernels.applyRotary(&rotated, table: table, heads: 4)
            var broadcast = x
            Kernels.addBroadcast(&broadcast, bias)
            return [gelu, gated, layerNormed, dx, dScale.snapshot(), dBias.snapshot(), rmsNormed, rotated, broadcast]
        }
        let serial = run(threads: 1, compute)
        let threaded = run(threads: 4, compute)
        for (index, (a, b)) in zip(serial, threaded).enumerated() {
            XCTAssertEqual(a.scalars, b.scalars, "output \(index) differs between 1 and 4 threads")
        }
    }

    func testAttentionAgreesAcrossThreadCounts() {
        var random = TestRandom(seed: 8)
        let (B, L, N, K, H) = (3, 7, 4, 2, 5)
        let q = random.tensor([B, L, N, H])
        let k = random.tensor([B, L, K, H])
        let v = random.tensor([B, L, K, H])
        let dOut = random.tensor([B, L, N, H])
        let mask = AttentionMask(batch: B, queries: L, keys: L, allowed: (0..<(B * L * L)).map { $0 % 3 != 1 })
        let compute: () -> [Tensor] = {
            let (out, statistics) = Kernels.attention(q: q, k: k, v: v, batch: B, queryLength: L, keyLength: L,
                                                      queryHeads: N, kvHeads: K, headDim: H, mask: mask)
            let (dq, dk, dv) = Kernels.attentionBackward(dOut, q: q, k: k, v: v, statistics: statistics, batch: B,
                                                         queryLength: L, keyLength: L, queryHeads: N, kvHeads: K,
                                                         headDim: H, mask: mask)
            return [out, statistics.rowMax, statistics.rowSum, dq, dk, dv]
        }
        let serial = run(threads: 1, compute)
        let threaded = run(threads: 4, compute)
        for (index, (a, b)) in zip(serial, threaded).enumerated() {
            XCTAssertEqual(a.scalars, b.scalars, "attention output \(index) differs between 1 and 4 threads")
        }
    }

    /// A product split across threads is repeatable for a given thread count, and agrees with
    /// one thread to float rounding. It need not agree bit for bit: OpenBLAS rounds an element
    /// differently depending on where its row falls in the kernel's tiles (seen with OpenBLAS
    /// 0.3.21 on AVX-512 CPUs), and the split moves rows between tiles. Replicas stay identical
    /// anyway, because every rank applies the same all-reduced gradient.
    func testGEMMIsRepeatableAndAgreesAcrossThreadCounts() {
        var random = TestRandom(seed: 9)
        let a = random.tensor([301, 257])
        let b = random.tensor([257, 190])
        let product: () -> [Tensor] = {
            [Kernels.matmul(a, b), Kernels.matmul(b.reshaped([190, 257]), transposed: a)]
        }
        let serial = run(threads: 1, product)
        let threaded = run(threads: 3, product)
        let again = run(threads: 3, product)
        for (index, (x, y)) in zip(serial, threaded).enumerated() {
            XCTAssertEqual(threaded[index].scalars, again[index].scalars, "product \(index) differs between two runs on 3 threads")
            let worst = zip(x.scalars, y.scalars).map { abs($0 - $1) }.max() ?? 0
            let scale = x.scalars.map { abs($0) }.max() ?? 1
            XCTAssertLessThan(worst, 1e-5 * scale, "product \(index): 1 and 3 threads differ by \(worst)")
        }
    }

    func testParallelForCoversEveryIndexOnce() {
        Threading.setThreadCount(3)
        var hits = [Int](repeating: 0, count: 100_003)
        hits.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Threading.parallelFor(buffer.count, minimumChunk: 1000) { range in
                for i in range { base[i] += 1 }
            }
        }
        XCTAssertEqual(Set(hits), [1])
    }
}
