/// A tokenizer model that cannot be used, or text it cannot encode.
public enum TokenizerError: Error, CustomStringConvertible {
    case modelNotFound(path: String)
    case invalidModel(path: String, reason: String)
    case missingSpecialIDs(path: String, missing: [String])
    case missingPieces(path: String, family: String, missing: [String], expected: Int)
    case piecesNotContiguous(path: String, family: String, piece: String, expectedID: Int32, foundID: Int32, count: Int)
    case pieceNotAtomic(path: String, piece: String, ids: [Int32])
    case newlineNotSingleToken(path: String, ids: [Int32])
    case encodeFailed(text: String, reason: String)
    case decodeFailed(reason: String)
    case trainingFailed(reason: String)

    public var description: String {
        switch self {
        case .modelNotFound(let path):
            return "tokenizer model '\(path)' not found; pass the path of a SentencePiece .model file "
                + "(PaliGemma's is paligemma_tokenizer.model)"
        case .invalidModel(let path, let reason):
            return "'\(path)' is not a SentencePiece model (\(reason)); pass a .model file, not a .vocab or "
                + "tokenizer.json"
        case .missingSpecialIDs(let path, let missing):
            return "tokenizer '\(path)' defines no \(missing.joined(separator: ", ")) id; PaliGemma needs PAD, EOS "
                + "and BOS (0, 1, 2); train with --pad_id=0 --eos_id=1 --bos_id=2"
        case .missingPieces(let path, let family, let missing, let expected):
            let shown = missing.prefix(5).joined(separator: ", ")
            let more = missing.count > 5 ? " and \(missing.count - 5) more" : ""
            return "tokenizer '\(path)' lacks \(missing.count) of the \(expected) <\(family)…> pieces (\(shown)\(more)); "
                + "use paligemma_tokenizer.model, or train with all <loc0000>…<loc1023> and <seg000>…<seg127> as "
                + "--user_defined_symbols"
        case .piecesNotContiguous(let path, let family, let piece, let expectedID, let foundID, let count):
            return "tokenizer '\(path)': the <\(family)…> pieces are not at consecutive ids: \(piece) is \(foundID), "
                + "expected \(expectedID) (\(count) pieces out of place); list them in order in --user_defined_symbols"
        case .pieceNotAtomic(let path, let piece, let ids):
            return "tokenizer '\(path)': \(piece) encodes to \(ids), not to its own id; it must be a user-defined "
                + "symbol (--user_defined_symbols), and the model needs --add_dummy_prefix=false"
        case .newlineNotSingleToken(let path, let ids):
            return "tokenizer '\(path)': \"\\n\" encodes to \(ids), expected one id (108 in PaliGemma's model); "
                + "train with --byte_fallback=true --normalization_rule_name=identity --remove_extra_whitespaces=false"
        case .encodeFailed(let text, let reason):
            return "sentencepiece could not encode \(String(text.prefix(80)).debugDescription): \(reason)"
        case .decodeFailed(let reason):
            return "sentencepiece could not decode the ids: \(reason)"
        case .trainingFailed(let reason):
            return "sentencepiece training failed: \(reason)"
        }
    }
}
