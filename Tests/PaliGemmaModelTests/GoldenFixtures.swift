import Checkpoint
import Foundation
import PaliGemmaModel
import TensorCore
import XCTest

/// The big_vision golden files in Tests/Fixtures/golden (a tiny PaliGemma, batch of 2).
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/golden")

    static func reader(_ file: String) throws -> NPZReader {
        try NPZReader(path: directory.appendingPathComponent(file).path)
    }

    /// Loads a checkpoint file into a model with the given trainable pattern.
    static func model(file: String = "params.npz", trainable: String, upcastToFloat: Bool = false) throws -> PaliGemma {
        let npz = try reader(file)
        var arrays: [String: StoredArray] = [:]
        for key in npz.keys {
            let array = try StoredArray(npz.array(key))
            arrays[key] = upcastToFloat ? StoredArray(array.toTensor(), dtype: .f32) : array
        }
        return PaliGemma(parameters: try ParameterStore(arrays: arrays, trainable: trainable))
    }

    /// Reads the training batch from inputs.npz.
    static func batch() throws -> PaliGemmaBatch {
        let inputs = try reader("inputs.npz")
        let image = try inputs.array("image")
        return try PaliGemmaBatch(
            images: Tensor(shape: image.shape, values: image.floats()),
            text: inputs.array("text").int32s(),
            maskAR: inputs.array("mask_ar").int32s(),
            maskLoss: inputs.array("mask_loss").int32s())
    }
}

/// Asserts that two arrays agree within `tolerance`, reporting the max abs difference and where.
func assertClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float, _ label: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("\(label): \(actual.count) values but the golden tensor has \(expected.count)", file: file, line: line)
        return
    }
    var worst: Float = 0
    var worstIndex = 0
    for i in actual.indices {
        let difference = abs(actual[i] - expected[i])
        if !(difference <= worst) {
            worst = difference
            worstIndex = i
        }
    }
    let detail = actual.isEmpty ? "" : " at flat index \(worstIndex) (got \(actual[worstIndex]), expected \(expected[worstIndex]))"
    XCTAssertLessThanOrEqual(worst, tolerance, "\(label): max abs difference \(worst)\(detail)", file: file, line: line)
}
