// The body shared by the `jpeg` and `png` targets: header, decode and the whole preprocessing
// path (orientation, resize, scaling to [-1, 1]) through the C shim, and the header reader
// that `palitrain score` uses (Evaluation's `ImageHeaderSize`), which must agree with it.
import Dataset
import Evaluation
import Foundation

/// A low pixel limit keeps each execution fast and makes the limit check reachable.
private let limits = DatasetLimits(maxImagePixels: 1 << 22, maxImageFileBytes: 1 << 20, maxLineBytes: 1 << 20, maxProblemsListed: 50)

private let fullSize = ImagePreprocessor(size: 16, limits: limits)
private let scaled = ImagePreprocessor(size: 8, limits: limits, dctScaling: .keepingAtLeast(factor: 1))

func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int, label: String) {
    let bytes = Data(bytes: data, count: size)

    // 1. The header alone, read by the decoder and by Evaluation's reader.
    do {
        _ = try ImageHeaderSize.read(bytes, path: label)
    } catch {
        checkRejection(error, expectedType: ImageHeaderError.self, label: label)
    }
    let info: ImageInfo
    do {
        info = try ImageDecoder.info(data: bytes, path: label)
    } catch {
        checkRejection(error, expectedType: ImageError.self, label: label)
        return
    }
    if !(1...8).contains(info.orientation) {
        fatalError("orientation \(info.orientation) outside 1...8")
    }
    if let size = try? ImageHeaderSize.read(bytes, path: label), size != (info.storedWidth, info.storedHeight) {
        fatalError("ImageHeaderSize reads \(size.width)x\(size.height), the decoder \(info.storedWidth)x\(info.storedHeight)")
    }

    // 2. Preprocessing at full size, and with DCT scaling for JPEGs.
    var preprocessors = [fullSize]
    if info.format == .jpeg { preprocessors.append(scaled) }
    for preprocessor in preprocessors {
        do {
            let image = try preprocessor.process(data: bytes, path: label)
            checkPrepared(image, size: preprocessor.size, info: info)
        } catch {
            checkRejection(error, expectedType: ImageError.self, label: label)
        }
    }
}

/// Checks that a prepared image has `size * size * 3` finite values and the header the decoder
/// reported.
private func checkPrepared(_ image: PreparedImage, size: Int, info: ImageInfo) {
    if image.pixels.count != size * size * 3 {
        fatalError("prepared image has \(image.pixels.count) values, expected \(size * size * 3)")
    }
    if let bad = image.pixels.firstIndex(where: { !$0.isFinite }) {
        fatalError("prepared value \(bad) is \(image.pixels[bad])")
    }
    if image.info.storedWidth != info.storedWidth || image.info.storedHeight != info.storedHeight {
        fatalError(
            "decode reports \(image.info.storedWidth)x\(image.info.storedHeight), header \(info.storedWidth)x\(info.storedHeight)")
    }
    keep(Int(image.pixels.reduce(0, +)))
}
