/// Errors raised when parameters, batches or variant names do not fit the model.
public enum PaliGemmaError: Error, CustomStringConvertible, Equatable {
    /// A required checkpoint array is absent.
    case missingParameter(name: String)
    /// A checkpoint array has a name this model does not know.
    case unknownParameter(name: String)
    /// A checkpoint array has the wrong number of axes.
    case unexpectedRank(name: String, expected: Int, found: [Int])
    /// A checkpoint array's shape disagrees with the sizes read from the other arrays.
    case inconsistentShape(name: String, expected: String, found: [Int])
    /// The trainable-parameter pattern is not a valid regular expression.
    case invalidPattern(pattern: String, reason: String)
    /// A batch field has the wrong size or an invalid value.
    case invalidBatch(field: String, reason: String)
    /// `PaliGemmaInit.variant(named:)` got a name it does not know.
    case unknownVariant(name: String, known: [String])

    public var description: String {
        switch self {
        case .missingParameter(let name):
            return "checkpoint has no array '\(name)'; a PaliGemma-1 checkpoint needs all 32 arrays "
                + "(names with or without the 'params/' prefix)"
        case .unknownParameter(let name):
            return "checkpoint array '\(name)' is not a PaliGemma-1 parameter; PaliGemma 2 checkpoints "
                + "(post_attention_norm, post_ffw_norm) are not supported"
        case .unexpectedRank(let name, let expected, let found):
            return "checkpoint array '\(name)' has shape \(found) (rank \(found.count)) but rank \(expected) "
                + "is expected; check that the file is a big_vision PaliGemma checkpoint with stacked layers"
        case .inconsistentShape(let name, let expected, let found):
            return "checkpoint array '\(name)' has shape \(found) but \(expected) is expected from the other "
                + "arrays; the file may mix two models"
        case .invalidPattern(let pattern, let reason):
            return "trainable-parameter pattern '\(pattern)' is not a valid regular expression: \(reason)"
        case .invalidBatch(let field, let reason):
            return "invalid batch field '\(field)': \(reason)"
        case .unknownVariant(let name, let known):
            return "unknown model variant '\(name)'; choose one of \(known.joined(separator: ", "))"
        }
    }
}
