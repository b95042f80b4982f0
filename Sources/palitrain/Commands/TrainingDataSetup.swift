import Dataset
import Evaluation
import Foundation
import PaliGemmaModel
import TensorCore
import Training

/// The checked dataset of a training run and this rank's view of it.
struct TrainingDataSetup {
    let prepared: PreparedDataset
    let source: any TrainingDataSource
    let validExamples: [Example]
    /// The dataset reader's input limits, from --max-line-bytes and the image options.
    let limits: DatasetLimits

    var trainExampleCount: Int { source.examplesPerEpoch }

    /// Finds the dataset, runs the same checks as `palitrain validate` (every rank reads the
    /// records; rank 0 prints the report), and builds the rank's batch source.
    /// - startStep, cursor: the resume point and the loader cursor saved with it (nil or empty
    ///   for a new run).
    init(
        settings: TrainSettings, tokenizer: Tokenizer, imageSize: Int, rank: Int, worldSize: Int,
        startStep: Int, cursor: [UInt8]?, log: (String) -> Void
    ) throws {
        let datasetSource: DatasetSource
        if let directory = settings.data {
            datasetSource = try DatasetSource.discover(directory: directory)
        } else {
            var files: [(split: String, path: String)] = [("train", settings.trainJSONL!)]
            if let valid = settings.validJSONL { files.append(("valid", valid)) }
            datasetSource = try DatasetSource.explicit(files: files, imageRoot: settings.imageRoot)
        }

        // Only rank 0 decodes every image; the others check records and lengths only.
        var limits = DatasetLimits()
        limits.maxLineBytes = settings.maxLineBytes
        limits.maxImagePixels = settings.maxImagePixels
        limits.maxImageFileBytes = settings.maxImageBytes
        self.limits = limits
        let options = ValidationOptions(
            limits: limits, tokenizer: tokenizer, maxTextLength: settings.maxLength, imageSize: rank == 0 ? imageSize : nil,
            threads: max(1, Threading.threadCount))
        prepared = try DatasetPreflight.run(datasetSource, options: options, skipBadRecords: settings.skipBadRecords)
        if let summary = prepared.skipSummary { log("[data] \(summary) (--skip-bad-records)") }

        guard let train = prepared.examples["train"], !train.isEmpty else {
            throw UsageError("the dataset has no usable training records; check it with 'palitrain validate --data ...'")
        }
        validExamples = prepared.examples["valid"] ?? []
        log("[data] \(train.count) training and \(validExamples.count) validation examples (\(datasetSource.layout.rawValue) layout)")

        var loaderCursor: LoaderCursor?
        if let cursor, !cursor.isEmpty {
            loaderCursor = try JSONDecoder().decode(LoaderCursor.self, from: Data(cursor))
        }
        let preparer = ExamplePreparer(
            images: ImagePreprocessor(size: imageSize, limits: limits),
            sequences: try SequenceBuilder(tokenizer: tokenizer, textLength: settings.maxLength))
        source = try LoaderDataSource(
            examples: train, preparer: preparer, globalBatchSize: settings.globalBatchSize,
            gradientAccumulation: settings.gradientAccumulation, rank: rank, worldSize: worldSize, seed: settings.seed,
            startStep: startStep, cursor: loaderCursor)
    }

    /// Rank 0's validation pass over the whole validation split: greedy decoding with the KV
    /// cache, COCO mAP, and report.html regenerated from metrics.jsonl with a gallery of the
    /// first `--gallery-size` images. Nil when the dataset has no validation split.
    func validation(tokenizer: Tokenizer, settings: TrainSettings, log: @escaping (String) -> Void) throws -> Validation? {
        guard !validExamples.isEmpty else {
            log("[val] no validation split: training runs without validation")
            return nil
        }
        let validator = try Validator(
            examples: validExamples, tokenizer: tokenizer,
            settings: ValidationSettings(
                batchSize: settings.evalBatchSize, maxNewTokens: settings.maxNewTokens, galleryCount: settings.gallerySize,
                limits: limits))
        let report = ReportWriter(outputDirectory: URL(fileURLWithPath: settings.outputDirectory))
        return { model, _ in
            let result = try validator.run(model)
            return ValidationOutcome(metrics: result.metrics) {
                let page = try report.write(gallery: result.gallery)
                log("[val] report: \(page.path)")
            }
        }
    }
}
