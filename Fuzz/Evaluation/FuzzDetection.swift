// Fuzz target `detection`: model output text through `DetectionParser`, in both forms: as
// decoded text, and as generated tokens with log-probabilities (the scored path).
//
// The token form reads the input as byte pairs: a piece of a small vocabulary (loc, seg,
// separator, label and odd pieces) and a log-probability. Both forms read the same text
// before EOS, so they must find the same objects.
import Evaluation

private let classes = ["cat", "dog", "traffic light", "a b"]

/// Pieces of the token form. Index 1 is EOS and 0 is padding, as in Gemma.
private let pieces: [String] = [
    "", "", "<loc0000>", "<loc0512>", "<loc1023>", "<loc0100>", "<loc0900>", "<seg007>", " ;", ";", " ",
    "\u{2581}cat", "\u{2581}dog", "traffic", "\u{2581}light", "a", "\u{2581}b", "<loc", "0001>", "<loc2000>",
    "\n", "\u{2581}", "é", "\u{FFFD}", "<", ">", "1", "<seg127>", "<seg128>", "x",
]
private let eosID = 1
private let padID = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDetection(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)

    // 1. Text form, with and without a class list.
    let text = String(decoding: bytes, as: UTF8.self)
    for parser in [DetectionParser(classes: classes), DetectionParser(classes: nil)] {
        let output = parser.parse(text)
        checkObjects(output, classes: parser.classes)
        do {
            let objects = try parser.parseGroundTruth(text)
            if !output.issues.isEmpty || objects != output.objects {
                fatalError("parseGroundTruth accepted text with issues \(output.issues)")
            }
        } catch {
            if output.issues.isEmpty {
                fatalError("parseGroundTruth threw for text without issues: \(error)")
            }
            keep("\(error)".utf8.count)
        }
    }

    // 2. Token form: the same objects as the text of the pieces before EOS.
    var tokens: [GeneratedToken] = []
    var index = 0
    while index + 1 < size {
        let logProb = -Float(data[index + 1]) / 16
        tokens.append(GeneratedToken(id: Int(data[index]) % pieces.count, logProb: logProb))
        index += 2
    }
    let parser = DetectionParser(classes: classes)
    let scored = parser.parse(tokens: tokens, eosID: eosID, padID: padID) { pieces[$0] }
    checkObjects(scored, classes: parser.classes)

    let beforeEOS = tokens.prefix { $0.id != eosID }
    let joined = beforeEOS.map { pieces[$0.id] }.joined().replacingOccurrences(of: "\u{2581}", with: " ")
    let plain = parser.parse(joined)
    let unscored = scored.objects.map { object -> ParsedObject in
        var copy = object
        copy.score = nil
        return copy
    }
    if unscored != plain.objects {
        fatalError("token form found \(unscored.count) objects, text form \(plain.objects.count), in \(joined.debugDescription)")
    }
    for object in scored.objects {
        guard let score = object.score, score > 0, score <= 1 else {
            fatalError("object \(object.label) has score \(String(describing: object.score)), expected (0, 1]")
        }
    }
    if scored.reachedTokenLimit != !tokens.contains(where: { $0.id == eosID }) {
        fatalError("reachedTokenLimit is \(scored.reachedTokenLimit) for tokens with\(tokens.contains { $0.id == eosID } ? "" : "out") EOS")
    }
    return 0
}

/// Checks that every object has bins in 0...1023 with min <= max, a non-empty trimmed label from
/// the classes, and a part index below the part count.
private func checkObjects(_ output: ParsedOutput, classes: Set<String>?) {
    for object in output.objects {
        let bins = object.bins
        let values = [bins.yMin, bins.xMin, bins.yMax, bins.xMax]
        if values.contains(where: { !(0...1023).contains($0) }) || bins.yMax < bins.yMin || bins.xMax < bins.xMin {
            fatalError("object \(object.label) has bins \(values)")
        }
        if object.label.isEmpty || object.label.first!.isWhitespace || object.label.last!.isWhitespace {
            fatalError("object label \(object.label.debugDescription) is empty or untrimmed")
        }
        if let classes, !classes.contains(object.label) {
            fatalError("object label \(object.label.debugDescription) is not among the classes")
        }
        if object.part < 0 || object.part >= max(output.partCount, 1) {
            fatalError("object part \(object.part) outside 0..<\(output.partCount)")
        }
    }
    for issue in output.issues {
        keep(issue.description.utf8.count)
    }
    keep(output.objects.count)
}
