import Foundation
import TensorCore

extension PaliGemma {
    /// Decodes greedily without a cache: every step runs the full forward pass (vision tower
    /// included) over the prompt and all tokens generated so far, and reads the logits of the
    /// last position.
    ///
    /// This is big_vision's cache-free fallback and the reference that `decode` is tested
    /// against. Its cost grows with the square of the sequence length, so use `decode` for
    /// anything else. `options.cachePrecision` must be `.f32`: there is no cache to round.
    public func decodeByRecomputing(_ prompt: DecodePrompt, options: DecodeOptions) throws(PaliGemmaError) -> DecodeResult {
        try checkDecodeInputs(prompt, options)
        if options.cachePrecision != .f32 {
            throw .invalidBatch(
                field: "cachePrecision", reason: "decoding by recomputing keeps no cache to round; use f32")
        }
        let clock = ContinuousClock()
        var timing = DecodeTiming()
        var state = DecodeState(batchSize: prompt.batchSize, vocabSize: config.llm.vocabSize, options: options)

        var active = Array(0..<prompt.batchSize)
        var isFirst = true
        while !active.isEmpty {
            let start = clock.now
            let output = try forward(recomputeBatch(prompt, state, examples: active), logits: .supervised)
            state.appendGreedy(output.logits, examples: active)
            if isFirst {
                timing.prefillSeconds = seconds(clock.now - start)
            } else {
                timing.stepSeconds += seconds(clock.now - start)
                timing.steps += 1
            }
            isFirst = false
            active = state.activeExamples
        }
        return state.result(timing: timing)
    }

    /// A batch whose only supervised target follows the last token of each example, so that
    /// `forward(_, logits: .supervised)` returns exactly one logits row per example: the one
    /// that predicts the next token.
    ///
    /// Row of example b: real prompt tokens, then its generated tokens (mask_ar 1), then one pad
    /// whose target slot carries mask_loss 1; padding is masked with mask_input.
    private func recomputeBatch(_ prompt: DecodePrompt, _ state: DecodeState, examples: [Int]) throws(PaliGemmaError) -> PaliGemmaBatch {
        let lengths = examples.map { prompt.realTokenCount($0) + state.tokens[$0].count }
        let stored = (lengths.max() ?? 0) + 1
        var text: [Int32] = []
        var maskAR: [Int32] = []
        var maskLoss: [Int32] = []
        var maskInput: [Int32] = []
        for (b, length) in zip(examples, lengths) {
            let generated = state.tokens[b]
            let padding = stored - length
            text += prompt.realTokens(b) + generated + [Int32](repeating: 0, count: padding)
            maskAR += prompt.realMaskAR(b) + [Int32](repeating: 1, count: generated.count + padding)
            maskLoss += [Int32](repeating: 0, count: length) + [1] + [Int32](repeating: 0, count: padding - 1)
            maskInput += [Int32](repeating: 1, count: length) + [Int32](repeating: 0, count: padding)
        }

        let pixels = prompt.images.count / prompt.batchSize
        let images = Kernels.selectRows(prompt.images.reshaped([prompt.batchSize, pixels]), examples)
            .reshaped([examples.count] + prompt.images.shape.dropFirst())
        return try PaliGemmaBatch(images: images, text: text, maskAR: maskAR, maskLoss: maskLoss, maskInput: maskInput)
    }
}
