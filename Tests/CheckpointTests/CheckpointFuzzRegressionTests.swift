import Foundation
import XCTest
@testable import Checkpoint

/// Inputs that the `npy` and `npz` fuzz targets (scripts/fuzz) found, each rejected with a clean
/// `CheckpointError`. The fuzzer's own inputs are in Tests/Fixtures/fuzz-regressions/.
final class CheckpointFuzzRegressionTests: XCTestCase {
    private func regressionInput(_ name: String) -> String {
        Fixtures.repositoryRoot.appendingPathComponent("Tests/Fixtures/fuzz-regressions/\(name)").path
    }

    private func assertInvalidArchive(
        _ error: Error, member: String, field: String, _ fragments: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard case let .invalidArchive(_, foundMember, foundField, _, _)? = error as? CheckpointError else {
            return XCTFail("expected invalidArchive, got \(error)", file: file, line: line)
        }
        XCTAssertEqual(foundMember, member, file: file, line: line)
        XCTAssertEqual(foundField, field, file: file, line: line)
        let message = "\(error)"
        for fragment in fragments {
            XCTAssertTrue(message.contains(fragment), "missing '\(fragment)' in: \(message)", file: file, line: line)
        }
    }

    // MARK: - Deflated size above deflate's maximum ratio

    /// The fuzzer's 524-byte archive declares a deflated member of 4,278,190,220 bytes from 79
    /// compressed bytes. `verifyChecksum` used to allocate the 4 GiB before inflating.
    func testFuzzerDeflatedSizeRejectedAtOpen() {
        let path = regressionInput("npz/deflated-size-4gib.npz")
        XCTAssertThrowsError(try NPZReader(path: path)) { error in
            assertInvalidArchive(
                error, member: "params/llm/ids.npy", field: "deflated size",
                [path, "size 4278190220 for 79 compressed bytes", "at most 1032 times the compressed size (81528 bytes)"])
        }
    }

    func testDeflatedSizeOneAboveBoundRejected() throws {
        var member = try HostileArchive.Member.deflated("w.npy", float32NPY(shape: [2, 3]))
        member.size = 1032 * member.data.count + 1
        let bytes = HostileArchive(members: [member]).build().bytes
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try NPZReader(bytes: $0, name: "lying.npz") }) { error in
            assertInvalidArchive(error, member: "w.npy", field: "deflated size", ["lying.npz", "size \(member.size) for"])
        }
    }

    /// zlib's best ratio on zeros stays below the bound, so genuine archives still read.
    func testMostCompressibleMemberStillReads() throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let npy = npyBytes(dict: "{'descr': '|u1', 'fortran_order': False, 'shape': (\(zeros.count),), }", data: zeros)
        let member = try HostileArchive.Member.deflated("zeros.npy", npy)
        XCTAssertGreaterThan(npy.count / member.data.count, 900, "zlib should compress zeros about 1000:1")

        let bytes = HostileArchive(members: [member]).build().bytes
        let reader = try bytes.withUnsafeBytes { try NPZReader(bytes: $0) }
        let array = try reader.array("zeros")
        XCTAssertEqual(array.shape, [zeros.count])
        XCTAssertEqual(try array.ints().reduce(0, +), 0)
    }
}
