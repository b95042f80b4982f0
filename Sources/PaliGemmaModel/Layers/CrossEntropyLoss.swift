import TensorCore

/// big_vision's PaliGemma training loss: per example, the masked sum of next-token NLL divided
/// by max(1, number of supervised targets); then the plain mean over examples.
///
/// Examples with many supervised tokens weigh as much as examples with few.
public enum CrossEntropyLoss {
    /// What each logit row is scored against.
    public struct Targets {
        /// Target token id of each row: [R].
        public let ids: [Int32]
        /// Example (batch index) of each row: [R].
        public let example: [Int]
        /// 1 where the target is supervised (mask_loss), 0 elsewhere: [R].
        public let mask: [Float]
        /// Number of examples B.
        public let batchSize: Int

        public init(ids: [Int32], example: [Int], mask: [Float], batchSize: Int) {
            if ids.count != example.count || ids.count != mask.count {
                fatalError("CrossEntropyLoss.Targets: \(ids.count) ids, \(example.count) example indices, \(mask.count) mask values")
            }
            self.ids = ids
            self.example = example
            self.mask = mask
            self.batchSize = batchSize
        }

        /// Weight of each row in the batch loss: mask / (max(1, supervised count of its example)·B).
        var rowWeights: [Float] {
            let counts = supervisedCounts
            return ids.indices.map { mask[$0] / (Float(max(1, counts[example[$0]])) * Float(batchSize)) }
        }

        var supervisedCounts: [Int] {
            var counts = [Int](repeating: 0, count: batchSize)
            for (row, weight) in mask.enumerated() where weight != 0 { counts[example[row]] += 1 }
            return counts
        }
    }

    public struct Output {
        /// Mean over examples of the per-example loss.
        public let loss: Float
        /// Per-example loss: [B].
        public let exampleLoss: [Float]
        /// NLL of each row times its mask: [R].
        public let rowNLL: [Float]
    }

    public struct Cache {
        let logits: Tensor  // [R, V]
        let logSumExp: Tensor  // [R]
        let targets: Targets
    }

    /// - logits: f32[R, V]
    public static func forward(_ logits: Tensor, _ targets: Targets) -> (Output, Cache) {
        let (nll, logSumExp) = Kernels.softmaxCrossEntropy(logits, targets: targets.ids)
        let counts = targets.supervisedCounts
        let values = nll.scalars
        var sums = [Double](repeating: 0, count: targets.batchSize)
        var rowNLL = [Float](repeating: 0, count: values.count)
        for row in values.indices {
            rowNLL[row] = values[row] * targets.mask[row]
            sums[targets.example[row]] += Double(rowNLL[row])
        }
        let exampleLoss = (0..<targets.batchSize).map { Float(sums[$0] / Double(max(1, counts[$0]))) }
        let loss = Float(exampleLoss.reduce(0.0) { $0 + Double($1) } / Double(max(1, targets.batchSize)))
        return (Output(loss: loss, exampleLoss: exampleLoss, rowNLL: rowNLL),
                Cache(logits: logits, logSumExp: logSumExp, targets: targets))
    }

    /// Gradient of `scale`·loss with respect to the logits: f32[R, V].
    public static func backward(_ cache: Cache, scale: Float = 1) -> Tensor {
        let weights = cache.targets.rowWeights.map { $0 * scale }
        return Kernels.softmaxCrossEntropyBackward(
            logits: cache.logits, logSumExp: cache.logSumExp, targets: cache.targets.ids, weights: weights)
    }
}
