/// The kinds of malformed detection output the parser counts instead of failing on.
public enum ParseIssueKind: String, CaseIterable, Sendable {
    /// One to three `<locNNNN>` tokens where an object needs four.
    case tooFewLocs = "too_few_locs"
    /// Four loc tokens followed by no label (end of output, a separator or more loc tokens).
    case missingLabel = "missing_label"
    /// A box whose y-max is below its y-min or whose x-max is below its x-min.
    case invertedBox = "inverted_box"
    /// A label that is not one of the classes named in the prompt.
    case unknownLabel = "unknown_label"
    /// Text that belongs to no object: free text, an empty part between separators, a
    /// malformed `<loc...>` token.
    case unexpectedText = "unexpected_text"
    /// `<segNNN>` tokens, which belong to segmentation output. The object's box is kept, as
    /// the official demo's parser keeps it.
    case segmentationTokens = "segmentation_tokens"
    /// Tokens other than padding after the first EOS (only visible in token form).
    case textAfterEOS = "text_after_eos"
}

/// One malformed piece of an output.
public struct ParseIssue: Equatable, Sendable, CustomStringConvertible {
    public var kind: ParseIssueKind
    /// The offending text, shortened to at most 80 characters.
    public var text: String

    public init(kind: ParseIssueKind, text: String) {
        self.kind = kind
        self.text = text.count > 80 ? String(text.prefix(77)) + "..." : text
    }

    public var description: String { "\(kind.rawValue): '\(text)'" }
}

/// One object read from a detection output.
public struct ParsedObject: Equatable, Sendable {
    public var bins: LocBins
    /// The label with surrounding whitespace removed and inner whitespace runs collapsed to
    /// one space.
    public var label: String
    /// Index of the non-empty ` ; `-separated part of the output the object came from.
    /// Scores given per object in suffix order are matched to objects through it.
    public var part: Int
    /// Confidence from the token log-probabilities (see `DetectionScore`); nil when the
    /// output was parsed from text alone.
    public var score: Double?

    /// UTF-8 byte ranges in the parsed text of the four loc tokens and of the label, used to
    /// find the tokens that make up the object.
    var byteRanges: [Range<Int>]

    public init(bins: LocBins, label: String, part: Int, score: Double? = nil) {
        self.bins = bins
        self.label = label
        self.part = part
        self.score = score
        self.byteRanges = []
    }
}

/// The result of parsing one model output.
public struct ParsedOutput: Equatable, Sendable {
    /// Objects that passed every check, in output order.
    public var objects: [ParsedObject]
    /// Malformed pieces, in output order. Each dropped object has exactly one issue.
    public var issues: [ParseIssue]
    /// Number of non-empty ` ; `-separated parts.
    public var partCount: Int
    /// True when the token form had no EOS: decoding stopped at the token limit ("runaway").
    /// Always false for the text form, which cannot tell.
    public var reachedTokenLimit: Bool

    public init(objects: [ParsedObject] = [], issues: [ParseIssue] = [], partCount: Int = 0, reachedTokenLimit: Bool = false) {
        self.objects = objects
        self.issues = issues
        self.partCount = partCount
        self.reachedTokenLimit = reachedTokenLimit
    }

    /// True when the parser found at least one malformed piece. The objects it could still
    /// read are evaluated as usual.
    public var failedToParse: Bool { !issues.isEmpty }
}
