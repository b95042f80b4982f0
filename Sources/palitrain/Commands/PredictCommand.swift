import Checkpoint
import Dataset
import Evaluation
import Foundation
import PaliGemmaModel
import TensorCore

/// `palitrain predict`: runs one prompt on one image and prints the detections as JSON.
struct PredictCommand: Command {
    static let name = "predict"
    static let summary = "run a prompt on one image and print the detections (pixel boxes, labels, scores) as JSON"
    static let options: [OptionSpec] = [
        .value("checkpoint", "FILE.npz", help: "parameters in big_vision NPZ layout"),
        .value("tokenizer", "FILE.model", help: "the SentencePiece model the checkpoint was trained with"),
        .value("image", "FILE", help: "JPEG or PNG; EXIF orientation is applied"),
        .value("prompt", "TEXT", help: "the prefix, e.g. \"detect fracture\" or \"detect cat ; dog\""),
        .value("annotate", "OUT.jpg", help: "also write the image with the predicted boxes drawn"),
        .value("max-new-tokens", "N", default: "128", help: "tokens generated at most"),
        .value("cache-dtype", "f32|bf16", default: "f32", help: "precision of the key/value cache (big_vision's default is bf16)"),
        .value("threads", "N", default: "0", help: "kernel threads; 0 uses every processor"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let checkpointPath = try arguments.required("checkpoint")
        let tokenizerPath = try arguments.required("tokenizer")
        let imagePath = try arguments.required("image")
        let prefix = try arguments.required("prompt")
        let maxNewTokens = try arguments.int("max-new-tokens") ?? 128
        guard maxNewTokens >= 1 else { throw UsageError("option '--max-new-tokens' must be at least 1, found \(maxNewTokens)") }
        let precision = KVCachePrecision(rawValue: try arguments.choice("cache-dtype", ["f32", "bf16"]) ?? "f32")!
        let threads = try arguments.int("threads") ?? 0
        guard threads >= 0 else { throw UsageError("option '--threads' must be 0 or more, found \(threads)") }
        Threading.setThreadCount(threads)

        // 1. Model, tokenizer, image and prompt
        let model = PaliGemma(parameters: try ParameterStore(npz: NPZReader(path: checkpointPath), trainable: "^$"))
        let tokenizer = try Tokenizer(modelPath: tokenizerPath)
        if tokenizer.vocabularySize > model.config.llm.vocabSize {
            throw ValidationError.vocabularyMismatch(
                tokenizer: tokenizerPath, pieces: tokenizer.vocabularySize, modelVocabulary: model.config.llm.vocabSize)
        }
        let size = model.config.vision.imageSize
        let image = try ImagePreprocessor(size: size).load(path: imagePath)
        let prefixIDs = try tokenizer.encode(prefix)
        let layout = try SequenceLayout(
            bos: tokenizer.bosID, eos: tokenizer.eosID, pad: tokenizer.padID, separator: tokenizer.newlineID,
            textLength: prefixIDs.count + 2)
        let row = try layout.promptRow(prefixIDs: prefixIDs, length: prefixIDs.count + 2)
        let prompt = try DecodePrompt(
            images: Tensor(shape: [1, size, size, 3], values: image.pixels), text: row.text, maskAR: row.maskAR,
            maskInput: row.maskInput)

        // 2. Decode and parse; a prompt other than "detect ..." accepts any label
        let result = try model.decode(
            prompt, options: DecodeOptions(maxNewTokens: maxNewTokens, cachePrecision: precision, eosID: tokenizer.eosID))
        let text = GeneratedText(tokenizer: tokenizer)
        let tokens = result.tokens[0]
        let output = text.parse(tokens: tokens, logProbs: result.logProbs[0], classes: DetectionPrompt.classes(fromPrefix: prefix))
        let (width, height) = (image.info.width, image.info.height)
        let boxes = output.objects.map {
            ScoredBox(label: $0.label, box: $0.bins.pixelBox(width: width, height: height), score: $0.score ?? 0)
        }

        // 3. The annotated image, then the JSON
        if let annotatePath = arguments.string("annotate") {
            let original = try OrientedImage.load(path: imagePath)
            let jpeg = try BoxDrawing.annotate(
                pixels: original.pixels, width: original.width, height: original.height, predictions: boxes)
            try jpeg.write(to: URL(fileURLWithPath: annotatePath), options: .atomic)
        }
        let report = PredictionReport(
            image: imagePath, prompt: prefix, width: width, height: height, text: text.decoded(tokens),
            detections: zip(output.objects, boxes).map { object, box in
                PredictionReport.Detection(
                    label: box.label, score: box.score, box: [box.box.xMin, box.box.yMin, box.box.xMax, box.box.yMax],
                    bins: [object.bins.yMin, object.bins.xMin, object.bins.yMax, object.bins.xMax])
            },
            issues: output.issues.map(\.description), reachedTokenLimit: output.reachedTokenLimit,
            newTokens: tokens.count, seconds: result.timing.totalSeconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}

/// The JSON `palitrain predict` prints.
private struct PredictionReport: Encodable {
    struct Detection: Encodable {
        var label: String
        /// exp(mean log-probability) of the object's loc and label tokens.
        var score: Double
        /// [x_min, y_min, x_max, y_max] in pixels of the oriented image, bin / 1023 · size.
        var box: [Double]
        /// The model's <loc> bins in output order [y_min, x_min, y_max, x_max], 0...1023.
        var bins: [Int]
    }

    var image: String
    var prompt: String
    var width: Int
    var height: Int
    /// The decoded output before EOS.
    var text: String
    var detections: [Detection]
    /// Malformed pieces of the output, e.g. "unknown_label: '<loc..>... horse'".
    var issues: [String]
    var reachedTokenLimit: Bool
    var newTokens: Int
    var seconds: Double

    enum CodingKeys: String, CodingKey {
        case image, prompt, width, height, text, detections, issues, seconds
        case reachedTokenLimit = "reached_token_limit"
        case newTokens = "new_tokens"
    }
}
