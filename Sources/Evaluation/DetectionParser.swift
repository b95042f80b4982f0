/// Reads PaliGemma detection output: `<locY1><locX1><locY2><locX2> label`, objects joined by
/// ` ; `.
///
/// The parser never fails on model output. Each malformed piece becomes a `ParseIssue`, and
/// the objects around it are still read. It tolerates what the official demo's regex
/// tolerates (missing separators between objects, `<segNNN>` tokens after the locs, extra
/// whitespace) but counts the segmentation tokens. `parseGroundTruth` applies the same rules
/// strictly and throws on any issue.
public struct DetectionParser: Sendable {
    /// The classes named in the prompt; a label outside them is an `unknownLabel` issue.
    /// nil accepts any label.
    public var classes: Set<String>?

    public init(classes: [String]?) {
        self.classes = classes.map { Set($0.map(normalizeLabel)) }
    }

    /// Parses decoded text (already cut at the first EOS).
    public func parse(_ text: String) -> ParsedOutput {
        parse(bytes: Array(text.utf8))
    }

    /// Parses ground truth, which must be well-formed: any issue throws.
    public func parseGroundTruth(_ text: String) throws(GroundTruthSyntaxError) -> [ParsedObject] {
        let output = parse(text)
        if !output.issues.isEmpty {
            throw GroundTruthSyntaxError(issues: output.issues)
        }
        return output.objects
    }

    /// Parses UTF-8 bytes and records the byte ranges of each object's tokens.
    func parse(bytes: [UInt8]) -> ParsedOutput {
        var state = PartState(parser: self, bytes: bytes)
        for item in scanItems(bytes) {
            state.consume(item)
        }
        state.endPart()
        return ParsedOutput(objects: state.objects, issues: state.issues, partCount: state.partIndex)
    }
}

/// Ground truth that does not parse cleanly.
public struct GroundTruthSyntaxError: Error, CustomStringConvertible {
    public var issues: [ParseIssue]

    public var description: String {
        "malformed ground truth: " + issues.map(\.description).joined(separator: ", ")
    }
}

/// Trims whitespace and collapses inner whitespace runs to one space.
func normalizeLabel(_ label: String) -> String {
    label.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
}

// MARK: - Scanning

/// A lexical item of detection output; ranges are UTF-8 byte offsets.
enum OutputItem: Equatable {
    case loc(Int, Range<Int>)
    case seg(Range<Int>)
    case separator
    case text(Range<Int>)
}

private let lessThan = UInt8(ascii: "<")
private let greaterThan = UInt8(ascii: ">")
private let semicolon = UInt8(ascii: ";")

/// Splits output into loc tokens, seg tokens, `;` separators and runs of other text.
///
/// A loc token is `<loc` + four digits + `>` with a value up to 1023, a seg token `<seg` +
/// three digits + `>` up to 127. Anything else, including `<loc12>` or `<loc2000>`, is text.
func scanItems(_ bytes: [UInt8]) -> [OutputItem] {
    var items: [OutputItem] = []
    var textStart: Int?
    var index = 0

    func closeText(at end: Int) {
        if let start = textStart, start < end { items.append(.text(start..<end)) }
        textStart = nil
    }

    while index < bytes.count {
        if bytes[index] == semicolon {
            closeText(at: index)
            items.append(.separator)
            index += 1
            continue
        }
        if bytes[index] == lessThan {
            if let value = specialToken(bytes, at: index, name: "loc", digits: 4), value < LocBins.binCount {
                closeText(at: index)
                items.append(.loc(value, index..<(index + 9)))
                index += 9
                continue
            }
            if let value = specialToken(bytes, at: index, name: "seg", digits: 3), value < 128 {
                closeText(at: index)
                items.append(.seg(index..<(index + 8)))
                index += 8
                continue
            }
        }
        if textStart == nil { textStart = index }
        index += 1
    }
    closeText(at: bytes.count)
    return items
}

/// Reads the number of a `<NAME` + `digits` decimal digits + `>` token at `start`, or returns nil.
private func specialToken(_ bytes: [UInt8], at start: Int, name: String, digits: Int) -> Int? {
    let nameBytes = Array(name.utf8)
    let end = start + 1 + nameBytes.count + digits + 1
    guard end <= bytes.count, bytes[end - 1] == greaterThan else { return nil }
    guard Array(bytes[(start + 1)..<(start + 1 + nameBytes.count)]) == nameBytes else { return nil }

    var value = 0
    for byte in bytes[(start + 1 + nameBytes.count)..<(end - 1)] {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value
}

// MARK: - Assembling objects

/// The parser's state within one ` ; `-separated part and across parts.
private struct PartState {
    let parser: DetectionParser
    let bytes: [UInt8]

    var objects: [ParsedObject] = []
    var issues: [ParseIssue] = []
    /// Index the next non-empty part gets; equals the number of non-empty parts so far.
    var partIndex = 0

    /// Loc tokens read since the last object: (bin, byte range).
    var pendingLocs: [(Int, Range<Int>)] = []
    var partIsEmpty = true
    var partSawSegmentation = false

    init(parser: DetectionParser, bytes: [UInt8]) {
        self.parser = parser
        self.bytes = bytes
    }

    func text(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    mutating func consume(_ item: OutputItem) {
        switch item {
        case .loc(let value, let range):
            partIsEmpty = false
            if pendingLocs.count == 4 {
                // Four locs followed directly by more locs: the first object has no label.
                flushPendingLocs()
            }
            pendingLocs.append((value, range))

        case .seg(let range):
            partIsEmpty = false
            if !partSawSegmentation {
                issues.append(ParseIssue(kind: .segmentationTokens, text: text(range)))
                partSawSegmentation = true
            }

        case .text(let range):
            let label = normalizeLabel(text(range))
            if label.isEmpty { return }
            partIsEmpty = false
            if pendingLocs.count == 4 {
                finishObject(label: label, labelRange: trimmedRange(range))
            } else if let first = pendingLocs.first {
                issues.append(ParseIssue(kind: .tooFewLocs, text: text(first.1.lowerBound..<trimmedRange(range).upperBound)))
                pendingLocs = []
            } else {
                issues.append(ParseIssue(kind: .unexpectedText, text: label))
            }

        case .separator:
            endPart()
        }
    }

    /// Closes the current part: leftover locs become issues, an empty part is reported.
    mutating func endPart() {
        flushPendingLocs()
        if partIsEmpty {
            // An empty whole output means "no objects". An empty part next to others is a
            // stray separator.
            if partIndex > 0 || !issues.isEmpty || bytesContainSeparator {
                issues.append(ParseIssue(kind: .unexpectedText, text: ";"))
            }
        } else {
            partIndex += 1
        }
        partIsEmpty = true
        partSawSegmentation = false
    }

    var bytesContainSeparator: Bool { bytes.contains(semicolon) }

    /// `range` without leading and trailing ASCII whitespace, so a trailing newline token
    /// does not count as part of the label.
    func trimmedRange(_ range: Range<Int>) -> Range<Int> {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    mutating func flushPendingLocs() {
        guard let first = pendingLocs.first, let last = pendingLocs.last else { return }
        let kind: ParseIssueKind = pendingLocs.count == 4 ? .missingLabel : .tooFewLocs
        issues.append(ParseIssue(kind: kind, text: text(first.1.lowerBound..<last.1.upperBound)))
        pendingLocs = []
    }

    mutating func finishObject(label: String, labelRange: Range<Int>) {
        let bins = LocBins(yMin: pendingLocs[0].0, xMin: pendingLocs[1].0, yMax: pendingLocs[2].0, xMax: pendingLocs[3].0)
        let objectText = text(pendingLocs[0].1.lowerBound..<labelRange.upperBound)
        var ranges = pendingLocs.map(\.1)
        ranges.append(labelRange)
        pendingLocs = []

        if bins.yMax < bins.yMin || bins.xMax < bins.xMin {
            issues.append(ParseIssue(kind: .invertedBox, text: objectText))
            return
        }
        if let classes = parser.classes, !classes.contains(label) {
            issues.append(ParseIssue(kind: .unknownLabel, text: objectText))
            return
        }
        var object = ParsedObject(bins: bins, label: label, part: partIndex)
        object.byteRanges = ranges
        objects.append(object)
    }
}
