import Foundation

/// The reasons a validation pass cannot start or has to stop.
public enum ValidationError: Error, CustomStringConvertible {
    /// The split has no usable example.
    case noExamples
    /// A setting is out of range.
    case invalidSetting(name: String, value: Int, minimum: Int)
    /// An example's prefix is not `detect a ; b`, so there is nothing to score.
    case notDetectionPrompt(file: String, line: Int, prefix: String)
    /// An example's suffix is not a well-formed detection target.
    case invalidGroundTruth(file: String, line: Int, suffix: String, reason: String)
    /// The tokenizer could not encode a prompt.
    case promptEncodingFailed(file: String, line: Int, reason: String)
    /// The tokenizer has ids the model has no embedding for.
    case vocabularyMismatch(tokenizer: String, pieces: Int, modelVocabulary: Int)
    /// An image could not be read or decoded.
    case imageFailed(file: String, line: Int, image: String, reason: String)
    /// The model rejected a batch.
    case decodeFailed(examples: String, reason: String)

    public var description: String {
        switch self {
        case .noExamples:
            return "the validation split has no usable example; check the split name and the records reported as problems"
        case .invalidSetting(let name, let value, let minimum):
            return "validation setting \(name) must be at least \(minimum), found \(value)"
        case .notDetectionPrompt(let file, let line, let prefix):
            return "\(file):\(line): prefix '\(prefix)' is not a detection prompt 'detect a ; b'; validation scores "
                + "detection only, so remove other tasks from the validation split"
        case .invalidGroundTruth(let file, let line, let suffix, let reason):
            return "\(file):\(line): suffix '\(suffix)' is not valid detection ground truth (\(reason)); expected "
                + "four <locNNNN> tokens and a class from the prompt per object, objects joined by ' ; '"
        case .promptEncodingFailed(let file, let line, let reason):
            return "\(file):\(line): the tokenizer failed to encode the prefix: \(reason)"
        case .vocabularyMismatch(let tokenizer, let pieces, let modelVocabulary):
            return "tokenizer \(tokenizer) has \(pieces) pieces but the model's vocabulary has \(modelVocabulary) rows; "
                + "use the tokenizer the checkpoint was made with"
        case .imageFailed(let file, let line, let image, let reason):
            return "\(file):\(line): image '\(image)' could not be loaded: \(reason)"
        case .decodeFailed(let examples, let reason):
            return "decoding failed for \(examples): \(reason)"
        }
    }
}
