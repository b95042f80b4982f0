/// Counts over many model outputs: how many ran away, how many failed to parse and why.
public struct OutputStatistics: Equatable, Sendable {
    public private(set) var outputCount = 0
    /// Outputs that reached the token limit without EOS.
    public private(set) var runawayCount = 0
    /// Outputs with at least one parse issue.
    public private(set) var failedCount = 0
    /// Issues by kind over all outputs.
    public private(set) var issueCounts: [ParseIssueKind: Int] = [:]
    /// Objects that passed every check.
    public private(set) var objectCount = 0

    public init() {}

    public mutating func add(_ output: ParsedOutput) {
        outputCount += 1
        if output.reachedTokenLimit { runawayCount += 1 }
        if output.failedToParse { failedCount += 1 }
        for issue in output.issues {
            issueCounts[issue.kind, default: 0] += 1
        }
        objectCount += output.objects.count
    }

    /// Share of outputs that reached the token limit without EOS; 0 when there are none.
    public var runawayRate: Double { outputCount == 0 ? 0 : Double(runawayCount) / Double(outputCount) }

    /// Share of outputs with at least one parse issue; 0 when there are none.
    public var parseFailureRate: Double { outputCount == 0 ? 0 : Double(failedCount) / Double(outputCount) }
}
