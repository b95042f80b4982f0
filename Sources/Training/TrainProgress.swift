import Foundation

/// What the trainer reports after each step; the console line and metrics.jsonl are made from it.
public struct StepReport: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// Mean over the global batch of each example's mean token loss.
    public var loss: Double
    public var learningRate: Double
    /// Global L2 norm of the reduced gradients before clipping.
    public var gradientNorm: Double
    public var examplesPerSecond: Double
    public var tokensPerSecond: Double
    public var stepSeconds: Double
    public var bytesSent: Int
    public var compressionRatio: Double
    public var fallbackBuckets: Int
    public var skipped: Bool
    public var etaSeconds: Double
    /// Vision-feature cache lookups of the step over all ranks, or nil when the cache is off.
    public var visionCache: VisionCacheCounts?

    /// The values written to metrics.jsonl.
    public var metrics: [String: Double] {
        var values: [String: Double] = [
            "train/loss": loss,
            "train/lr": learningRate,
            "train/grad_norm": gradientNorm,
            "train/examples_per_s": examplesPerSecond,
            "train/tokens_per_s": tokensPerSecond,
            "time/step_ms": stepSeconds * 1000,
            "comm/bytes": Double(bytesSent),
            "comm/ratio": compressionRatio,
            "comm/fallback_buckets": Double(fallbackBuckets),
            "train/skipped": skipped ? 1 : 0,
        ]
        if let visionCache {
            values["vision_cache/hits"] = Double(visionCache.hits)
            values["vision_cache/misses"] = Double(visionCache.misses)
        }
        return values
    }

    /// One console line: step/total, loss, lr, grad norm, throughput, communication, ETA.
    public var line: String {
        let width = String(totalSteps).count
        let stepText = String(repeating: " ", count: max(0, width - String(step).count)) + "\(step)/\(totalSteps)"
        var text = "step \(stepText) | loss \(format(loss, "%.4f")) | lr \(format(learningRate, "%.3e"))"
        text += " | grad norm \(format(gradientNorm, "%.3f"))"
        text += " | \(format(examplesPerSecond, "%.2f")) ex/s \(format(tokensPerSecond, "%.0f")) tok/s"
        text += " | sent \(format(Double(bytesSent) / 1_000_000, "%.2f")) MB x\(format(compressionRatio, "%.2f"))"
        if let visionCache { text += " | vision cache \(visionCache.hits)/\(visionCache.hits + visionCache.misses) hits" }
        text += " | eta \(formatDuration(etaSeconds))"
        if skipped { text += " | update skipped (non-finite gradients)" }
        return text
    }
}

/// Vision-feature cache lookups: images whose features came from the cache, and images that
/// ran through the vision encoder.
public struct VisionCacheCounts: Sendable, Equatable {
    public var hits: Int
    public var misses: Int

    public init(hits: Int, misses: Int) {
        self.hits = hits
        self.misses = misses
    }
}

func format(_ value: Double, _ pattern: String) -> String {
    String(format: pattern, value)
}

/// Formats seconds as `1h02m`, `3m05s` or `12s`.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let total = Int(seconds.rounded())
    if total >= 3600 { return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60) }
    if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return "\(total)s"
}
