import TensorCore

/// One incremental decoding step of Gemma attention against a KV cache.
extension GemmaAttention {
    /// Attends one new token per example to its cached keys and values, after appending its own.
    ///
    /// - x: f32[B, 1, D], the normed new tokens
    /// - keys, values: the layer's cache, f32[B·C, K·H] with C slots per example; the new key and
    ///   value are written at slot `lengths[b]`, and slots up to and including it are attended
    /// - lengths: [B] tokens already cached per example, which is also each new token's position
    /// - Returns: y f32[B, 1, D]
    public static func decodeStep(
        _ x: Tensor, _ p: Parameters, keys: inout Tensor, values: inout Tensor, lengths: [Int], cacheDType: DType
    ) -> Tensor {
        let B = x.shape[0]
        let (N, K, H, D) = (p.numHeads, p.numKVHeads, p.headDim, p.width)
        let capacity = keys.shape[0] / B

        // 1-3. projections and RoPE at each example's next position
        let rotary = RotaryTable(positions: lengths.map { Int32($0) }, headDim: H, base: PaliGemmaConfig.ropeBase)
        let (q, projectedKey, projectedValue) = projectQueryKeyValue(x, p, rotary)
        var (k, v) = (projectedKey, projectedValue)
        Kernels.roundInPlace(&k, to: cacheDType)
        Kernels.roundInPlace(&v, to: cacheDType)

        // 4. append to the cache, then attend to slots 0...lengths[b]
        let slots = (0..<B).map { $0 * capacity + lengths[$0] }
        Kernels.setRows(k.reshaped([B, K * H]), at: slots, in: &keys)
        Kernels.setRows(v.reshaped([B, K * H]), at: slots, in: &values)
        var allowed = [Bool](repeating: false, count: B * capacity)
        for b in 0..<B {
            for slot in 0...lengths[b] { allowed[b * capacity + slot] = true }
        }
        let mask = AttentionMask(batch: B, queries: 1, keys: capacity, allowed: allowed)
        let (o, _) = Kernels.attention(
            q: q, k: keys.reshaped([B, capacity, K, H]), v: values.reshaped([B, capacity, K, H]),
            batch: B, queryLength: 1, keyLength: capacity, queryHeads: N, kvHeads: K, headDim: H,
            mask: mask)

        // 5. y = o·Wo
        return Kernels.matmul(o.reshaped([B, 1, N * H]), p.output.reshaped([N * H, D]))
    }
}
