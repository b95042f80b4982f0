import Checkpoint
import Foundation
import PaliGemmaModel
import TensorCore

/// The position of a run (step, schedule, seed, data cursor), saved in `state.npz` and `meta.json` for an exact resume.
public struct TrainState: Sendable, Equatable {
    /// Optimizer steps completed; the next step to run is `step + 1`.
    public var step: Int
    public var totalSteps: Int
    public var globalBatchSize: Int
    public var seed: UInt64
    /// World size of the run that wrote the checkpoint (resuming with another one is allowed).
    public var worldSize: Int
    /// Loss of the last step, for meta.json.
    public var lastLoss: Double
    /// Best validation mAP@0.5 so far and the step it was reached at.
    public var bestMAP50: Double?
    public var bestStep: Int?
    /// The data source's cursor (JSON) at `step`, restored by the data source on resume.
    public var dataCursor: [UInt8] = []

    public init(step: Int, totalSteps: Int, globalBatchSize: Int, seed: UInt64, worldSize: Int) {
        self.step = step
        self.totalSteps = totalSteps
        self.globalBatchSize = globalBatchSize
        self.seed = seed
        self.worldSize = worldSize
        self.lastLoss = .nan
    }
}

/// Errors of saving and resuming training checkpoints.
public enum TrainingCheckpointError: Error, CustomStringConvertible {
    case nonFiniteParameters(name: String, step: Int)
    case incompatibleResume(path: String, setting: String, saved: String, current: String)
    case invalidState(path: String, key: String, reason: String)

    public var description: String {
        switch self {
        case .nonFiniteParameters(let name, let step):
            return "parameter '\(name)' holds NaN or infinity after step \(step); no checkpoint was written and the previous one is kept. "
                + "Lower --lr, set --max-grad-norm, or resume from the last checkpoint"
        case .incompatibleResume(let path, let setting, let saved, let current):
            return "cannot resume from '\(path)': it was written with \(setting) \(saved) but this run uses \(current); "
                + "resume with the same \(setting) (the data order depends on it) or start a new output directory"
        case .invalidState(let path, let key, let reason):
            return "'\(path)': state key '\(key)' is invalid: \(reason); the checkpoint is damaged, resume from an earlier one"
        }
    }
}

/// Writes and reads the three files of a training checkpoint folder.
public enum TrainingCheckpoint {
    /// Writes `params.npz`, `state.npz` and `meta.json` into `folder`, each atomically.
    ///
    /// `params.npz` contains every parameter under its big_vision name: frozen ones in the dtype
    /// they were loaded in, trainable ones in f32, so big_vision and numpy load it unchanged.
    /// Throws before writing anything when a trainable parameter is not finite.
    public static func write(
        folder: String, parameters: ParameterStore, optimizer: Optimizer, state: TrainState, settings: TrainSettings
    ) throws {
        for name in parameters.trainableNames {
            let finite = parameters.values(name).withUnsafeBufferPointer { values in
                values.allSatisfy { $0.isFinite }
            }
            if !finite { throw TrainingCheckpointError.nonFiniteParameters(name: name, step: state.step) }
        }

        // 1. params.npz
        let params = try NPZWriter(path: (folder as NSString).appendingPathComponent("params.npz"))
        for name in parameters.names {
            if parameters.isTrainable(name) {
                try parameters.values(name).withUnsafeBufferPointer { values in
                    try params.write(key: name, dtype: .f32, shape: parameters.shape(of: name), bytes: UnsafeRawBufferPointer(values))
                }
            } else {
                let array = parameters.storedArray(name)
                try array.withUnsafeBytes { bytes in
                    try params.write(key: name, dtype: array.dtype, shape: array.shape, bytes: bytes)
                }
            }
        }
        try params.finish()

        // 2. state.npz: optimizer moments, step, schedule position, RNG seed and data cursor
        let stateFile = try NPZWriter(path: (folder as NSString).appendingPathComponent("state.npz"))
        try stateFile.write(key: "step", int32s: [Int32(state.step)], shape: [])
        try stateFile.write(key: "schedule/update_count", int32s: [Int32(optimizer.updateCount)], shape: [])
        try stateFile.write(key: "schedule/total_steps", int32s: [Int32(state.totalSteps)], shape: [])
        try stateFile.write(key: "data/next_step", int32s: [Int32(state.step)], shape: [])
        try stateFile.write(key: "data/global_batch_size", int32s: [Int32(state.globalBatchSize)], shape: [])
        try state.dataCursor.withUnsafeBytes { bytes in
            try stateFile.write(key: "data/cursor_json", elementType: .uint8, shape: [state.dataCursor.count], bytes: bytes)
        }
        let seedWords = [Int32(bitPattern: UInt32(truncatingIfNeeded: state.seed)), Int32(bitPattern: UInt32(truncatingIfNeeded: state.seed >> 32))]
        try stateFile.write(key: "rng/seed", int32s: seedWords, shape: [2])
        for (kind, moments) in [("mu", optimizer.firstMoment), ("nu", optimizer.secondMoment)] {
            for name in moments.keys.sorted() {
                try stateFile.write(key: "opt/\(kind)/\(name)", floats: moments[name]!, shape: parameters.shape(of: name), as: .f32)
            }
        }
        try stateFile.finish()

        // 3. meta.json: a readable summary
        var meta: [String: Any] = [
            "step": state.step,
            "total_steps": state.totalSteps,
            "global_batch_size": state.globalBatchSize,
            "seed": String(state.seed),
            "world_size": state.worldSize,
            "optimizer": optimizer.kind.name,
            "learning_rate": settings.learningRate,
            "trainable": settings.trainable,
            "time": ISO8601DateFormatter().string(from: Date()),
        ]
        if state.lastLoss.isFinite { meta["loss"] = state.lastLoss }
        if let best = state.bestMAP50, let step = state.bestStep {
            meta["best_map50"] = best
            meta["best_step"] = step
        }
        let json = try JSONSerialization.data(withJSONObject: meta, options: [.prettyPrinted, .sortedKeys])
        try writeFileAtomically(path: (folder as NSString).appendingPathComponent("meta.json"), bytes: Array(json) + [10])
    }

    /// Reads `state.npz` and `meta.json` of a checkpoint folder into the optimizer and a state.
    public static func readState(folder: String, optimizer: inout Optimizer) throws -> TrainState {
        let path = (folder as NSString).appendingPathComponent("state.npz")
        let reader = try NPZReader(path: path)

        func scalar(_ key: String) throws -> Int {
            let values = try reader.array(key).int32s()
            guard values.count == 1, values[0] >= 0 else {
                throw TrainingCheckpointError.invalidState(path: path, key: key, reason: "expected one non-negative integer, found \(values)")
            }
            return Int(values[0])
        }

        let seedWords = try reader.array("rng/seed").int32s()
        guard seedWords.count == 2 else {
            throw TrainingCheckpointError.invalidState(path: path, key: "rng/seed", reason: "expected 2 words, found \(seedWords.count)")
        }
        let seed = UInt64(UInt32(bitPattern: seedWords[0])) | (UInt64(UInt32(bitPattern: seedWords[1])) << 32)

        var firstMoment: [String: [Float]] = [:]
        var secondMoment: [String: [Float]] = [:]
        for key in reader.keys where key.hasPrefix("opt/") {
            let parts = key.split(separator: "/", maxSplits: 2).map(String.init)
            guard parts.count == 3 else { continue }
            let values = try reader.array(key).floats()
            if parts[1] == "mu" { firstMoment[parts[2]] = values } else if parts[1] == "nu" { secondMoment[parts[2]] = values }
        }
        optimizer.restore(updateCount: try scalar("schedule/update_count"), firstMoment: firstMoment, secondMoment: secondMoment)

        var state = TrainState(
            step: try scalar("step"), totalSteps: try scalar("schedule/total_steps"),
            globalBatchSize: try scalar("data/global_batch_size"), seed: seed, worldSize: 0)

        if reader.contains("data/cursor_json") {
            state.dataCursor = try reader.array("data/cursor_json").withUnsafeBytes { Array($0) }
        }

        let metaPath = (folder as NSString).appendingPathComponent("meta.json")
        if let data = FileManager.default.contents(atPath: metaPath),
           let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            state.worldSize = meta["world_size"] as? Int ?? 0
            state.bestMAP50 = meta["best_map50"] as? Double
            state.bestStep = meta["best_step"] as? Int
            state.lastLoss = meta["loss"] as? Double ?? .nan
        }
        return state
    }
}
