@testable import PaliGemmaModel
import TensorCore
import XCTest

/// Finite-difference checks of every layer's backward pass on tiny shapes.
final class LayerGradientTests: XCTestCase {
    var random = TestRandom(seed: 11)

    func testDense() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 4])],
            parameters: ["kernel": random.tensor([4, 5]), "bias": random.tensor([5])]
        ) { inputs, p, dy, g in
            let parameters = Dense.Parameters(kernel: p["kernel"]!, bias: p["bias"]!)
            let (y, cache) = Dense.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            let dx = Dense.backward(dy, cache, parameters, Dense.Gradients(kernel: g["kernel"], bias: g["bias"]))
            return (y, ["x": dx])
        }
        gradientCheck("Dense", testCase)
    }

    func testLayerNorm() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 6], scale: 2)],
            parameters: ["scale": random.tensor([6], offset: 1), "bias": random.tensor([6])]
        ) { inputs, p, dy, g in
            let parameters = LayerNorm.Parameters(scale: p["scale"]!, bias: p["bias"]!)
            let (y, cache) = LayerNorm.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            let dx = LayerNorm.backward(dy, cache, parameters, LayerNorm.Gradients(scale: g["scale"], bias: g["bias"]))
            return (y, ["x": dx])
        }
        gradientCheck("LayerNorm", testCase)
    }

    func testRMSNorm() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 6], scale: 2)],
            parameters: ["scale": random.tensor([6], scale: 0.5)]
        ) { inputs, p, dy, g in
            let parameters = RMSNorm.Parameters(scale: p["scale"]!)
            let (y, cache) = RMSNorm.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            return (y, ["x": RMSNorm.backward(dy, cache, parameters, RMSNorm.Gradients(scale: g["scale"]))])
        }
        gradientCheck("RMSNorm", testCase)
    }

    func testPatchEmbedding() {
        let images = random.tensor([2, 6, 4, 3])  // a 3x2 grid of 2x2 patches; images get no gradient
        let testCase = GradCheckCase(
            inputs: [:],
            parameters: ["kernel": random.tensor([2, 2, 3, 5]), "bias": random.tensor([5])]
        ) { _, p, dy, g in
            let parameters = PatchEmbedding.Parameters(kernel: p["kernel"]!, bias: p["bias"]!)
            let (y, cache) = PatchEmbedding.forward(images, parameters, keepPatches: true)
            if let dy { PatchEmbedding.backward(dy, cache, PatchEmbedding.Gradients(kernel: g["kernel"], bias: g["bias"])) }
            return (y, [:])
        }
        gradientCheck("PatchEmbedding", testCase)
    }

    func testPatchEmbeddingMatchesDirectConvolution() {
        let images = random.tensor([1, 4, 4, 3])
        let kernel = random.tensor([2, 2, 3, 2])
        let (y, _) = PatchEmbedding.forward(images, .init(kernel: kernel, bias: Tensor(zeros: [2])), keepPatches: false)
        XCTAssertEqual(y.shape, [1, 4, 2])
        // Token 3 is grid row 1, column 1: pixels rows 2-3, columns 2-3.
        for out in 0..<2 {
            var expected: Float = 0
            for r in 0..<2 {
                for c in 0..<2 {
                    for channel in 0..<3 {
                        let pixel = images[flat: ((2 + r) * 4 + (2 + c)) * 3 + channel]
                        expected += pixel * kernel[flat: ((r * 2 + c) * 3 + channel) * 2 + out]
                    }
                }
            }
            XCTAssertEqual(y[flat: 3 * 2 + out], expected, accuracy: 1e-5)
        }
    }

    func testPositionEmbedding() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 4])],
            parameters: ["embedding": random.tensor([1, 3, 4])]
        ) { inputs, p, dy, g in
            let parameters = PositionEmbedding.Parameters(embedding: p["embedding"]!)
            let y = PositionEmbedding.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            return (y, ["x": PositionEmbedding.backward(dy, PositionEmbedding.Gradients(embedding: g["embedding"]))])
        }
        gradientCheck("PositionEmbedding", testCase)
    }

    private func visionAttentionParameters(width: Int, heads: Int, headDim: Int) -> [String: Tensor] {
        [
            "queryKernel": random.tensor([width, heads, headDim]), "queryBias": random.tensor([heads, headDim]),
            "keyKernel": random.tensor([width, heads, headDim]), "keyBias": random.tensor([heads, headDim]),
            "valueKernel": random.tensor([width, heads, headDim]), "valueBias": random.tensor([heads, headDim]),
            "outKernel": random.tensor([heads, headDim, width]), "outBias": random.tensor([width]),
        ]
    }

    private static func visionAttention(_ p: [String: Tensor]) -> VisionAttention.Parameters {
        VisionAttention.Parameters(
            queryKernel: p["queryKernel"]!, queryBias: p["queryBias"]!, keyKernel: p["keyKernel"]!, keyBias: p["keyBias"]!,
            valueKernel: p["valueKernel"]!, valueBias: p["valueBias"]!, outKernel: p["outKernel"]!, outBias: p["outBias"]!)
    }

    private static func visionAttentionGradients(_ g: [String: GradientSlice]) -> VisionAttention.Gradients {
        VisionAttention.Gradients(
            query: Dense.Gradients(kernel: g["queryKernel"], bias: g["queryBias"]),
            key: Dense.Gradients(kernel: g["keyKernel"], bias: g["keyBias"]),
            value: Dense.Gradients(kernel: g["valueKernel"], bias: g["valueBias"]),
            out: Dense.Gradients(kernel: g["outKernel"], bias: g["outBias"]))
    }

    func testVisionAttention() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 4])],
            parameters: visionAttentionParameters(width: 4, heads: 2, headDim: 3)
        ) { inputs, p, dy, g in
            let parameters = Self.visionAttention(p)
            let (y, cache) = VisionAttention.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            return (y, ["x": VisionAttention.backward(dy, cache, parameters, Self.visionAttentionGradients(g))])
        }
        // Adding a constant to every key shifts each score row by a constant: no gradient.
        gradientCheck("VisionAttention", testCase, mathematicallyZero: ["keyBias"])
    }

    func testVisionMLP() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 4])],
            parameters: ["k0": random.tensor([4, 6]), "b0": random.tensor([6]), "k1": random.tensor([6, 4]), "b1": random.tensor([4])]
        ) { inputs, p, dy, g in
            let parameters = VisionMLP.Parameters(
                dense0: .init(kernel: p["k0"]!, bias: p["b0"]!), dense1: .init(kernel: p["k1"]!, bias: p["b1"]!))
            let (y, cache) = VisionMLP.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            let gradients = VisionMLP.Gradients(
                dense0: .init(kernel: g["k0"], bias: g["b0"]), dense1: .init(kernel: g["k1"], bias: g["b1"]))
            return (y, ["x": VisionMLP.backward(dy, cache, parameters, gradients)])
        }
        gradientCheck("VisionMLP", testCase)
    }

    func testEncoderBlock() {
        var parameters = visionAttentionParameters(width: 4, heads: 2, headDim: 2)
        parameters["ln0Scale"] = random.tensor([4], offset: 1)
        parameters["ln0Bias"] = random.tensor([4])
        parameters["ln1Scale"] = random.tensor([4], offset: 1)
        parameters["ln1Bias"] = random.tensor([4])
        parameters["k0"] = random.tensor([4, 5])
        parameters["b0"] = random.tensor([5])
        parameters["k1"] = random.tensor([5, 4])
        parameters["b1"] = random.tensor([4])
        let testCase = GradCheckCase(inputs: ["x": random.tensor([2, 3, 4])], parameters: parameters) { inputs, p, dy, g in
            let block = EncoderBlock.Parameters(
                layerNorm0: .init(scale: p["ln0Scale"]!, bias: p["ln0Bias"]!),
                attention: Self.visionAttention(p),
                layerNorm1: .init(scale: p["ln1Scale"]!, bias: p["ln1Bias"]!),
                mlp: .init(dense0: .init(kernel: p["k0"]!, bias: p["b0"]!), dense1: .init(kernel: p["k1"]!, bias: p["b1"]!)))
            let (y, cache) = EncoderBlock.forward(inputs["x"]!, block)
            guard let dy else { return (y, [:]) }
            let gradients = EncoderBlock.Gradients(
                layerNorm0: .init(scale: g["ln0Scale"], bias: g["ln0Bias"]),
                attention: Self.visionAttentionGradients(g),
                layerNorm1: .init(scale: g["ln1Scale"], bias: g["ln1Bias"]),
                mlp: .init(dense0: .init(kernel: g["k0"], bias: g["b0"]), dense1: .init(kernel: g["k1"], bias: g["b1"])))
            return (y, ["x": EncoderBlock.backward(dy, cache, block, gradients)])
        }
        gradientCheck("EncoderBlock", testCase, mathematicallyZero: ["keyBias"])
    }

    func testTokenEmbedding() {
        let ids: [Int32] = [3, 0, 3, 5]
        let testCase = GradCheckCase(inputs: [:], parameters: ["table": random.tensor([6, 4])]) { _, p, dy, g in
            let y = TokenEmbedding.forward(ids: ids, .float(p["table"]!))
            if let dy { TokenEmbedding.backward(dy, ids: ids, width: 4, TokenEmbedding.Gradients(table: g["table"])) }
            return (y, [:])
        }
        gradientCheck("TokenEmbedding", testCase)
    }

    func testTokenEmbeddingRoundsInStoredDType() {
        let table = Tensor(shape: [1, 2048], values: (0..<2048).map { Float($0) / 1000 + 0.001 })
        for dtype in [DType.f16, .bf16] {
            let stored = StoredArray(table, dtype: dtype)
            let y = TokenEmbedding.forward(ids: [0], .stored(stored))
            let widened = stored.toTensor()
            for j in [0, 1, 777, 2047] {
                // The factor is √2048 cast to the table dtype (45.25), and the product is rounded too.
                let expected = Kernels.roundToDType(widened[flat: j] * 45.25, dtype)
                XCTAssertEqual(y[flat: j], expected, "\(dtype) column \(j)")
            }
        }
        let exact = TokenEmbedding.forward(ids: [0], .float(table))
        XCTAssertEqual(exact[flat: 5], table[flat: 5] * Float(2048).squareRoot())
    }

    private func gemmaContext(batch: Int, length: Int, headDim: Int) -> GemmaAttention.Context {
        // Two prefix tokens then causal tokens; example 1 has its last position marked invalid.
        var maskAR: [Int32] = []
        var valid: [Bool] = []
        for b in 0..<batch {
            for position in 0..<length {
                maskAR.append(position < 2 ? 0 : 1)
                valid.append(!(b == 1 && position == length - 1))
            }
        }
        let mask = PrefixLMMask.make(maskAR: maskAR, valid: valid, batch: batch, length: length)
        let positions = (0..<batch).flatMap { _ in (0..<length).map { Int32($0 + 3) } }
        return GemmaAttention.Context(rotary: RotaryTable(positions: positions, headDim: headDim), mask: mask)
    }

    func testGemmaAttention() {
        for kvHeads in [1, 2] {
            let (width, heads, headDim) = (6, 2, 4)
            let context = gemmaContext(batch: 2, length: 4, headDim: headDim)
            let testCase = GradCheckCase(
                inputs: ["x": random.tensor([2, 4, width])],
                parameters: [
                    "query": random.tensor([heads, width, headDim]),
                    "keyValue": random.tensor([2, kvHeads, width, headDim]),
                    "output": random.tensor([heads, headDim, width]),
                ]
            ) { inputs, p, dy, g in
                let parameters = GemmaAttention.Parameters(query: p["query"]!, keyValue: p["keyValue"]!, output: p["output"]!)
                let (y, cache) = GemmaAttention.forward(inputs["x"]!, parameters, context)
                guard let dy else { return (y, [:]) }
                let gradients = GemmaAttention.Gradients(query: g["query"], keyValue: g["keyValue"], output: g["output"])
                return (y, ["x": GemmaAttention.backward(dy, cache, parameters, gradients, context)])
            }
            gradientCheck("GemmaAttention K=\(kvHeads)", testCase)
        }
    }

    func testGatedMLP() {
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, 4])],
            parameters: ["gating": random.tensor([2, 4, 6]), "linear": random.tensor([6, 4])]
        ) { inputs, p, dy, g in
            let parameters = GatedMLP.Parameters(gating: p["gating"]!, linear: p["linear"]!)
            let (y, cache) = GatedMLP.forward(inputs["x"]!, parameters)
            guard let dy else { return (y, [:]) }
            return (y, ["x": GatedMLP.backward(dy, cache, parameters, GatedMLP.Gradients(gating: g["gating"], linear: g["linear"]))])
        }
        gradientCheck("GatedMLP", testCase)
    }

    func testDecoderBlock() {
        let (width, heads, headDim) = (4, 2, 2)
        let context = gemmaContext(batch: 2, length: 3, headDim: headDim)
        let testCase = GradCheckCase(
            inputs: ["x": random.tensor([2, 3, width])],
            parameters: [
                "norm0": random.tensor([width], scale: 0.5), "norm1": random.tensor([width], scale: 0.5),
                "query": random.tensor([heads, width, headDim]), "keyValue": random.tensor([2, 1, width, headDim]),
                "output": random.tensor([heads, headDim, width]),
                "gating": random.tensor([2, width, 5]), "linear": random.tensor([5, width]),
            ]
        ) { inputs, p, dy, g in
            let block = DecoderBlock.Parameters(
                preAttentionNorm: .init(scale: p["norm0"]!),
                attention: .init(query: p["query"]!, keyValue: p["keyValue"]!, output: p["output"]!),
                preFFWNorm: .init(scale: p["norm1"]!),
                mlp: .init(gating: p["gating"]!, linear: p["linear"]!))
            let (y, cache) = DecoderBlock.forward(inputs["x"]!, block, context)
            guard let dy else { return (y, [:]) }
            let gradients = DecoderBlock.Gradients(
                preAttentionNorm: .init(scale: g["norm0"]),
                attention: .init(query: g["query"], keyValue: g["keyValue"], output: g["output"]),
                preFFWNorm: .init(scale: g["norm1"]),
                mlp: .init(gating: g["gating"], linear: g["linear"]))
            return (y, ["x": DecoderBlock.backward(dy, cache, block, gradients, context)])
        }
        gradientCheck("DecoderBlock", testCase)
    }

    func testTiedLogitsInOneChunkAndMany() {
        for chunk in [7, 3] {
            let testCase = GradCheckCase(inputs: ["x": random.tensor([3, 4])], parameters: ["table": random.tensor([7, 4])]) {
                inputs, p, dy, g in
                let table = p["table"]!
                let parameters = TiedLogits.Parameters(vocabSize: 7, chunkSize: chunk) { table.rows($0) }
                let y = TiedLogits.forward(inputs["x"]!, parameters)
                guard let dy else { return (y, [:]) }
                return (y, ["x": TiedLogits.backward(dy, x: inputs["x"]!, parameters, TiedLogits.Gradients(table: g["table"]))])
            }
            gradientCheck("TiedLogits chunk \(chunk)", testCase)
        }
    }

    func testCrossEntropyLoss() {
        // Example 0 has two supervised rows, example 1 one; one row is unsupervised.
        let targets = CrossEntropyLoss.Targets(ids: [1, 4, 0, 2], example: [0, 0, 0, 1], mask: [1, 1, 0, 1], batchSize: 2)
        let testCase = GradCheckCase(inputs: ["logits": random.tensor([4, 5], scale: 3)], parameters: [:]) { inputs, _, dy, _ in
            let (output, cache) = CrossEntropyLoss.forward(inputs["logits"]!, targets)
            let y = Tensor(shape: [1], values: [output.loss])
            guard let dy else { return (y, [:]) }
            return (y, ["logits": CrossEntropyLoss.backward(cache, scale: dy[flat: 0])])
        }
        gradientCheck("CrossEntropyLoss", testCase, absolute: 1e-3)
    }

    func testFrozenParametersStillPassInputGradients() {
        let x = random.tensor([2, 3, 4])
        let parameters = GatedMLP.Parameters(gating: random.tensor([2, 4, 6]), linear: random.tensor([6, 4]))
        let dy = random.tensor([2, 3, 4])
        let (_, cache) = GatedMLP.forward(x, parameters)
        let gating = GradientBuffer(zeros: [2, 4, 6])
        let trainable = GatedMLP.backward(dy, cache, parameters, GatedMLP.Gradients(gating: gating.whole, linear: nil))
        let frozen = GatedMLP.backward(dy, cache, parameters, GatedMLP.Gradients(gating: nil, linear: nil))
        XCTAssertEqual(trainable.scalars, frozen.scalars)
        XCTAssertNotEqual(gating.snapshot().scalars.map(abs).max(), 0)
    }
}
