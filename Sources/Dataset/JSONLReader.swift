import Foundation

/// Reads a JSONL file line by line in fixed-size chunks, so that a line longer than
/// `maxLineBytes` is reported and skipped without ever being held in memory whole.
struct JSONLLineReader {
    enum Line {
        /// The bytes of a line without its "\n" (and without a trailing "\r").
        case content(number: Int, bytes: [UInt8])
        /// A line longer than the limit; `bytes` is its full length.
        case tooLong(number: Int, bytes: Int)
    }

    private let path: String
    private let handle: FileHandle
    private let maxLineBytes: Int
    private let chunkSize = 1 << 16
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEnd = false
    private var lineNumber = 0

    init(path: String, maxLineBytes: Int) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DatasetError.fileNotReadable(path: path, reason: "cannot open for reading")
        }
        self.path = path
        self.handle = handle
        self.maxLineBytes = maxLineBytes
    }

    /// Returns the next line, or nil at the end of the file.
    mutating func next() throws -> Line? {
        var line: [UInt8] = []
        var length = 0
        var tooLong = false

        while true {
            if position == buffer.count {
                guard try refill() else { break }
            }
            // Scan the buffered bytes for the end of the line.
            let start = position
            var end = start
            while end < buffer.count && buffer[end] != 0x0A { end += 1 }
            let piece = end - start
            length += piece
            if length > maxLineBytes {
                tooLong = true
                line.removeAll(keepingCapacity: false)
            } else {
                line.append(contentsOf: buffer[start..<end])
            }
            position = end
            if end < buffer.count {
                position += 1  // consume the "\n"
                lineNumber += 1
                return finish(line, length: length, tooLong: tooLong)
            }
        }

        // End of file: a last line without "\n", if any.
        guard length > 0 else { return nil }
        lineNumber += 1
        return finish(line, length: length, tooLong: tooLong)
    }

    private func finish(_ line: [UInt8], length: Int, tooLong: Bool) -> Line {
        if tooLong { return .tooLong(number: lineNumber, bytes: length) }
        var bytes = line
        if bytes.last == 0x0D { bytes.removeLast() }
        // A UTF-8 byte order mark at the start of the file.
        if lineNumber == 1 && bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        return .content(number: lineNumber, bytes: bytes)
    }

    private mutating func refill() throws -> Bool {
        if atEnd { return false }
        let data: Data
        do {
            data = try handle.read(upToCount: chunkSize) ?? Data()
        } catch {
            throw DatasetError.fileNotReadable(path: path, reason: error.localizedDescription)
        }
        if data.isEmpty {
            atEnd = true
            try? handle.close()
            return false
        }
        buffer = [UInt8](data)
        position = 0
        return true
    }
}

/// Returns the byte offset of the first invalid UTF-8 sequence, or nil when the bytes are valid.
func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    var offset = 0
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar):
            offset += UTF8.width(scalar)
        case .emptyInput:
            return nil
        case .error:
            return offset
        }
    }
}
