import Checkpoint
import Foundation
@testable import PaliGemmaModel
import TensorCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Releasing the resident pages of frozen weights that lie in a memory-mapped checkpoint.
///
/// Residency is read from /proc/self/pagemap, whose entries tell whether each virtual page is
/// mapped in this process now. mincore() would not do, because for a file mapping it reports
/// whether the page cache holds the page, which a release leaves unchanged.
final class PageReleaseTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("palitrain-page-release-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - One array

    func testReleaseDropsMappedPages() throws {
        let values = (0..<(256 * 1024)).map { Float($0 % 1000) * 0.5 }
        let reader = try writeArchive(["big": (values, [256, 1024])])
        let array = try StoredArray(reader.array("big"))
        XCTAssertTrue(array.isFileMapped)

        touch(array)
        let before = try residentPages(array)
        XCTAssertEqual(before.resident, before.pages, "every page was read, so every page is mapped")
        XCTAssertGreaterThanOrEqual(before.pages, 256)

        XCTAssertTrue(array.releaseResidentPages())
        XCTAssertEqual(try residentPages(array).resident, 0)

        XCTAssertEqual(array.toTensor().scalars, values, "pages fault back in with the same values")
        let after = try residentPages(array)
        XCTAssertEqual(after.resident, after.pages)
    }

    func testReleaseOfSliceKeepsOtherSlices() throws {
        let values = (0..<(4 * 64 * 1024)).map { Float($0 % 777) }
        let reader = try writeArchive(["stacked": (values, [4, 64, 1024])])
        let array = try StoredArray(reader.array("stacked"))
        touch(array)

        XCTAssertTrue(array.slice(1).releaseResidentPages())
        XCTAssertEqual(try residentPages(array.slice(1)).resident, 0)
        // The range is widened to whole pages, so at most one page of each neighbour goes too.
        for layer in [0, 2] {
            let neighbour = try residentPages(array.slice(layer))
            XCTAssertGreaterThanOrEqual(neighbour.resident, neighbour.pages - 1, "slice \(layer)")
        }
        let last = try residentPages(array.slice(3))
        XCTAssertEqual(last.resident, last.pages, "slice 3 shares no page with slice 1")
        XCTAssertEqual(array.toTensor().scalars, values)
    }

    func testReleaseLeavesOwnedMemoryAlone() throws {
        let values = (0..<(128 * 1024)).map { Float($0) }
        let owned = StoredArray(Tensor(shape: [128, 1024], values: values), dtype: .f32)
        XCTAssertFalse(owned.isFileMapped)
        XCTAssertFalse(owned.releaseResidentPages())
        XCTAssertEqual(owned.toTensor().scalars, values)
        let ownedPages = try residentPages(owned)
        XCTAssertEqual(ownedPages.resident, ownedPages.pages, "owned pages stay mapped")

        // A deflated member is inflated into the heap, not mapped.
        let reader = try writeArchive(["packed": (values, [128, 1024])], compression: .deflated(level: 1))
        let inflated = try StoredArray(reader.array("packed"))
        XCTAssertFalse(inflated.isFileMapped)
        XCTAssertFalse(inflated.releaseResidentPages())
        XCTAssertEqual(inflated.toTensor().scalars, values)
    }

    // MARK: - A training pass

    func testPassReleasesPagesSameResults() throws {
        let batch = try Golden.batch()
        // Each model maps the file on its own, so that one model's release leaves the other's pages.
        let path = try writeModel(dtype: .f32)
        let kept = PaliGemma(parameters: try ParameterStore(npz: NPZReader(path: path), trainable: "^llm/layers/attn/"))
        kept.parameters.releasesMappedPages = false
        let released = PaliGemma(parameters: try ParameterStore(npz: NPZReader(path: path), trainable: "^llm/layers/attn/"))
        XCTAssertTrue(released.parameters.releasesMappedPages, "on by default")

        let keptOutput = try kept.forwardBackward(batch)
        let releasedOutput = try released.forwardBackward(batch)

        XCTAssertEqual(releasedOutput.loss, keptOutput.loss, "f32 results are bit-identical")
        for name in kept.gradients.names {
            XCTAssertEqual(released.gradients[name]!.snapshot().scalars, kept.gradients[name]!.snapshot().scalars, name)
        }
        for name in [Name.gating, Name.linear, Name.embedding, Name.mlpInKernel] {
            let keptPages = try residentPages(kept.parameters.frozenArray(name)!)
            XCTAssertEqual(keptPages.resident, keptPages.pages, "\(name) without release")
            XCTAssertEqual(try residentPages(released.parameters.frozenArray(name)!).resident, 0, "\(name) with release")
        }
    }

    /// A bf16 table used in place is read in chunks when its pages are released. Only the
    /// order of the f32 sums over the vocabulary changes.
    func testBF16TableInChunksMatchesOneChunk() throws {
        let batch = try Golden.batch()
        let path = try writeModel(dtype: .bf16)
        func model(releasing: Bool) throws -> PaliGemma {
            let model = PaliGemma(parameters: try ParameterStore(npz: NPZReader(path: path), trainable: "^llm/layers/attn/"))
            model.parameters.compute = .bf16
            model.parameters.releasesMappedPages = releasing
            model.vocabularyChunk = 4096
            return model
        }
        let whole = try model(releasing: false)
        let chunked = try model(releasing: true)
        XCTAssertEqual(whole.tiedLogitsParameters(releasingPages: true).chunkSize, 8192)
        XCTAssertEqual(chunked.tiedLogitsParameters(releasingPages: true).chunkSize, 4096)

        let wholeOutput = try whole.forwardBackward(batch)
        let chunkedOutput = try chunked.forwardBackward(batch)

        XCTAssertEqual(chunkedOutput.loss, wholeOutput.loss, accuracy: 1e-6 * abs(wholeOutput.loss))
        for name in whole.gradients.names {
            let expected = whole.gradients[name]!.snapshot().scalars
            let scale = expected.map { abs($0) }.max() ?? 0
            assertClose(chunked.gradients[name]!.snapshot().scalars, expected, tolerance: 1e-5 * scale, name)
        }
        XCTAssertEqual(try residentPages(chunked.parameters.frozenArray(Name.embedding)!).resident, 0)
    }

    // MARK: - Helpers

    private typealias Name = ParameterTable.Name

    /// Writes `arrays` (values and shape, by key) to a new archive and opens it mapped.
    private func writeArchive(
        _ arrays: [String: ([Float], [Int])], dtype: DType = .f32, compression: NPZCompression = .stored
    ) throws -> NPZReader {
        let path = directory.appendingPathComponent("\(UUID().uuidString).npz").path
        let writer = try NPZWriter(path: path, compression: compression)
        for key in arrays.keys.sorted() {
            try writer.write(key: key, floats: arrays[key]!.0, shape: arrays[key]!.1, as: dtype)
        }
        try writer.finish()
        return try NPZReader(path: path)
    }

    /// Writes random weights of a small model whose decoder weights and token table span
    /// hundreds of pages each, with the golden batch's image size and a larger vocabulary.
    /// Returns the path of the checkpoint.
    private func writeModel(dtype: DType) throws -> String {
        let config = PaliGemmaConfig(
            vision: .init(imageSize: 28, patchSize: 14, width: 32, depth: 2, numHeads: 2, headDim: 16, mlpDim: 64),
            llm: .init(width: 64, depth: 2, numHeads: 2, numKVHeads: 1, headDim: 32, mlpDim: 2048, vocabSize: 8192))
        let path = directory.appendingPathComponent("\(UUID().uuidString).npz").path
        let writer = try NPZWriter(path: path)
        for spec in ParameterTable.specs(for: config) {
            var bytes: [UInt8] = []
            PaliGemmaInit.generate(spec, seed: 7, dtype: dtype) { bytes.append(contentsOf: $0) }
            try bytes.withUnsafeBytes { try writer.write(key: spec.name, dtype: dtype, shape: spec.shape, bytes: $0) }
        }
        try writer.finish()
        return path
    }

    /// Sum of the bytes read by `touch`, stored so that the reads cannot be optimised away.
    private var touchedSum: UInt8 = 0

    /// Reads one byte of every 64, so that every page of the array is faulted in.
    private func touch(_ array: StoredArray) {
        touchedSum = array.withUnsafeBytes { bytes in
            stride(from: 0, to: bytes.count, by: 64).reduce(UInt8(0)) { $0 &+ bytes[$1] }
        }
    }

    /// Counts the pages that hold `array`'s bytes, and how many of them are mapped in this process.
    private func residentPages(_ array: StoredArray) throws -> (resident: Int, pages: Int) {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let (start, byteCount) = array.withUnsafeBytes { (Int(bitPattern: $0.baseAddress), $0.count) }
        let firstPage = start / pageSize
        let lastPage = (start + byteCount - 1) / pageSize

        let descriptor = open("/proc/self/pagemap", O_RDONLY)
        if descriptor < 0 {
            throw XCTSkip("cannot open /proc/self/pagemap (errno \(errno)); page residency cannot be checked on this system")
        }
        defer { close(descriptor) }
        var entries = [UInt64](repeating: 0, count: lastPage - firstPage + 1)
        let expectedBytes = entries.count * MemoryLayout<UInt64>.size
        let read = entries.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, expectedBytes, off_t(firstPage * 8)) }
        if read != expectedBytes {
            throw PagemapReadError(description: "read \(read) of \(expectedBytes) bytes from /proc/self/pagemap (errno \(errno))")
        }
        // Bit 63 of an entry: the page is present (mapped in memory for this process).
        let resident = entries.filter { $0 & (1 << 63) != 0 }.count
        return (resident, entries.count)
    }
}

/// A read of /proc/self/pagemap that returned fewer bytes than requested.
private struct PagemapReadError: Error, CustomStringConvertible {
    let description: String
}
