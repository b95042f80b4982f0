import Checkpoint
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The checkpoint folders of one run: `OUTPUT/checkpoints/step_NNNNNNNN/`.
///
/// Each step folder holds `params.npz`, `state.npz`, `meta.json` and, written last, the
/// completion marker `COMPLETE`. After the marker, the `latest` file (one line: the folder
/// name) is replaced atomically. A folder without the marker is an interrupted write: it is
/// never resumed from and is removed by the next pruning. `best` names the folder with the
/// best validation mAP@0.5 and is never pruned.
public struct CheckpointStore {
    public static let completionMarker = "COMPLETE"

    public let root: String

    public init(outputDirectory: String) {
        root = (outputDirectory as NSString).appendingPathComponent("checkpoints")
    }

    public static func folderName(step: Int) -> String {
        "step_" + String(format: "%08d", step)
    }

    public func path(step: Int) -> String {
        (root as NSString).appendingPathComponent(Self.folderName(step: step))
    }

    /// Creates the folder for `step`, lets `writeFiles` fill it, then marks it complete and
    /// points `latest` at it. `writeFiles` must write each file atomically (`NPZWriter` and
    /// `writeFileAtomically` do).
    ///
    /// A folder that already exists for `step` is removed first. It may be the leftover of an
    /// interrupted write, whose temporary files would otherwise stay forever. It may also be a
    /// checkpoint of an abandoned run that reached the same step, and its marker must never
    /// vouch for a mix of its files and the new ones.
    public func save(step: Int, writeFiles: (String) throws -> Void) throws -> String {
        let folder = path(step: step)
        try removeFolder(step: step)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw RunOutputError.writeFailed(path: folder, reason: "\(error)")
        }
        try writeFiles(folder)
        try writeFileAtomically(path: (folder as NSString).appendingPathComponent(Self.completionMarker), bytes: Array("step \(step)\n".utf8))
        try fsyncPath(root)
        try setPointer("latest", to: step)
        return folder
    }

    /// Replaces the pointer file `name` (`latest` or `best`) with the folder name of `step`.
    public func setPointer(_ name: String, to step: Int) throws {
        let pointer = (root as NSString).appendingPathComponent(name)
        try writeFileAtomically(path: pointer, bytes: Array((Self.folderName(step: step) + "\n").utf8))
    }

    /// The step a pointer file names, if the file exists and names a complete folder.
    public func pointer(_ name: String) -> Int? {
        let pointer = (root as NSString).appendingPathComponent(name)
        guard let text = try? String(contentsOfFile: pointer, encoding: .utf8) else { return nil }
        guard let step = Self.step(ofFolder: text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return isComplete(step: step) ? step : nil
    }

    public func isComplete(step: Int) -> Bool {
        FileManager.default.fileExists(atPath: (path(step: step) as NSString).appendingPathComponent(Self.completionMarker))
    }

    /// Steps of all complete checkpoint folders, ascending.
    public func completeSteps() -> [Int] {
        allSteps().filter { isComplete(step: $0) }
    }

    /// The newest complete checkpoint: the `latest` pointer if valid, else the highest complete folder.
    public func latestComplete() -> Int? {
        if let step = pointer("latest") { return step }
        return completeSteps().last
    }

    /// Removes incomplete folders and all but the newest `keepLast` complete ones.
    ///
    /// Never removes the `latest` or `best` targets, nor `protectedSteps` (the trainer passes the
    /// newest checkpoint whose parameters are finite).
    public func prune(keepLast: Int, protectedSteps: Set<Int> = []) {
        guard keepLast > 0 else { return }
        let complete = completeSteps()
        var keep = Set(complete.suffix(keepLast)).union(protectedSteps)
        if let latest = pointer("latest") { keep.insert(latest) }
        if let best = pointer("best") { keep.insert(best) }
        for step in allSteps() where !keep.contains(step) {
            try? FileManager.default.removeItem(atPath: path(step: step))
        }
    }

    /// Removes the folder of `step` if it exists, its completion marker first, so that a crash
    /// during the removal leaves an incomplete folder rather than a complete-looking partial one.
    private func removeFolder(step: Int) throws {
        let folder = path(step: step)
        guard FileManager.default.fileExists(atPath: folder) else { return }
        let marker = (folder as NSString).appendingPathComponent(Self.completionMarker)
        if unlink(marker) != 0 && errno != ENOENT {
            throw RunOutputError.writeFailed(path: marker, reason: "cannot remove the old completion marker: \(errnoDescription())")
        }
        try fsyncPath(folder)
        do {
            try FileManager.default.removeItem(atPath: folder)
        } catch {
            throw RunOutputError.writeFailed(path: folder, reason: "cannot remove the old folder of step \(step): \(error)")
        }
    }

    private func allSteps() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.compactMap(Self.step(ofFolder:)).sorted()
    }

    static func step(ofFolder name: String) -> Int? {
        guard name.hasPrefix("step_"), name.count == 13 else { return nil }
        return Int(name.dropFirst(5))
    }
}
