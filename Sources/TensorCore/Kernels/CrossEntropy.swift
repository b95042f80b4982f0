import Foundation

/// Softmax cross-entropy over the last axis of a logits matrix.
extension CPUKernels {
    /// Negative log-likelihood of each row's target: logits f32[R, V], targets [R].
    ///
    /// - Returns: nll f32[R] and logSumExp f32[R] (kept for the backward pass).
    public static func softmaxCrossEntropy(_ logits: Tensor, targets: [Int32]) -> (nll: Tensor, logSumExp: Tensor) {
        let (rows, vocabulary) = flattenRows(logits, "softmaxCrossEntropy logits")
        if targets.count != rows { fatalError("softmaxCrossEntropy: \(rows) logit rows but \(targets.count) targets") }
        var nll = Tensor(uninitialized: [rows])
        var logSumExp = Tensor(uninitialized: [rows])
        let losses = nll.mutablePointer()
        let normalisers = logSumExp.mutablePointer()
        let values = logits.pointer
        targets.withUnsafeBufferPointer { targetIDs in
            Threading.parallelFor(rows, minimumChunk: 1) { range in
                for row in range {
                    let line = values + row * vocabulary
                    let target = Int(targetIDs[row])
                    if target < 0 || target >= vocabulary {
                        fatalError("softmaxCrossEntropy: target id \(target) outside the vocabulary of \(vocabulary)")
                    }
                    let maximum = VectorMath.maximum(line, count: vocabulary)
                    let sum = VectorMath.sumOfExponentials(line, count: vocabulary, shift: maximum)
                    let normaliser = maximum + Float(log(sum))
                    normalisers[row] = normaliser
                    losses[row] = normaliser - line[target]
                }
            }
        }
        return (nll, logSumExp)
    }

    /// dlogits = weight·(softmax(logits) − onehot(target)) per row, with weights f32[R].
    public static func softmaxCrossEntropyBackward(
        logits: Tensor, logSumExp: Tensor, targets: [Int32], weights: [Float]
    ) -> Tensor {
        let (rows, vocabulary) = flattenRows(logits, "softmaxCrossEntropyBackward logits")
        if targets.count != rows || weights.count != rows || logSumExp.count != rows {
            fatalError("softmaxCrossEntropyBackward: \(rows) rows but \(targets.count) targets, \(weights.count) weights, \(logSumExp.count) normalisers")
        }
        var dLogits = Tensor(uninitialized: logits.shape)
        let out = dLogits.mutablePointer()
        let values = logits.pointer
        let normalisers = logSumExp.pointer
        targets.withUnsafeBufferPointer { targetIDs in
            weights.withUnsafeBufferPointer { rowWeights in
                Threading.parallelFor(rows, minimumChunk: 1) { range in
                    for row in range {
                        let line = values + row * vocabulary
                        let target = out + row * vocabulary
                        let weight = rowWeights[row]
                        let normaliser = normalisers[row]
                        VectorMath.exponentiate(line, into: target, count: vocabulary, shift: normaliser, factor: weight)
                        target[Int(targetIDs[row])] -= weight
                    }
                }
            }
        }
        return dLogits
    }
}
