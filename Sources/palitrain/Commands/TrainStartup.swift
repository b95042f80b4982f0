import Foundation
import PaliGemmaModel
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
            ("compute", s.compute), ("threads", "\(s.threads)"), ("check-replicas-every", "\(s.checkReplicasEvery)"),
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

    /// Prints the two-column start-up table on rank 0.
    static func printSettings(
        _ settings: TrainSettings, config: PaliGemmaConfig, parameters: ParameterStore, model: PaliGemma, worldSize: Int, threads: Int,
        totalSteps: Int, trainExamples: Int, log: (String) -> Void
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
        rows.append(("rematerialise blocks", model.rematerialize ? "yes (activations of one micro-batch exceed this rank's share of 4 GiB)" : "no"))
        let width = rows.map(\.0.count).max() ?? 0
        log("+" + String(repeating: "-", count: width + 2) + "+")
        for (key, value) in rows {
            log("| " + key.padding(toLength: width, withPad: " ", startingAt: 0) + " | " + value)
        }
        log("+" + String(repeating: "-", count: width + 2) + "+")
    }
}
