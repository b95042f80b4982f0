import Foundation
import PaliGemmaModel
import TensorCore
import Training

extension TrainCommand {
    /// The resolved settings as a flat list of (option, value), in the order of `--help`.
    static func resolvedPairs(_ s: TrainSettings, totalSteps: Int) -> [(String, String)] {
        [
            ("data", s.data ?? "-"), ("train-jsonl", s.trainJSONL ?? "-"), ("valid-jsonl", s.validJSONL ?? "-"),
            ("image-root", s.imageRoot ?? "-"), ("checkpoint", s.checkpoint), ("tokenizer", s.tokenizer),
            ("output-dir", s.outputDirectory), ("batch-size", "\(s.globalBatchSize)"), ("grad-accum", "\(s.gradientAccumulation)"),
            ("max-steps", "\(totalSteps)"), ("epochs", s.epochs.map { "\($0)" } ?? "-"), ("optimizer", s.optimizer),
            ("lr", "\(s.learningRate)"), ("momentum", "\(s.momentum)"), ("beta1", "\(s.beta1)"), ("beta2", "\(s.beta2)"),
            ("adam-eps", "\(s.epsilon)"), ("weight-decay", "\(s.weightDecay)"), ("warmup", "\(s.warmupFraction)"),
            ("max-grad-norm", "\(s.maxGradNorm)"), ("trainable", s.trainable), ("seed", "\(s.seed)"), ("max-len", "\(s.maxLength)"),
            ("skip-bad-records", "\(s.skipBadRecords)"),
            ("max-line-bytes", "\(s.maxLineBytes)"), ("max-image-pixels", "\(s.maxImagePixels)"), ("max-image-bytes", "\(s.maxImageBytes)"), ("grad-compression", s.gradientCompression), ("on-overflow", s.onOverflow),
            ("compute", s.compute), ("vision-cache-mb", "\(s.visionCacheMB)"), ("vision-cache-dtype", s.visionCacheDType),
            ("threads", "\(s.threads)"), ("check-replicas-every", "\(s.checkReplicasEvery)"),
            ("comm-timeout", "\(s.commTimeout)"), ("eval-every", "\(s.evalEvery)"), ("max-new-tokens", "\(s.maxNewTokens)"),
            ("eval-batch-size", "\(s.evalBatchSize)"), ("gallery-size", "\(s.gallerySize)"), ("save-every", "\(s.saveEvery)"),
            ("keep-last", "\(s.keepLast)"), ("resume", s.resume),
        ]
    }

    /// Writes OUTPUT/config.json: every resolved setting, the model sizes and the world size.
    static func writeResolvedConfig(_ settings: TrainSettings, config: PaliGemmaConfig, worldSize: Int, totalSteps: Int) throws {
        var object: [String: Any] = [:]
        for (key, value) in resolvedPairs(settings, totalSteps: totalSteps) { object[key] = value }
        object["world-size"] = worldSize
        let model = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config))
        object["model"] = model
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        let path = (settings.outputDirectory as NSString).appendingPathComponent("config.json")
        guard FileManager.default.createFile(atPath: path, contents: data + Data([10])) else {
            throw RunOutputError.writeFailed(path: path, reason: "cannot create the file")
        }
    }

    /// Turns on the model's vision-feature cache with this rank's share of --vision-cache-mb,
    /// unless it is 0 or the vision encoder trains, and returns the state for the start-up table.
    static func enableVisionCache(_ settings: TrainSettings, model: PaliGemma, localRanks: Int) -> String {
        guard settings.visionCacheMB > 0 else { return "off (--vision-cache-mb 0)" }
        let ranks = max(1, localRanks)
        let budget = settings.visionCacheMB * (1 << 20) / ranks
        let dtype = DType(rawValue: settings.visionCacheDType) ?? .f16
        do throws(VisionFeatureCacheError) {
            try model.enableVisionFeatureCache(budgetBytes: budget, dtype: dtype)
        } catch {
            guard case .encoderTrains(let parameters, _) = error else { return "off: \(error)" }
            return "off: --trainable '\(settings.trainable)' trains \(parameters.count) vision encoder parameters, "
                + "so the features change every step"
        }
        let perImage = VisionFeatureCache.bytesPerImage(model.config, dtype: dtype)
        let share = ranks > 1 ? " (\(settings.visionCacheMB) MiB shared by \(ranks) ranks on this machine)" : ""
        return String(format: "%@, %.0f MiB per rank%@: up to %d images of %.0f KiB",
                      dtype.rawValue, Double(budget) / Double(1 << 20), share, budget / perImage, Double(perImage) / 1024)
    }

    /// Prints the two-column start-up table on rank 0.
    static func printSettings(
        _ settings: TrainSettings, config: PaliGemmaConfig, parameters: ParameterStore, model: PaliGemma, worldSize: Int, threads: Int,
        totalSteps: Int, trainExamples: Int, visionCache: String, log: (String) -> Void
    ) {
        let trainable = parameters.trainableNames.reduce(0) { $0 + parameters.shape(of: $1).reduce(1, *) }
        let total = parameters.names.reduce(0) { $0 + parameters.shape(of: $1).reduce(1, *) }
        var rows = resolvedPairs(settings, totalSteps: totalSteps)
        rows.append(("world size", "\(worldSize) rank\(worldSize == 1 ? "" : "s"), \(threads) thread\(threads == 1 ? "" : "s") each"))
        rows.append(("per-rank micro-batch", "\(settings.globalBatchSize / (worldSize * settings.gradientAccumulation))"))
        rows.append(("training examples", "\(trainExamples)"))
        rows.append(("image", "\(config.vision.imageSize)px, \(config.vision.numTokens) tokens"))
        rows.append(("vision tower", "width \(config.vision.width), depth \(config.vision.depth)"))
        rows.append(("decoder", "width \(config.llm.width), depth \(config.llm.depth), vocabulary \(config.llm.vocabSize)"))
        rows.append(("parameters", "\(total) total, \(trainable) trainable"))
        rows.append(("vision-feature cache", visionCache))
        rows.append(("rematerialise blocks", model.rematerialize ? "yes (activations of one micro-batch exceed this rank's share of 4 GiB)" : "no"))
        let width = rows.map(\.0.count).max() ?? 0
        log("+" + String(repeating: "-", count: width + 2) + "+")
        for (key, value) in rows {
            log("| " + key.padding(toLength: width, withPad: " ", startingAt: 0) + " | " + value)
        }
        log("+" + String(repeating: "-", count: width + 2) + "+")
    }
}
