extension PaliGemma {
    /// Bytes the decoder blocks keep for the backward pass when `rematerialize` is off, for one
    /// micro-batch of `tokens` tokens (image and text together, all examples).
    ///
    /// Per token and block: six f32 vectors of the width (block input, two norm outputs, the
    /// attention output, q and the residual), k and v, and the MLP's gate and up activations.
    /// With rematerialisation a block keeps only its input: one vector per token.
    public func storedActivationBytes(tokens: Int) -> Int {
        let llm = config.llm
        let perToken = 6 * llm.width + 2 * llm.numKVHeads * llm.headDim + 2 * llm.mlpDim
        return tokens * perToken * llm.depth * MemoryLayout<Float>.size
    }
}
