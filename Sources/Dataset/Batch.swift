/// One example ready for the model.
public struct PreparedExample: Sendable {
    /// `[size, size, 3]` in [-1, 1].
    public var pixels: [Float]
    /// `[L + 1]` text and masks.
    public var row: TextRow
    public var example: Example
}

/// One rank's part of a global batch.
public struct Batch: Sendable {
    /// Epoch and step within the epoch of this global batch.
    public let epoch: Int
    public let step: Int
    /// Examples in this rank's part (B).
    public let batchSize: Int
    public let imageSize: Int
    /// L + 1.
    public let rowLength: Int
    /// `[B, imageSize, imageSize, 3]` f32 in [-1, 1], row-major (NHWC).
    public var image: [Float]
    /// `[B, L + 1]` token ids.
    public var text: [Int32]
    /// `[B, L + 1]` each.
    public var maskAR: [Int32]
    public var maskLoss: [Int32]
    public var maskInput: [Int32]
    /// The source records, `[B]`.
    public var examples: [Example]

    init(epoch: Int, step: Int, batchSize: Int, imageSize: Int, rowLength: Int) {
        self.epoch = epoch
        self.step = step
        self.batchSize = batchSize
        self.imageSize = imageSize
        self.rowLength = rowLength
        image = Array(repeating: 0, count: batchSize * imageSize * imageSize * 3)
        text = Array(repeating: 0, count: batchSize * rowLength)
        maskAR = text
        maskLoss = text
        maskInput = text
        examples = []
    }

    mutating func set(_ index: Int, _ prepared: PreparedExample) {
        let pixels = imageSize * imageSize * 3
        image.replaceSubrange((index * pixels)..<((index + 1) * pixels), with: prepared.pixels)
        let range = (index * rowLength)..<((index + 1) * rowLength)
        text.replaceSubrange(range, with: prepared.row.text)
        maskAR.replaceSubrange(range, with: prepared.row.maskAR)
        maskLoss.replaceSubrange(range, with: prepared.row.maskLoss)
        maskInput.replaceSubrange(range, with: prepared.row.maskInput)
    }
}

/// Turns a record into model input: image preprocessing plus the training row.
public struct ExamplePreparer: Sendable {
    public let images: ImagePreprocessor
    public let sequences: SequenceBuilder

    public init(images: ImagePreprocessor, sequences: SequenceBuilder) {
        self.images = images
        self.sequences = sequences
    }

    /// Errors name the record's file, line and image.
    public func prepare(_ example: Example) throws -> PreparedExample {
        do {
            let image = try images.load(path: example.imagePath)
            let row = try sequences.trainingRow(prefix: example.prefix, suffix: example.suffix)
            return PreparedExample(pixels: image.pixels, row: row, example: example)
        } catch {
            throw DatasetError.exampleFailed(file: example.sourceFile, line: example.line, image: example.image, cause: error)
        }
    }
}
