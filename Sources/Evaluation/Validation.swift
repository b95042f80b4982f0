import Dataset
import Foundation
import PaliGemmaModel
import TensorCore

/// Settings of a validation pass.
public struct ValidationSettings: Sendable {
    /// Examples decoded together.
    public var batchSize: Int
    /// Tokens generated at most per example, EOS included; outputs that reach it count as
    /// runaway.
    public var maxNewTokens: Int
    public var cachePrecision: KVCachePrecision
    /// Images kept for the report gallery: the first N examples.
    public var galleryCount: Int
    /// Longer side of a gallery image in pixels (the report shows them at most this size).
    public var galleryMaxSide: Int
    public var limits: DatasetLimits

    public init(
        batchSize: Int = 8, maxNewTokens: Int = 128, cachePrecision: KVCachePrecision = .f32, galleryCount: Int = 8,
        galleryMaxSide: Int = 640, limits: DatasetLimits = DatasetLimits()
    ) {
        self.batchSize = batchSize
        self.maxNewTokens = maxNewTokens
        self.cachePrecision = cachePrecision
        self.galleryCount = galleryCount
        self.galleryMaxSide = galleryMaxSide
        self.limits = limits
    }
}

/// Decodes every example of a detection split and scores the outputs with COCO mAP.
///
/// Each example's prompt is its own prefix (`detect a ; b`); its suffix is the ground truth.
/// Outputs are parsed with the prompt's classes, and each object is scored from the
/// log-probabilities of its loc and label tokens (`DetectionScore`). Boxes are compared in
/// pixels of the oriented original image. The prompts and ground truth are checked when the
/// validator is made, so a training run fails at start, not at its first evaluation.
public final class Validator {
    /// One checked example: its prompt ids, classes and ground-truth objects.
    struct Item {
        let example: Example
        let prefixIDs: [Int32]
        let classes: [String]
        let groundTruth: [ParsedObject]
    }

    public let settings: ValidationSettings
    public let tokenizer: Tokenizer
    /// Every class named in any prompt, in order of first appearance.
    public let classes: [String]
    let items: [Item]
    private let layout: SequenceLayout

    public var exampleCount: Int { items.count }

    public init(examples: [Example], tokenizer: Tokenizer, settings: ValidationSettings = ValidationSettings()) throws {
        for (name, value) in [("batchSize", settings.batchSize), ("maxNewTokens", settings.maxNewTokens), ("galleryMaxSide", settings.galleryMaxSide)]
        where value < 1 {
            throw ValidationError.invalidSetting(name: name, value: value, minimum: 1)
        }
        if settings.galleryCount < 0 {
            throw ValidationError.invalidSetting(name: "galleryCount", value: settings.galleryCount, minimum: 0)
        }
        guard !examples.isEmpty else { throw ValidationError.noExamples }

        var items: [Item] = []
        var classes: [String] = []
        for example in examples {
            guard let promptClasses = DetectionPrompt.classes(fromPrefix: example.prefix) else {
                throw ValidationError.notDetectionPrompt(file: example.sourceFile, line: example.line, prefix: example.prefix)
            }
            let groundTruth: [ParsedObject]
            do {
                groundTruth = try DetectionParser(classes: promptClasses).parseGroundTruth(example.suffix)
            } catch {
                throw ValidationError.invalidGroundTruth(
                    file: example.sourceFile, line: example.line, suffix: example.suffix, reason: "\(error)")
            }
            let prefixIDs: [Int32]
            do {
                prefixIDs = try tokenizer.encode(example.prefix)
            } catch {
                throw ValidationError.promptEncodingFailed(file: example.sourceFile, line: example.line, reason: "\(error)")
            }
            for name in promptClasses where !classes.contains(name) { classes.append(name) }
            items.append(Item(example: example, prefixIDs: prefixIDs, classes: promptClasses, groundTruth: groundTruth))
        }

        self.settings = settings
        self.tokenizer = tokenizer
        self.classes = classes
        self.items = items
        let longest = items.map(\.prefixIDs.count).max() ?? 0
        layout = try SequenceLayout(
            bos: tokenizer.bosID, eos: tokenizer.eosID, pad: tokenizer.padID, separator: tokenizer.newlineID,
            textLength: longest + 2)
    }

    /// Decodes all examples in batches and scores them.
    ///
    /// - progress: called after each batch with (examples done, examples in total)
    public func run(_ model: PaliGemma, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> ValidationResult {
        let clock = ContinuousClock()
        let start = clock.now
        let vocabulary = model.config.llm.vocabSize
        if tokenizer.vocabularySize > vocabulary {
            throw ValidationError.vocabularyMismatch(
                tokenizer: tokenizer.source, pieces: tokenizer.vocabularySize, modelVocabulary: vocabulary)
        }
        let preprocessor = ImagePreprocessor(size: model.config.vision.imageSize, limits: settings.limits)
        let options = DecodeOptions(
            maxNewTokens: settings.maxNewTokens, cachePrecision: settings.cachePrecision, stopAtEOS: true,
            eosID: tokenizer.eosID)

        var outputs: [GeneratedOutput] = []
        var decodeSeconds = 0.0
        var batchStart = 0
        while batchStart < items.count {
            let batch = Array(items[batchStart..<min(items.count, batchStart + settings.batchSize)])
            let (prompt, sizes) = try makePrompt(batch, preprocessor: preprocessor)

            let result: DecodeResult
            do {
                result = try model.decode(prompt, options: options)
            } catch {
                let names = batch.map { "'\($0.example.image)'" }.joined(separator: ", ")
                throw ValidationError.decodeFailed(examples: names, reason: "\(error)")
            }
            decodeSeconds += result.timing.totalSeconds

            for index in batch.indices {
                outputs.append(GeneratedOutput(
                    tokens: result.tokens[index], logProbs: result.logProbs[index], width: sizes[index].width,
                    height: sizes[index].height))
            }
            batchStart += batch.count
            progress?(batchStart, items.count)
        }

        var validation = try score(outputs)
        validation.decodeSeconds = decodeSeconds
        validation.totalSeconds = seconds(clock.now - start)
        return validation
    }

    /// The tokens generated for one example, and the oriented size of its image.
    struct GeneratedOutput {
        var tokens: [Int32]
        var logProbs: [Float]
        var width: Int
        var height: Int
    }

    /// Parses, scores and evaluates the outputs of every example, in example order, and loads
    /// the gallery images. Timings are left at zero.
    func score(_ outputs: [GeneratedOutput]) throws -> ValidationResult {
        if outputs.count != items.count { fatalError("Validator.score: \(outputs.count) outputs for \(items.count) examples") }
        let predictions = zip(items, outputs).map { item, output in
            prediction(item, tokens: output.tokens, logProbs: output.logProbs, size: (output.width, output.height))
        }
        return ValidationResult(
            score: scoreResult(predictions), predictions: predictions, gallery: try galleryItems(predictions),
            decodeSeconds: 0, totalSeconds: 0)
    }

    // MARK: - Steps

    /// Images and prompt rows of one batch, padded to its longest prompt; returns the oriented
    /// size of each image too.
    private func makePrompt(_ batch: [Item], preprocessor: ImagePreprocessor) throws -> (DecodePrompt, [(width: Int, height: Int)]) {
        let size = preprocessor.size
        var pixels: [Float] = []
        pixels.reserveCapacity(batch.count * size * size * 3)
        var sizes: [(width: Int, height: Int)] = []
        for item in batch {
            let image: PreparedImage
            do {
                image = try preprocessor.load(path: item.example.imagePath)
            } catch {
                throw ValidationError.imageFailed(
                    file: item.example.sourceFile, line: item.example.line, image: item.example.image, reason: "\(error)")
            }
            pixels += image.pixels
            sizes.append((image.info.width, image.info.height))
        }

        let length = batch.map { $0.prefixIDs.count + 2 }.max() ?? 2
        var text: [Int32] = []
        var maskAR: [Int32] = []
        var maskInput: [Int32] = []
        for item in batch {
            let row = try layout.promptRow(prefixIDs: item.prefixIDs, length: length)
            text += row.text
            maskAR += row.maskAR
            maskInput += row.maskInput
        }
        let images = Tensor(shape: [batch.count, size, size, 3], values: pixels)
        return (try DecodePrompt(images: images, text: text, maskAR: maskAR, maskInput: maskInput), sizes)
    }

    /// Parses and scores one output, and converts both box lists to pixels of the image.
    private func prediction(_ item: Item, tokens: [Int32], logProbs: [Float], size: (width: Int, height: Int)) -> ValidationPrediction {
        let generated = GeneratedText(tokenizer: tokenizer)
        let output = generated.parse(tokens: tokens, logProbs: logProbs, classes: item.classes)
        return ValidationPrediction(
            example: item.example, tokens: tokens, logProbs: logProbs, text: generated.decoded(tokens),
            parsedText: generated.parserText(tokens), output: output, imageWidth: size.width, imageHeight: size.height,
            groundTruth: item.groundTruth.map { LabeledBox(label: $0.label, box: $0.bins.pixelBox(width: size.width, height: size.height)) },
            predictions: output.objects.map {
                ScoredBox(label: $0.label, box: $0.bins.pixelBox(width: size.width, height: size.height), score: $0.score ?? 0)
            })
    }

    private func scoreResult(_ predictions: [ValidationPrediction]) -> ScoreResult {
        var statistics = OutputStatistics()
        for prediction in predictions { statistics.add(prediction.output) }
        let images = predictions.map { ImageDetections(groundTruth: $0.groundTruth, predictions: $0.predictions) }
        return ScoreResult(
            metrics: COCOEvaluation.evaluate(images: images, classes: classes), statistics: statistics, scored: true,
            imageCount: predictions.count, imagesWithoutPrediction: 0)
    }

    /// Loads the first `galleryCount` images with their boxes, shrunk for the report.
    private func galleryItems(_ predictions: [ValidationPrediction]) throws -> [GalleryItem] {
        try predictions.prefix(settings.galleryCount).map { prediction in
            let example = prediction.example
            let image: OrientedImage
            do {
                image = try OrientedImage.load(path: example.imagePath, limits: settings.limits)
            } catch {
                throw ValidationError.imageFailed(file: example.sourceFile, line: example.line, image: example.image, reason: "\(error)")
            }
            let item = GalleryItem(
                title: example.image, pixels: image.pixels, width: image.width, height: image.height,
                groundTruth: prediction.groundTruth, predictions: prediction.predictions)
            return item.shrunk(maxSide: settings.galleryMaxSide)
        }
    }
}

private func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) * 1e-18
}
