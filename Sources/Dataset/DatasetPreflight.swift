/// The dataset checks training runs before its first step.
public struct PreparedDataset: Sendable {
    public let report: ValidationReport
    /// Usable examples by split name, in file order.
    public let examples: [String: [Example]]

    /// "skipped 3 of 300 records: 2 image unreadable, 1 invalid JSON", or nil when none was.
    public var skipSummary: String? {
        let skipped = report.badRecordsByKind
        let total = skipped.reduce(0) { $0 + $1.count }
        guard total > 0 else { return nil }
        return "skipped \(total) of \(report.recordCount) records: "
            + skipped.map { "\($0.count) \($0.kind.rawValue)" }.joined(separator: ", ")
    }
}

public enum DatasetPreflight {
    /// Validates the whole dataset. Records with errors stop training with a listing of them,
    /// unless `skipBadRecords`, in which case they are left out and counted in `skipSummary`.
    /// Warnings never stop training.
    public static func run(
        _ source: DatasetSource, options: ValidationOptions, skipBadRecords: Bool
    ) throws -> PreparedDataset {
        let report = try DatasetValidator.validate(source, options: options)
        if report.trainingWouldFail && !skipBadRecords {
            let errors = report.problems.filter { $0.severity == .error }
            throw DatasetError.badRecords(
                errorCount: errors.count, listed: Array(errors.prefix(options.limits.maxProblemsListed)))
        }

        var examples: [String: [Example]] = [:]
        for split in report.splits {
            let usable = report.usableExamples(split: split.split.name)
            if usable.isEmpty && split.recordCount > 0 {
                throw DatasetError.noUsableRecords(
                    split: split.split.name, file: split.split.annotations, skipped: split.recordCount)
            }
            examples[split.split.name] = usable
        }
        return PreparedDataset(report: report, examples: examples)
    }
}
