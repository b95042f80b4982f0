import Foundation

/// Learning rate as a function of the optimizer step: linear warmup, then cosine decay to zero.
///
/// This is big_vision's `create_learning_rate_schedule(decay_type="cosine")` as the PaliGemma
/// fine-tuning colab uses it: the colab builds the schedule for `totalSteps = trainSteps + 1`
/// and evaluates it at the 1-based step numbers 1...trainSteps, so the first update already
/// has a non-zero rate and the last one is small but not zero.
public struct LearningRateSchedule: Sendable, Equatable {
    public var baseRate: Double
    /// Steps the cosine spans (the colab passes the number of training steps plus one).
    public var totalSteps: Int
    public var warmupSteps: Int

    public init(baseRate: Double, totalSteps: Int, warmupSteps: Int) {
        self.baseRate = baseRate
        self.totalSteps = max(1, totalSteps)
        self.warmupSteps = max(0, warmupSteps)
    }

    /// The colab's schedule for `trainSteps` updates with warmup over `warmupFraction` of them.
    ///
    /// Warmup steps are `max(1, round(warmupFraction * (trainSteps + 1)))` with Python's
    /// round-half-to-even, so 0.1 of 65 steps gives 6, as in the colab's printout.
    public static func colab(baseRate: Double, trainSteps: Int, warmupFraction: Double) -> LearningRateSchedule {
        let total = trainSteps + 1
        let warmup = warmupFraction > 0
            ? max(1, Int((warmupFraction * Double(total)).rounded(.toNearestOrEven)))
            : 0
        return LearningRateSchedule(baseRate: baseRate, totalSteps: total, warmupSteps: warmup)
    }

    /// The rate for 1-based optimizer step `step`.
    public func rate(atStep step: Int) -> Double {
        let s = Double(step)
        let decaySpan = Double(max(1, totalSteps - warmupSteps))
        let progress = min(max((s - Double(warmupSteps)) / decaySpan, 0), 1)
        var rate = baseRate * 0.5 * (1 + cos(Double.pi * progress))
        if warmupSteps > 0 {
            rate *= min(1, s / Double(warmupSteps))
        }
        return rate
    }
}
