import Foundation
import XCTest
import TensorCore
@testable import Checkpoint

/// Files palitrain writes load in numpy with the same keys, shapes, dtypes and values, and
/// files numpy writes load in palitrain. Needs python3 with numpy; skipped without them.
final class NumpyInteropTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        let probe = try Python.run("import numpy", arguments: [])
        if probe.status != 0 {
            throw XCTSkip("python3 with numpy is not available (\(probe.output)); install python3-numpy to run this test")
        }
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory?.remove()
    }

    /// Loads `path` with np.load and prints, per key, the dtype string, shape and values as f64
    /// (2-byte voids reinterpreted as bf16, the way big_vision reads them).
    private let describeScript = """
        import json, sys
        import numpy as np
        out = {}
        with np.load(sys.argv[1], allow_pickle=False) as z:
            for k in z.files:
                a = z[k]
                if a.dtype.kind == 'V' and a.dtype.itemsize == 2:
                    v = (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
                else:
                    v = a
                out[k] = {'dtype': a.dtype.str, 'shape': list(a.shape),
                          'values': [float(x) for x in np.asarray(v, dtype=np.float64).ravel()]}
        print(json.dumps(out))
        """

    private struct Described: Decodable, Equatable {
        let dtype: String
        let shape: [Int]
        let values: [Double]
    }

    private func describeWithNumpy(_ path: String) throws -> [String: Described] {
        let result = try Python.run(describeScript, arguments: [path])
        XCTAssertEqual(result.status, 0, result.output)
        guard let line = result.output.split(separator: "\n").last else {
            XCTFail("numpy printed nothing")
            return [:]
        }
        return try JSONDecoder().decode([String: Described].self, from: Data(line.utf8))
    }

    private let values: [Float] = (0..<24).map { Float($0 - 12) * 0.375 }

    private func writeAndDescribe(compression: NPZCompression, forceZip64: Bool) throws -> [String: Described] {
        let path = directory.path("out.npz")
        let writer = try NPZWriter(path: path, compression: compression, forceZip64: forceZip64)
        try writer.write(key: "params/img/head/kernel", floats: values, shape: [2, 3, 4], as: .f32)
        try writer.write(key: "llm/final_norm/scale", floats: values, shape: [24], as: .f16)
        try writer.write(key: "llm/layers/mlp/linear", floats: values, shape: [2, 3, 4], as: .bf16)
        try writer.write(key: "text", int32s: [2, 108, -1, 0, Int32.min, Int32.max], shape: [2, 3])
        try writer.write(key: "loss", floats: [0.125], shape: [], as: .f32)
        try writer.write(key: "empty", floats: [], shape: [3, 0], as: .f16)
        try writer.finish()
        return try describeWithNumpy(path)
    }

    private func checkDescription(_ found: [String: Described]) {
        let expectedValues = values.map(Double.init)
        XCTAssertEqual(
            found.keys.sorted(),
            ["empty", "llm/final_norm/scale", "llm/layers/mlp/linear", "loss", "params/img/head/kernel", "text"])
        XCTAssertEqual(found["params/img/head/kernel"], Described(dtype: "<f4", shape: [2, 3, 4], values: expectedValues))
        XCTAssertEqual(found["llm/final_norm/scale"], Described(dtype: "<f2", shape: [24], values: expectedValues))
        XCTAssertEqual(found["llm/layers/mlp/linear"], Described(dtype: "|V2", shape: [2, 3, 4], values: expectedValues))
        XCTAssertEqual(
            found["text"],
            Described(dtype: "<i4", shape: [2, 3], values: [2, 108, -1, 0, Double(Int32.min), Double(Int32.max)]))
        XCTAssertEqual(found["loss"], Described(dtype: "<f4", shape: [], values: [0.125]))
        XCTAssertEqual(found["empty"], Described(dtype: "<f2", shape: [3, 0], values: []))
    }

    func testNumpyLoadsStoredArchive() throws {
        checkDescription(try writeAndDescribe(compression: .stored, forceZip64: false))
    }

    func testNumpyLoadsDeflatedArchive() throws {
        checkDescription(try writeAndDescribe(compression: .deflated, forceZip64: false))
    }

    func testNumpyLoadsForcedZip64Archive() throws {
        checkDescription(try writeAndDescribe(compression: .stored, forceZip64: true))
        checkDescription(try writeAndDescribe(compression: .deflated(level: 9), forceZip64: true))
    }

    func testNumpyLoadsNPYFile() throws {
        let path = directory.path("single.npy")
        try writeNPY(path: path, array: try NPYArray(key: "single", floats: values, shape: [4, 6], as: .f16))
        let script = """
            import sys, numpy as np
            a = np.load(sys.argv[1], allow_pickle=False)
            print(a.dtype.str, a.shape, float(a.sum()), float(a[3, 5]))
            """
        let result = try Python.run(script, arguments: [path])
        XCTAssertEqual(result.status, 0, result.output)
        let expectedSum = values.reduce(0, +)
        XCTAssertEqual(
            result.output.trimmingCharacters(in: .whitespacesAndNewlines),
            "<f2 (4, 6) \(Double(expectedSum)) \(Double(values[23]))")
    }

    func testReadsEveryDTypeNumpyWrites() throws {
        let script = """
            import sys, numpy as np
            base = np.arange(-6, 6, dtype=np.float32).reshape(3, 4) * 0.5
            bf16 = (base.view(np.uint32) >> 16).astype(np.uint16).view('|V2')
            arrays = {
                'params/f4': base, 'f2': base.astype(np.float16), 'bf16': bf16,
                'i4': np.arange(-6, 6, dtype=np.int32), 'i8': np.arange(-6, 6, dtype=np.int64) * 3_000_000_000,
                'i1': np.arange(-6, 6, dtype=np.int8), 'u1': np.arange(0, 250, 25, dtype=np.uint8),
                'b1': np.array([True, False, True]), 'scalar': np.float32(2.5), 'zero': np.zeros((0,), np.float32),
            }
            np.savez(sys.argv[1], **arrays)
            np.savez_compressed(sys.argv[2], **arrays)
            """
        let stored = directory.path("numpy.npz")
        let deflated = directory.path("numpy_compressed.npz")
        let result = try Python.run(script, arguments: [stored, deflated])
        XCTAssertEqual(result.status, 0, result.output)

        let base = (-6..<6).map { Float($0) * 0.5 }
        for path in [stored, deflated] {
            let reader = try NPZReader(path: path)
            XCTAssertEqual(reader.keys, ["b1", "bf16", "f2", "f4", "i1", "i4", "i8", "scalar", "u1", "zero"], path)
            XCTAssertEqual(try reader.array("f4").floats(), base)
            XCTAssertEqual(try reader.array("f4").shape, [3, 4])
            XCTAssertEqual(try reader.array("f2").floats(), base)
            XCTAssertEqual(try reader.array("bf16").elementType, .bfloat16)
            XCTAssertEqual(try reader.array("bf16").floats(), base)
            XCTAssertEqual(try reader.array("i4").int32s(), (-6..<6).map { Int32($0) })
            XCTAssertEqual(try reader.array("i8").ints(), (-6..<6).map { $0 * 3_000_000_000 })
            XCTAssertThrowsError(try reader.array("i8").int32s())
            XCTAssertEqual(try reader.array("i1").ints(), Array(-6..<6))
            XCTAssertEqual(try reader.array("u1").ints(), Array(stride(from: 0, to: 250, by: 25)))
            XCTAssertEqual(try reader.array("b1").bools(), [true, false, true])
            XCTAssertEqual(try reader.array("scalar").shape, [])
            XCTAssertEqual(try reader.array("scalar").floats(), [2.5])
            XCTAssertEqual(try reader.array("zero").shape, [0])
        }
    }
}
