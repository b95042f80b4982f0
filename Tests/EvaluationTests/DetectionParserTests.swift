import XCTest

@testable import Evaluation

final class DetectionParserTests: XCTestCase {
    private let parser = DetectionParser(classes: ["cat", "dog", "traffic light"])

    private func locs(_ values: Int...) -> String {
        values.map { String(format: "<loc%04d>", $0) }.joined()
    }

    private func kinds(_ output: ParsedOutput) -> [ParseIssueKind] {
        output.issues.map(\.kind)
    }

    func testSingleObject() {
        let output = parser.parse(locs(100, 200, 300, 400) + " cat")

        XCTAssertEqual(output.objects.count, 1)
        XCTAssertEqual(output.objects.first?.bins, LocBins(yMin: 100, xMin: 200, yMax: 300, xMax: 400))
        XCTAssertEqual(output.objects.first?.label, "cat")
        XCTAssertEqual(output.objects.first?.part, 0)
        XCTAssertNil(output.objects.first?.score)
        XCTAssertEqual(output.issues, [])
        XCTAssertEqual(output.partCount, 1)
        XCTAssertFalse(output.failedToParse)
        XCTAssertFalse(output.reachedTokenLimit)
    }

    func testMultipleObjects() {
        let text = locs(0, 0, 1023, 1023) + " cat ; " + locs(10, 20, 30, 40) + " traffic light ; " + locs(5, 6, 7, 8) + " dog"
        let output = parser.parse(text)

        XCTAssertEqual(output.objects.map(\.label), ["cat", "traffic light", "dog"])
        XCTAssertEqual(output.objects.map(\.part), [0, 1, 2])
        XCTAssertEqual(output.objects[1].bins, LocBins(yMin: 10, xMin: 20, yMax: 30, xMax: 40))
        XCTAssertEqual(output.issues, [])
        XCTAssertEqual(output.partCount, 3)
    }

    func testThreeLocsIsTooFew() {
        let output = parser.parse(locs(100, 200, 300) + " cat ; " + locs(1, 2, 3, 4) + " dog")

        XCTAssertEqual(kinds(output), [.tooFewLocs])
        XCTAssertEqual(output.issues.first?.text, "<loc0100><loc0200><loc0300> cat")
        XCTAssertEqual(output.objects.map(\.label), ["dog"])
        XCTAssertEqual(output.objects.first?.part, 1)
        XCTAssertEqual(output.partCount, 2)
        XCTAssertTrue(output.failedToParse)
    }

    func testTrailingLocsAreTooFew() {
        let output = parser.parse(locs(1, 2, 3, 4) + " dog ; " + locs(5, 6))

        XCTAssertEqual(kinds(output), [.tooFewLocs])
        XCTAssertEqual(output.objects.map(\.label), ["dog"])
    }

    func testLocsWithoutLabel() {
        XCTAssertEqual(kinds(parser.parse(locs(1, 2, 3, 4))), [.missingLabel])
        XCTAssertEqual(kinds(parser.parse(locs(1, 2, 3, 4) + "   ")), [.missingLabel])

        let output = parser.parse(locs(1, 2, 3, 4) + " ; " + locs(5, 6, 7, 8) + " dog")
        XCTAssertEqual(kinds(output), [.missingLabel])
        XCTAssertEqual(output.objects.map(\.label), ["dog"])
    }

    func testEightLocsThenLabel() {
        // Like the demo's regex: the first four locs form an object with no label.
        let output = parser.parse(locs(1, 2, 3, 4, 5, 6, 7, 8) + " cat")

        XCTAssertEqual(kinds(output), [.missingLabel])
        XCTAssertEqual(output.objects.first?.bins, LocBins(yMin: 5, xMin: 6, yMax: 7, xMax: 8))
    }

    func testMaxBelowMinIsInverted() {
        let yInverted = parser.parse(locs(300, 200, 100, 400) + " cat")
        let xInverted = parser.parse(locs(100, 400, 300, 200) + " cat")
        let degenerate = parser.parse(locs(100, 200, 100, 200) + " cat")

        XCTAssertEqual(kinds(yInverted), [.invertedBox])
        XCTAssertEqual(yInverted.objects, [])
        XCTAssertEqual(kinds(xInverted), [.invertedBox])
        XCTAssertEqual(kinds(degenerate), [], "a zero-size box is well-formed")
        XCTAssertEqual(degenerate.objects.count, 1)
    }

    func testUnknownLabel() {
        let output = parser.parse(locs(1, 2, 3, 4) + " bird ; " + locs(1, 2, 3, 4) + " cat")

        XCTAssertEqual(kinds(output), [.unknownLabel])
        XCTAssertEqual(output.issues.first?.text, "<loc0001><loc0002><loc0003><loc0004> bird")
        XCTAssertEqual(output.objects.map(\.label), ["cat"])

        let anyLabel = DetectionParser(classes: nil).parse(locs(1, 2, 3, 4) + " bird")
        XCTAssertEqual(anyLabel.objects.map(\.label), ["bird"])
        XCTAssertEqual(anyLabel.issues, [])
    }

    func testGarbage() {
        let prose = parser.parse("I see a cat")
        XCTAssertEqual(kinds(prose), [.unexpectedText])
        XCTAssertEqual(prose.objects, [])
        XCTAssertEqual(prose.partCount, 1)

        // <loc2000> is out of range, so it is text and leaves only three locs for "dog".
        let badTokens = parser.parse("<loc12> cat ; <loc2000><loc0001><loc0002><loc0003> dog")
        XCTAssertEqual(kinds(badTokens), [.unexpectedText, .unexpectedText, .tooFewLocs])

        let binary = parser.parse("\u{0}\u{1}<<<>>>;;")
        XCTAssertEqual(binary.objects, [])
        XCTAssertTrue(binary.failedToParse)
    }

    func testLeadingTextBeforeObject() {
        let output = parser.parse("detect cat\n" + locs(1, 2, 3, 4) + " cat")

        XCTAssertEqual(kinds(output), [.unexpectedText])
        XCTAssertEqual(output.objects.map(\.label), ["cat"])
    }

    func testSegmentationTokensKeepTheBox() {
        let segs = (0..<16).map { String(format: "<seg%03d>", $0 * 7) }.joined()
        let output = parser.parse(locs(1, 2, 3, 4) + segs + " cat ; " + locs(5, 6, 7, 8) + " dog")

        XCTAssertEqual(kinds(output), [.segmentationTokens], "counted once per object")
        XCTAssertEqual(output.objects.map(\.label), ["cat", "dog"])
        XCTAssertEqual(output.objects.first?.bins, LocBins(yMin: 1, xMin: 2, yMax: 3, xMax: 4))
    }

    func testExtraSpaces() {
        let output = parser.parse("   " + locs(1, 2, 3, 4) + "   traffic \t  light   ;" + locs(5, 6, 7, 8) + "dog  \n")

        XCTAssertEqual(output.issues, [])
        XCTAssertEqual(output.objects.map(\.label), ["traffic light", "dog"])
    }

    func testMissingSeparatorStillParses() {
        let output = parser.parse(locs(1, 2, 3, 4) + " cat " + locs(5, 6, 7, 8) + " dog")

        XCTAssertEqual(output.objects.map(\.label), ["cat", "dog"])
        XCTAssertEqual(output.issues, [])
        XCTAssertEqual(output.partCount, 1)
    }

    func testEmptyOutputHasNoIssues() {
        for text in ["", "  ", "\n"] {
            let output = parser.parse(text)
            XCTAssertEqual(output.objects, [], "'\(text)'")
            XCTAssertEqual(output.issues, [], "'\(text)'")
            XCTAssertEqual(output.partCount, 0, "'\(text)'")
        }
    }

    func testStraySeparators() {
        let trailing = parser.parse(locs(1, 2, 3, 4) + " cat ; ")
        XCTAssertEqual(kinds(trailing), [.unexpectedText])
        XCTAssertEqual(trailing.objects.count, 1)
        XCTAssertEqual(trailing.partCount, 1)

        let doubled = parser.parse(locs(1, 2, 3, 4) + " cat ; ; " + locs(1, 2, 3, 4) + " dog")
        XCTAssertEqual(kinds(doubled), [.unexpectedText])
        XCTAssertEqual(doubled.objects.map(\.part), [0, 1], "empty parts do not take an index")
    }

    func testGroundTruthIsStrict() throws {
        let objects = try parser.parseGroundTruth(locs(1, 2, 3, 4) + " cat ; " + locs(5, 6, 7, 8) + " dog")
        XCTAssertEqual(objects.map(\.label), ["cat", "dog"])
        XCTAssertEqual(try parser.parseGroundTruth(""), [])

        for bad in [locs(1, 2, 3) + " cat", locs(1, 2, 3, 4), locs(3, 2, 1, 4) + " cat", locs(1, 2, 3, 4) + " bird", "cat"] {
            XCTAssertThrowsError(try parser.parseGroundTruth(bad), "'\(bad)'") { error in
                XCTAssertTrue("\(error)".hasPrefix("malformed ground truth: "), "\(error)")
            }
        }
    }

    func testPromptClasses() {
        XCTAssertEqual(DetectionPrompt.classes(fromPrefix: "detect cat ; dog ; traffic light"), ["cat", "dog", "traffic light"])
        XCTAssertEqual(DetectionPrompt.classes(fromPrefix: "  detect  cat;dog ; cat \n"), ["cat", "dog"])
        XCTAssertNil(DetectionPrompt.classes(fromPrefix: "caption en"))
        XCTAssertNil(DetectionPrompt.classes(fromPrefix: "detect"))
        XCTAssertNil(DetectionPrompt.classes(fromPrefix: "detect ; "))
    }

    func testBinsToPixels() {
        let box = LocBins(yMin: 0, xMin: 1023, yMax: 1023, xMax: 1023).pixelBox(width: 640, height: 480)
        XCTAssertEqual(box, PixelBox(xMin: 640, yMin: 0, xMax: 640, yMax: 480))

        let middle = LocBins(yMin: 341, xMin: 682, yMax: 512, xMax: 1000).pixelBox(width: 1023, height: 2046)
        XCTAssertEqual(middle.yMin, 682, accuracy: 1e-9)
        XCTAssertEqual(middle.xMin, 682, accuracy: 1e-9)
        XCTAssertEqual(middle.yMax, 1024, accuracy: 1e-9)
        XCTAssertEqual(middle.xMax, 1000, accuracy: 1e-9)
    }

    func testNonASCIILabels() {
        let output = DetectionParser(classes: ["café", "日本 猫"]).parse(locs(1, 2, 3, 4) + " café ; " + locs(5, 6, 7, 8) + " 日本  猫")

        XCTAssertEqual(output.issues, [])
        XCTAssertEqual(output.objects.map(\.label), ["café", "日本 猫"])
    }

    func testRandomOutputKeepsInvariants() {
        // Splices of well-formed and broken fragments: the parser must return, and what it
        // keeps must be valid.
        let fragments = ["<loc0001>", "<loc0512>", "<loc1023>", "<loc", ">", "<loc99>", ";", " ; ", " cat", "dog", " bird",
                         "<seg042>", "<seg", " ", "\n", "é", "\u{0}", "<", "traffic light"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0...24, using: &generator)
            let text = (0..<count).map { _ in fragments.randomElement(using: &generator) ?? "" }.joined()
            let output = parser.parse(text)

            for object in output.objects {
                XCTAssertTrue(["cat", "dog", "traffic light"].contains(object.label), text)
                XCTAssertLessThanOrEqual(object.bins.yMin, object.bins.yMax, text)
                XCTAssertLessThanOrEqual(object.bins.xMin, object.bins.xMax, text)
                XCTAssertLessThan(object.part, output.partCount, text)
            }
            let withoutSpace = text.filter { !$0.isWhitespace }
            if withoutSpace.isEmpty {
                XCTAssertEqual(output.issues, [], text)
            } else {
                XCTAssertFalse(output.objects.isEmpty && output.issues.isEmpty, "non-blank output yields objects or issues: \(text)")
            }
        }
    }
}
