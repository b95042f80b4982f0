import Foundation
import XCTest
@testable import Checkpoint

/// Malformed or hostile NPY members: each must be rejected with an error that names the file,
/// the key, what was expected and what was found.
final class HostileNPYTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    /// Writes an archive holding one stored member `w.npy` with `npy`, and returns its path.
    private func archive(with npy: [UInt8], name: String = "w.npz") throws -> String {
        let path = directory.path(name)
        let bytes = HostileArchive(members: [.stored("w.npy", npy)]).build().bytes
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Asserts that reading `key` from `path` fails with a message containing the path and
    /// every fragment.
    private func assertRejected(
        _ path: String, key: String = "w", limits: CheckpointLimits = .default, _ fragments: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let reader = try NPZReader(path: path, limits: limits)
            let array = try reader.array(key)
            XCTFail("expected an error, read '\(array.key)' with shape \(array.shape)", file: file, line: line)
        } catch {
            let message = "\(error)"
            XCTAssertTrue(error is CheckpointError, "not a CheckpointError: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(path), "message does not name the file: \(message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "missing '\(fragment)' in: \(message)", file: file, line: line)
            }
        }
    }

    private func dict(descr: String = "<f4", fortran: String = "False", shape: String = "(2, 3)") -> String {
        "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }"
    }

    private let sixFloats = [UInt8](repeating: 0, count: 24)

    // MARK: - Magic, version, header

    func testBadMagic() throws {
        var npy = float32NPY(shape: [2, 3])
        npy[5] = UInt8(ascii: "X")
        assertRejected(try archive(with: npy), ["key 'w'", "invalid NPY magic", "expected \\x93NUMPY", "found '\\x93NUMPX'"])
    }

    func testUnsupportedVersion() throws {
        var npy = float32NPY(shape: [2, 3])
        npy[6] = 4
        assertRejected(try archive(with: npy), ["key 'w'", "format version", "expected 1.0, 2.0 or 3.0", "found 4.0"])
    }

    func testHeaderLongerThanLimit() throws {
        let long = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), " + String(repeating: " ", count: 12_000) + "}"
        let path = try archive(with: npyBytes(dict: long, data: sixFloats))
        assertRejected(path, ["key 'w'", "exceeds CheckpointLimits.maxHeaderBytes = 10000"])

        // The same file reads once the limit is raised.
        let raised = CheckpointLimits(maxHeaderBytes: 20_000)
        XCTAssertEqual(try NPZReader(path: path, limits: raised).array("w").shape, [2, 3])
    }

    func testHeaderLengthPastMemberEnd() throws {
        var npy = float32NPY(shape: [2, 3])
        npy.patchU16(at: 8, 5000)
        assertRejected(try archive(with: npy), ["key 'w'", "truncated NPY header dict", "expected 5010 bytes", "found \(npy.count)"])
    }

    func testNonASCIIHeader() throws {
        let npy = npyBytes(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'é': 1}", data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "header dict", "expected printable ASCII text", "found byte 0xc3 at offset"])
    }

    func testGarbledHeaderDict() throws {
        let npy = npyBytes(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "expected a Python dict literal", "found expected ',' or ')' at offset"])
    }

    func testHeaderWithCodeInsteadOfLiteral() throws {
        let npy = npyBytes(dict: "__import__('os').system('true')", data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "expected a Python dict literal", "found expected a dict"])
    }

    func testHeaderWithExtraKey() throws {
        let npy = npyBytes(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'pickle': True}", data: sixFloats)
        assertRejected(
            try archive(with: npy),
            ["key 'w'", "header dict keys", "expected 'descr', 'fortran_order', 'shape'", "found 'descr', 'fortran_order', 'shape', 'pickle'"])
    }

    func testHeaderMissingShape() throws {
        let npy = npyBytes(dict: "{'descr': '<f4', 'fortran_order': False}", data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "header dict keys", "found 'descr', 'fortran_order'"])
    }

    // MARK: - dtype and order (numpy-written fixtures)

    func testObjectDTypeIsRejected() throws {
        let path = Fixtures.hostile("object_dtype.npz")
        assertRejected(path, key: "params_pickle", ["key 'params_pickle'", "unsupported dtype '|O'", "pickled Python objects"])
        XCTAssertEqual(try NPZReader(path: path).array("ok").floats(), [0, 1, 2, 3, 4, 5])
    }

    func testBigEndianIsRejected() {
        assertRejected(Fixtures.hostile("big_endian.npz"), key: "weights", ["key 'weights'", "unsupported dtype '>f4'", "big-endian"])
    }

    func testFortranOrderIsRejected() {
        assertRejected(
            Fixtures.hostile("fortran_order.npz"), key: "weights",
            ["key 'weights'", "invalid NPY fortran_order", "expected False (C order)", "found True with shape (2, 3)"])
    }

    func testFortranOrderOneDimensionalReads() throws {
        let npy = npyBytes(dict: dict(fortran: "True", shape: "(1, 6)"), data: sixFloats)
        XCTAssertEqual(try NPZReader(path: try archive(with: npy)).array("w").shape, [1, 6])
    }

    func testStructuredDTypeIsRejected() {
        assertRejected(
            Fixtures.hostile("structured.npz"), key: "records",
            ["key 'records'", "unsupported dtype '[('x', '<f4'), ('y', '<i4')]'", "structured dtypes"])
    }

    func testFloat64IsRejected() {
        assertRejected(Fixtures.hostile("float64.npz"), key: "weights", ["key 'weights'", "unsupported dtype '<f8'", "float64 is not read"])
    }

    func testOtherVoidSizeIsRejected() throws {
        let npy = npyBytes(dict: dict(descr: "|V4"), data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "unsupported dtype '|V4'", "only 2-byte voids"])
    }

    // MARK: - Shape and byte count

    func testNegativeDimension() throws {
        let npy = npyBytes(dict: dict(shape: "(2, -3)"), data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "invalid NPY shape", "expected non-negative dimensions", "found -3 at axis 1"])
    }

    func testShapeElementCountOverflow() throws {
        let npy = npyBytes(dict: dict(shape: "(4611686018427387904, 4)"), data: sixFloats)
        assertRejected(
            try archive(with: npy),
            ["key 'w'", "invalid NPY shape", "expected an element count that fits in Int", "found (4611686018427387904, 4)"])
    }

    func testShapeByteCountOverflow() throws {
        let npy = npyBytes(dict: dict(shape: "(2305843009213693952,)"), data: sixFloats)
        assertRejected(
            try archive(with: npy),
            ["key 'w'", "expected a byte count that fits in Int", "found (2305843009213693952,) of <f4"])
    }

    func testDimensionPast64Bits() throws {
        let npy = npyBytes(dict: dict(shape: "(99999999999999999999,)"), data: sixFloats)
        assertRejected(try archive(with: npy), ["key 'w'", "integer does not fit in 64 bits"])
    }

    func testTooManyDimensions() throws {
        let npy = npyBytes(dict: dict(shape: "(1, 2, 3)"), data: sixFloats)
        assertRejected(
            try archive(with: npy), limits: CheckpointLimits(maxDimensions: 2),
            ["key 'w'", "3 exceeds CheckpointLimits.maxDimensions = 2"])
    }

    func testShapeDisagreesWithMemberSize() throws {
        let npy = npyBytes(dict: dict(), data: [UInt8](repeating: 0, count: 20))
        assertRejected(
            try archive(with: npy),
            ["key 'w'", "invalid NPY data size", "expected 24 bytes for shape (2, 3) of <f4", "found 20 bytes after the 128-byte header"])
    }

    func testTrailingBytesAfterData() throws {
        let npy = npyBytes(dict: dict(), data: [UInt8](repeating: 0, count: 28))
        assertRejected(try archive(with: npy), ["key 'w'", "expected 24 bytes", "found 28 bytes"])
    }

    // MARK: - Single .npy files

    func testTruncatedNPYFile() throws {
        let path = directory.path("cut.npy")
        let npy = float32NPY(shape: [4, 4])
        try Data(npy.prefix(npy.count - 7)).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try readNPY(path: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("cut.npy key 'cut'"), message)
            XCTAssertTrue(message.contains("expected 64 bytes for shape (4, 4) of <f4, found 57 bytes"), message)
        }
    }

    func testEmptyNPYFile() throws {
        let path = directory.path("empty.npy")
        try Data().write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try readNPY(path: path)) { error in
            XCTAssertTrue("\(error)".contains("truncated NPY magic and version: expected 8 bytes, found 0"), "\(error)")
        }
    }

    func testMissingFile() {
        let path = directory.path("absent.npz")
        XCTAssertThrowsError(try NPZReader(path: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("\(path): open failed: No such file or directory"), message)
        }
    }
}
