import Foundation
import XCTest

@testable import Dataset

final class LoaderTests: XCTestCase {
    private var dataset: DatasetBuilder!
    private var examples: [Example] = []
    private var preparer: ExamplePreparer!

    private let images = [
        "rgb-baseline.jpg", "rgb.png", "gray.jpg", "gray16.png", "cmyk.jpg", "exif-orientation-6.jpg", "rgba.png",
        "palette.png", "upscale.png", "rgb-progressive.jpg",
    ]

    /// 20 records over 10 images, with distinct suffixes so rows identify examples.
    override func setUpWithError() throws {
        dataset = try DatasetBuilder()
        var lines: [String] = []
        for index in 0..<20 {
            let image = images[index % images.count]
            try dataset.copyImage(image, to: image)
            let suffix = index % 5 == 0 ? "" : "<loc\(String(format: "%04d", index))><loc0001><loc0900><loc0901> cat"
            lines.append(DatasetBuilder.record(image, "detect cat", suffix))
        }
        try dataset.write("_annotations.train.jsonl", lines: lines)
        let source = try DatasetSource.discover(directory: dataset.root.path)
        examples = try RecordReader.read(try source.split("train"), boundary: source.boundary, limits: DatasetLimits()).examples
        XCTAssertEqual(examples.count, 20)
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        preparer = ExamplePreparer(
            images: ImagePreprocessor(size: 8), sequences: try SequenceBuilder(tokenizer: tokenizer, textLength: 11))
    }

    override func tearDown() {
        dataset.remove()
    }

    private func loader(rank: Int = 0, worldSize: Int = 1, globalBatch: Int = 8, seed: UInt64 = 7,
                        sharding: EpochOrder.Sharding = .contiguous, cursor: LoaderCursor? = nil) throws -> ShardedLoader {
        try ShardedLoader(
            examples: examples, preparer: preparer, globalBatch: globalBatch, rank: rank, worldSize: worldSize, seed: seed,
            sharding: sharding, prefetch: 2, resumeFrom: cursor)
    }

    func testPermutationIsDeterministicPerEpoch() throws {
        let order = try EpochOrder(exampleCount: 20, globalBatch: 8, seed: 7)
        XCTAssertEqual(order.permutation(epoch: 0), order.permutation(epoch: 0))
        XCTAssertEqual(order.permutation(epoch: 0).sorted(), Array(0..<20))
        XCTAssertNotEqual(order.permutation(epoch: 0), order.permutation(epoch: 1))
        XCTAssertNotEqual(order.permutation(epoch: 0), try EpochOrder(exampleCount: 20, globalBatch: 8, seed: 8).permutation(epoch: 0))
        XCTAssertEqual(order.stepsPerEpoch, 2)
        // Pinned values, computed with the same SplitMix64 and Fisher-Yates in Python: a change
        // here changes the data order of every run.
        XCTAssertEqual(order.permutation(epoch: 0), [4, 1, 2, 15, 16, 18, 9, 6, 13, 3, 8, 5, 19, 12, 17, 10, 11, 0, 14, 7])
        var generator = SplitMix64(seed: 0)
        XCTAssertEqual(generator.next(), 0xE220_A839_7B1D_CDAF)
    }

    /// The examples of global step k are the same for 1, 2 and 4 ranks, in both shardings.
    func testBatchesDoNotDependOnWorldSize() throws {
        let single = try loader()
        var reference: [Batch] = []
        for _ in 0..<4 { reference.append(try single.next()) }
        XCTAssertEqual(reference.map(\.epoch), [0, 0, 1, 1])
        XCTAssertEqual(reference.map(\.step), [0, 1, 0, 1])

        for sharding in [EpochOrder.Sharding.contiguous, .strided] {
            for worldSize in [2, 4] {
                let loaders = try (0..<worldSize).map { try loader(rank: $0, worldSize: worldSize, sharding: sharding) }
                for step in 0..<4 {
                    let parts = try loaders.map { try $0.next() }
                    let positions = (0..<worldSize).map {
                        EpochOrder.positions(rank: $0, worldSize: worldSize, globalBatch: 8, sharding: sharding)
                    }
                    for (rank, part) in parts.enumerated() {
                        XCTAssertEqual(part.batchSize, 8 / worldSize)
                        for (index, position) in positions[rank].enumerated() {
                            let expected = reference[step]
                            XCTAssertEqual(part.examples[index], expected.examples[position], "\(sharding) n=\(worldSize) step \(step)")
                            XCTAssertEqual(part.text[(index * 12)..<((index + 1) * 12)], expected.text[(position * 12)..<((position + 1) * 12)])
                            XCTAssertEqual(
                                part.image[(index * 192)..<((index + 1) * 192)], expected.image[(position * 192)..<((position + 1) * 192)])
                        }
                    }
                }
            }
        }
    }

    func testEpochCoversDistinctExamples() throws {
        let single = try loader()
        let first = try single.next()
        let second = try single.next()
        let seen = first.examples + second.examples
        XCTAssertEqual(Set(seen.map(\.line)).count, 16)
    }

    func testResumeFromCursorIsExact() throws {
        let original = try loader(worldSize: 2)
        var batches: [Batch] = []
        var savedCursor: LoaderCursor?
        for step in 0..<5 {
            if step == 3 { savedCursor = original.cursor }
            batches.append(try original.next())
        }
        let cursor = try XCTUnwrap(savedCursor)
        XCTAssertEqual(cursor.epoch, 1)
        XCTAssertEqual(cursor.step, 1)

        // Through JSON, as a checkpoint stores it.
        let decoded = try JSONDecoder().decode(LoaderCursor.self, from: JSONEncoder().encode(cursor))
        let resumed = try loader(worldSize: 2, cursor: decoded)
        for expected in batches[3...] {
            let batch = try resumed.next()
            XCTAssertEqual(batch.epoch, expected.epoch)
            XCTAssertEqual(batch.step, expected.step)
            XCTAssertEqual(batch.examples, expected.examples)
            XCTAssertEqual(batch.image, expected.image)
        }
    }

    func testCursorMismatchIsRejected() throws {
        let cursor = try loader().cursor
        XCTAssertThrowsError(try loader(seed: 8, cursor: cursor)) { error in
            XCTAssertTrue("\(error)".contains("the saved seed is 7 but the current one is 8"), "\(error)")
        }
        XCTAssertThrowsError(try loader(globalBatch: 4, cursor: cursor)) { error in
            guard case DatasetError.cursorMismatch(let field, _, _) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(field, "global batch")
        }
    }

    func testBatchLayoutAndEmptySuffix() throws {
        let batch = try loader().next()
        XCTAssertEqual(batch.image.count, 8 * 8 * 8 * 3)
        XCTAssertEqual(batch.text.count, 8 * 12)
        XCTAssertTrue(batch.image.allSatisfy { $0 >= -1 && $0 <= 1 })
        for index in 0..<8 {
            let row = index * 12..<(index + 1) * 12
            let loss = Array(batch.maskLoss[row])
            let text = Array(batch.text[row])
            if batch.examples[index].suffix.isEmpty {
                // BOS, "detect", "▁cat", "\n", EOS: only the EOS is supervised.
                XCTAssertEqual(text.prefix(5), [2, 1424, 1608, 1166, 1])
                XCTAssertEqual(loss, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
            } else {
                XCTAssertEqual(loss.reduce(0, +), 6)
            }
        }
    }

    func testInvalidSettingsAreRejected() throws {
        XCTAssertThrowsError(try loader(worldSize: 3)) { error in
            XCTAssertTrue("\(error)".contains("must be a multiple of the 3 ranks"), "\(error)")
        }
        XCTAssertThrowsError(try loader(rank: 2, worldSize: 2))
        XCTAssertThrowsError(try loader(globalBatch: 32)) { error in
            XCTAssertTrue("\(error)".contains("only 20 usable examples"), "\(error)")
        }
    }

    func testQueueIsBounded() throws {
        let loader = try loader()
        _ = try loader.next()
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertLessThanOrEqual(loader.bufferedCount, 2)
        loader.stop()
        XCTAssertThrowsError(try loader.next()) { error in
            guard case DatasetError.loaderStopped = error else { return XCTFail("got \(error)") }
        }
    }

    func testFailingExampleNamesRecord() throws {
        try dataset.copyImage("truncated.jpg", to: "rgb.png")  // a broken file under a listed name
        let loader = try loader(globalBatch: 20)
        XCTAssertThrowsError(try loader.next()) { error in
            guard case DatasetError.exampleFailed(let file, let line, let image, _) = error else {
                return XCTFail("got \(error)")
            }
            XCTAssertTrue(file.hasSuffix("_annotations.train.jsonl"))
            XCTAssertEqual(image, "rgb.png")
            XCTAssertTrue([2, 12].contains(line))
            XCTAssertTrue("\(error)".contains("truncated JPEG data"), "\(error)")
        }
    }
}
