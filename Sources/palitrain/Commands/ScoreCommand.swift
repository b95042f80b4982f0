import Evaluation
import Foundation

/// Computes COCO mAP for detection predictions made by any model.
struct ScoreCommand: Command {
    static let name = "score"
    static let summary = "compute COCO mAP of detection predictions (JSONL) against a dataset split"
    static let options: [OptionSpec] = [
        .value("predictions", "FILE", help: "JSONL with 'image', a PaliGemma-format 'suffix' and optional 'scores' (one per object) and 'truncated'"),
        .value("data", "DIR", help: "dataset folder: Roboflow PaliGemma export or maestro layout"),
        .value("split", "NAME", default: "valid", help: "split to score against (_annotations.NAME.jsonl or NAME/annotations.jsonl)"),
        .flag("json", help: "print one JSON object instead of the table"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let predictionsURL = URL(fileURLWithPath: try arguments.required("predictions"))
        let dataURL = URL(fileURLWithPath: try arguments.required("data"))
        let split = try arguments.required("split")

        let groundTruth = try GroundTruthReader.load(dataDirectory: dataURL, split: split)
        let result = try PredictionScoring.score(predictionsURL: predictionsURL, groundTruth: groundTruth)

        if arguments.flag("json") {
            print(try ScoreReport.json(result))
        } else {
            print(ScoreReport.table(result, source: "split '\(split)', \(groundTruth.annotationsURL.path)"))
        }
    }
}
