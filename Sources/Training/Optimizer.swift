import Foundation

/// Optimizers that update trainable f32 parameters in place from their gradients.
///
/// State (momentum, Adam moments) is kept per parameter name so that it can be saved in
/// `state.npz` and restored for an exact resume. Every update is elementwise and runs in a
/// fixed order, so the same inputs give bit-identical results on every rank.

/// Which update rule to apply, with its hyperparameters.
public enum OptimizerKind: Sendable, Equatable {
    /// `p -= lr * (g + momentum buffer)`; momentum 0 is plain SGD, as in the PaliGemma colab.
    case sgd(momentum: Double)
    /// Adam with decoupled weight decay, big_vision's `scale_by_adam` order:
    /// `p -= lr * (adam(g) + weightDecay * p)`.
    case adamW(beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double)

    public var name: String {
        switch self {
        case .sgd: return "sgd"
        case .adamW: return "adamw"
        }
    }
}

/// Optimizer state and the update step.
public struct Optimizer: Sendable {
    public let kind: OptimizerKind
    /// Number of updates applied so far (the Adam bias correction uses it).
    public private(set) var updateCount: Int = 0
    /// First moment (Adam) or momentum buffer (SGD), by parameter name.
    public private(set) var firstMoment: [String: [Float]] = [:]
    /// Second moment (Adam only), by parameter name.
    public private(set) var secondMoment: [String: [Float]] = [:]

    public init(kind: OptimizerKind) {
        self.kind = kind
    }

    /// Names of the state arrays this optimizer keeps, for checkpoints.
    public var stateArrayNames: [String] {
        switch kind {
        case .sgd(let momentum) where momentum == 0: return []
        case .sgd: return ["momentum"]
        case .adamW: return ["mu", "nu"]
        }
    }

    /// Restores state read from a checkpoint.
    public mutating func restore(updateCount: Int, firstMoment: [String: [Float]], secondMoment: [String: [Float]]) {
        self.updateCount = updateCount
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
    }

    /// Marks the start of one optimizer step; call once before `update` for each parameter.
    public mutating func beginStep() {
        updateCount += 1
    }

    /// Updates `parameter` in place from `gradient` with learning rate `rate`.
    ///
    /// - parameter: f32[n], the trainable values.
    /// - gradient: f32[n], already averaged across ranks and clipped.
    public mutating func update(
        name: String, parameter: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, rate: Double
    ) {
        let count = parameter.count
        if gradient.count != count {
            fatalError("optimizer: parameter '\(name)' has \(count) values but its gradient has \(gradient.count)")
        }
        let lr = Float(rate)

        switch kind {
        case .sgd(let momentum):
            if momentum == 0 {
                for i in 0..<count { parameter[i] -= lr * gradient[i] }
                return
            }
            let beta = Float(momentum)
            var buffer = firstMoment[name] ?? [Float](repeating: 0, count: count)
            buffer.withUnsafeMutableBufferPointer { velocity in
                for i in 0..<count {
                    velocity[i] = beta * velocity[i] + gradient[i]
                    parameter[i] -= lr * velocity[i]
                }
            }
            firstMoment[name] = buffer

        case .adamW(let beta1, let beta2, let epsilon, let weightDecay):
            var mu = firstMoment[name] ?? [Float](repeating: 0, count: count)
            var nu = secondMoment[name] ?? [Float](repeating: 0, count: count)
            let b1 = Float(beta1), b2 = Float(beta2), eps = Float(epsilon), wd = Float(weightDecay)
            let step = Double(max(updateCount, 1))
            let correction1 = Float(1 - Foundation.pow(beta1, step))
            let correction2 = Float(1 - Foundation.pow(beta2, step))
            mu.withUnsafeMutableBufferPointer { m in
                nu.withUnsafeMutableBufferPointer { v in
                    for i in 0..<count {
                        let g = gradient[i]
                        m[i] = b1 * m[i] + (1 - b1) * g
                        v[i] = b2 * v[i] + (1 - b2) * g * g
                        let mHat = m[i] / correction1
                        let vHat = v[i] / correction2
                        let direction = mHat / ((vHat).squareRoot() + eps) + wd * parameter[i]
                        parameter[i] -= lr * direction
                    }
                }
            }
            firstMoment[name] = mu
            secondMoment[name] = nu
        }
    }
}

/// Scales gradients so that their global L2 norm is at most `maxNorm`.
///
/// Returns the norm before clipping, computed in Double over all buffers in order, so every
/// rank that holds the same reduced gradients computes the same norm and the same scale.
@discardableResult
public func clipByGlobalNorm(_ gradients: [UnsafeMutableBufferPointer<Float>], maxNorm: Double?) -> Double {
    var sumOfSquares = 0.0
    for buffer in gradients {
        var partial: Float = 0
        var blockSum = 0.0
        for (i, g) in buffer.enumerated() {
            partial += g * g
            if i & 4095 == 4095 {
                blockSum += Double(partial)
                partial = 0
            }
        }
        sumOfSquares += blockSum + Double(partial)
    }
    let norm = sumOfSquares.squareRoot()

    if let maxNorm, maxNorm > 0, norm > maxNorm {
        let scale = Float(maxNorm / norm)
        for buffer in gradients {
            for i in buffer.indices { buffer[i] *= scale }
        }
    }
    return norm
}
