import TensorCore

/// The new tokens of one pass through the cached decoder, packed without padding.
///
/// Each example that takes part contributes one segment: a run of `count` new tokens that go
/// to cache slots `start ..< start + count`, stored at packed rows `row ..< row + count`. The
/// prefill pass has one segment per example, with its image tokens and real text tokens. Each
/// later pass has one single-token segment per unfinished example.
struct DecodeStep {
    struct Segment {
        /// Batch index of the example.
        let example: Int
        /// First cache slot of the new tokens, which is also the number of tokens cached before.
        let start: Int
        /// Number of new tokens.
        let count: Int
        /// First packed row of the new tokens.
        let row: Int
        /// cumsum(mask_ar) over the new tokens, for the prefix-LM rule. nil makes the new tokens
        /// causal, so a single new token attends every cached token and itself.
        let cumulativeAR: [Int]?

        /// Returns whether new token `query` may attend cache slot `slot`: every earlier token,
        /// and new tokens whose cumulative mask_ar does not exceed the query's (big_vision's
        /// `make_attn_mask`).
        func allows(query: Int, slot: Int) -> Bool {
            if slot < start { return true }
            let key = slot - start
            guard let cumulativeAR else { return key <= query }
            return cumulativeAR[key] <= cumulativeAR[query]
        }
    }

    let segments: [Segment]
    /// Packed rows R = Σ count.
    let rowCount: Int

    init(segments: [Segment]) {
        self.segments = segments
        self.rowCount = segments.reduce(0) { $0 + $1.count }
    }

    /// Lays out the prefill pass: each example's P image tokens and real text tokens, from slot 0.
    static func prefill(_ prompt: DecodePrompt, imageTokens: Int) -> DecodeStep {
        var segments: [Segment] = []
        var row = 0
        for b in 0..<prompt.batchSize {
            var running = 0
            var cumulative = [Int](repeating: 0, count: imageTokens)
            for value in prompt.realMaskAR(b) {
                running += Int(value)
                cumulative.append(running)
            }
            segments.append(Segment(example: b, start: 0, count: cumulative.count, row: row, cumulativeAR: cumulative))
            row += cumulative.count
        }
        return DecodeStep(segments: segments)
    }

    /// Lays out one new token for each listed example, after the `cached` tokens it already has.
    static func extend(examples: [Int], cached: [Int]) -> DecodeStep {
        let segments = examples.enumerated().map { index, b in
            Segment(example: b, start: cached[b], count: 1, row: index, cumulativeAR: nil)
        }
        return DecodeStep(segments: segments)
    }

    /// The cache location of every packed row.
    var slots: [(example: Int, slot: Int)] {
        segments.flatMap { segment in (0..<segment.count).map { (segment.example, segment.start + $0) } }
    }

    /// The RoPE position of every packed row: its slot index.
    var positions: [Int32] {
        slots.map { Int32($0.slot) }
    }

    /// The packed row of the last new token of each segment.
    var lastRows: [Int] {
        segments.map { $0.row + $0.count - 1 }
    }
}

/// The new tokens a decoder layer computes outputs for.
///
/// Every layer writes the keys and values of all new tokens, but the last layer only needs the
/// outputs of the token whose logits are wanted, the last one of each segment.
enum QuerySelection {
    case allRows
    case lastRowOfEachSegment

    /// Returns the new-token indices within `segment` that are queries.
    func queries(_ segment: DecodeStep.Segment) -> Range<Int> {
        switch self {
        case .allRows: return 0..<segment.count
        case .lastRowOfEachSegment: return (segment.count - 1)..<segment.count
        }
    }
}
