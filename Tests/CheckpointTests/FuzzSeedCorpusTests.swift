import Foundation
import XCTest
import Checkpoint

/// The committed seed corpora of the `npy` and `npz` fuzz targets are valid input: every seed
/// reads without error, so the fuzzer starts from files the reader accepts.
final class FuzzSeedCorpusTests: XCTestCase {
    private func seeds(_ target: String) throws -> [URL] {
        let directory = Fixtures.repositoryRoot.appendingPathComponent("Tests/Fixtures/fuzz-corpus/\(target)")
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        return files.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testNPYSeedsRead() throws {
        let files = try seeds("npy")
        XCTAssertGreaterThanOrEqual(files.count, 10)
        for file in files {
            let array = try readNPY(path: file.path)
            XCTAssertEqual(array.floats().count, array.count, file.lastPathComponent)
        }
    }

    func testNPZSeedsRead() throws {
        let files = try seeds("npz")
        XCTAssertGreaterThanOrEqual(files.count, 5)
        for file in files {
            let reader = try NPZReader(path: file.path)
            for key in reader.keys {
                XCTAssertNoThrow(try reader.verifyChecksum(key), "\(file.lastPathComponent): \(key)")
                let array = try reader.array(key)
                XCTAssertEqual(array.floats().count, array.count, "\(file.lastPathComponent): \(key)")
            }
        }
    }

    /// The seeds that exercise ZIP64 and deflate contain the arrays the seed script wrote.
    func testZip64SeedValues() throws {
        for name in ["stored_zip64.npz", "deflated_zip64.npz", "descriptor_deflated.npz", "stored_aligned64.npz"] {
            let path = Fixtures.repositoryRoot.appendingPathComponent("Tests/Fixtures/fuzz-corpus/npz/\(name)").path
            let reader = try NPZReader(path: path)
            XCTAssertEqual(reader.keys, ["img/embedding/kernel", "llm/ids"], name)
            XCTAssertEqual(try reader.array("img/embedding/kernel").floats(), [0, 1, 2, 3, 4, 5], name)
            XCTAssertEqual(try reader.array("llm/ids").int32s(), [1, -2, 3], name)
        }
    }
}
