import Foundation

/// The outcome of `DatasetValidator.validate`: problems by record, and statistics.
public struct ValidationReport: Sendable {
    public let source: DatasetSource
    public let options: ValidationOptions
    public let splits: [SplitRecords]
    /// Every problem, in the order found (records first, then images and text, then duplicates).
    public private(set) var problems: [RecordProblem]

    // Statistics over distinct image files.
    public private(set) var imagesChecked = 0
    public private(set) var imagesFailed = 0
    public private(set) var exifRotated = 0
    public private(set) var sixteenBit = 0
    public private(set) var withAlpha = 0
    public private(set) var grayscale = 0
    public private(set) var cmyk = 0
    public private(set) var formats: [String: Int] = [:]
    public private(set) var smallestSide: Int?
    public private(set) var largestSide: Int?

    // Statistics over records.
    public internal(set) var emptySuffixes = 0
    public internal(set) var objectCount = 0
    public internal(set) var labelCounts: [String: Int] = [:]
    public internal(set) var nonDetectionPrompts = 0
    public private(set) var tokenCounts: [Int] = []

    private var imageFirstSeen: Set<String> = []
    private var riskyNames: [String: Int] = [:]

    init(source: DatasetSource, options: ValidationOptions, splits: [SplitRecords]) {
        self.source = source
        self.options = options
        self.splits = splits
        self.problems = splits.flatMap(\.problems)
    }

    // MARK: - Results

    public var errorCount: Int { problems.filter { $0.severity == .error }.count }
    public var warningCount: Int { problems.filter { $0.severity == .warning }.count }

    /// True when training would stop before its first step (unless it skips bad records).
    public var trainingWouldFail: Bool { errorCount > 0 }

    public var recordCount: Int { splits.reduce(0) { $0 + $1.recordCount } }

    /// Returns the records of a split that have no error, in file order.
    public func usableExamples(split name: String) -> [Example] {
        let bad = Set(problems.filter { $0.severity == .error }.map { "\($0.file):\($0.line)" })
        let records = splits.first { $0.split.name == name }?.examples ?? []
        return records.filter { !bad.contains("\($0.sourceFile):\($0.line)") }
    }

    /// Number of records with at least one error, by the kind of their first error.
    public var badRecordsByKind: [(kind: RecordProblem.Kind, count: Int)] {
        var firstKind: [String: RecordProblem.Kind] = [:]
        for problem in problems where problem.severity == .error {
            let key = "\(problem.file):\(problem.line)"
            if firstKind[key] == nil { firstKind[key] = problem.kind }
        }
        var counts: [RecordProblem.Kind: Int] = [:]
        for kind in firstKind.values { counts[kind, default: 0] += 1 }
        return RecordProblem.Kind.allCases.compactMap { kind in counts[kind].map { (kind, $0) } }
    }

    // MARK: - Collecting

    mutating func addProblem(_ problem: RecordProblem) {
        problems.append(problem)
    }

    mutating func recordTokenCount(_ count: Int) {
        tokenCounts.append(count)
    }

    mutating func add(_ example: Example, image: DatasetValidator.ImageCheck) {
        if let error = image.error {
            let kind: RecordProblem.Kind
            switch error {
            case .fileNotFound: kind = .imageNotFound
            case .fileTooLarge, .tooManyPixels: kind = .imageTooLarge
            default: kind = .imageUnreadable
            }
            addProblem(RecordProblem(
                file: example.sourceFile, line: example.line, field: "image", kind: kind, message: "\(error)"))
        }
        if image.warningCount > 0 && image.error == nil && !imageFirstSeen.contains(example.imagePath) {
            addProblem(RecordProblem(
                file: example.sourceFile, line: example.line, field: "image", kind: .decoderWarning,
                message: "'\(example.image)': \(image.warningCount) decoder warning(s); the image was decoded"))
        }

        guard imageFirstSeen.insert(example.imagePath).inserted else { return }
        imagesChecked += 1
        guard let info = image.info else {
            imagesFailed += 1
            return
        }
        if info.orientation != 1 { exifRotated += 1 }
        if info.bitDepth == 16 { sixteenBit += 1 }
        if info.hasAlpha { withAlpha += 1 }
        if info.isGrayscale { grayscale += 1 }
        if info.isCMYK { cmyk += 1 }
        formats[info.format.rawValue, default: 0] += 1
        let small = min(info.width, info.height)
        let large = max(info.width, info.height)
        smallestSide = min(smallestSide ?? small, small)
        largestSide = max(largestSide ?? large, large)
    }

    /// Reports each risky class name once, at its first occurrence.
    mutating func addRiskyName(_ name: String, reason: String, example: Example, field: String) {
        riskyNames[name, default: 0] += 1
        guard riskyNames[name] == 1 else { return }
        addProblem(RecordProblem(
            file: example.sourceFile, line: example.line, field: field, kind: .riskyClassName,
            message: "class name \(name.debugDescription): \(reason)"))
    }

    mutating func addDuplicates(_ checks: [String: DatasetValidator.ImageCheck]) {
        // Every record with its content hash, in split order.
        var byHash: [String: [Example]] = [:]
        var order: [String] = []
        for split in splits {
            for example in split.examples {
                guard let hash = checks[example.imagePath]?.hash else { continue }
                if byHash[hash] == nil { order.append(hash) }
                byHash[hash, default: []].append(example)
            }
        }

        for hash in order {
            guard let group = byHash[hash], group.count > 1, let first = group.first else { continue }
            for example in group.dropFirst() {
                let kind: RecordProblem.Kind = example.split == first.split ? .duplicateWithinSplit : .duplicateAcrossSplits
                let same = example.imagePath == first.imagePath ? "the same file as" : "the same content (SHA-256 \(hash.prefix(12))…) as"
                addProblem(RecordProblem(
                    file: example.sourceFile, line: example.line, field: "image", kind: kind,
                    message: "'\(example.image)' (\(example.split)) is \(same) '\(first.image)' (\(first.split), "
                        + "\(first.sourceFile):\(first.line))"))
            }
        }
    }
}
