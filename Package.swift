// swift-tools-version:6.0
import PackageDescription

// Kernels trade bounds checks for speed. Only TensorCore uses these flags:
// code that parses files or network frames keeps Swift's checks.
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"]),
]

// F16C turns each Float16 <-> Float conversion into one instruction instead of a libcall.
let f16cSettings: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mf16c"])]

let package = Package(
    name: "palitrain",
    products: [
        .executable(name: "palitrain", targets: ["palitrain"]),
    ],
    targets: [
        // MARK: - C libraries from Debian

        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // oneDNN has no pkg-config file; the module map links libdnnl and libgomp by name.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // MARK: - C shims

        // libjpeg and libpng report errors through longjmp; the shim catches them in C.
        .target(name: "CImageShim", dependencies: ["CJPEG", "CPNG"]),
        // sentencepiece is C++; the shim exposes an extern "C" API so no Swift target needs C++ interop.
        .target(
            name: "CSentencePieceShim",
            linkerSettings: [.linkedLibrary("sentencepiece"), .linkedLibrary("sentencepiece_train"), .linkedLibrary("stdc++")]
        ),

        // MARK: - Swift modules

        .target(name: "TensorCore", dependencies: ["COpenBLAS", "CDNNL"], swiftSettings: kernelSettings + f16cSettings),
        .target(name: "Checkpoint", dependencies: ["TensorCore", "CZlib"], swiftSettings: f16cSettings),
        .target(name: "PaliGemmaModel", dependencies: ["TensorCore", "Checkpoint"], swiftSettings: f16cSettings),
        .target(name: "Dataset", dependencies: ["TensorCore", "CImageShim", "CSentencePieceShim"]),
        .target(name: "Comm", dependencies: ["TensorCore", "CMPI", "CZstd"], swiftSettings: f16cSettings),
        .target(name: "Evaluation", dependencies: ["TensorCore", "PaliGemmaModel", "Dataset", "CImageShim"]),
        .target(
            name: "Training",
            dependencies: ["TensorCore", "Checkpoint", "PaliGemmaModel", "Dataset", "Comm", "Evaluation"],
            swiftSettings: f16cSettings
        ),
        .executableTarget(
            name: "palitrain",
            dependencies: ["TensorCore", "Checkpoint", "PaliGemmaModel", "Dataset", "Comm", "Evaluation", "Training"],
            exclude: ["Demo/optdigits-LICENSE.md"],
            resources: [.copy("Demo/optdigits.csv")]
        ),

        // MARK: - Tests

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "TensorCore"]),
        .testTarget(name: "PaliGemmaModelTests", dependencies: ["PaliGemmaModel", "Checkpoint", "TensorCore"]),
        .testTarget(name: "DatasetTests", dependencies: ["Dataset", "TensorCore"]),
        .testTarget(name: "CommTests", dependencies: ["Comm", "TensorCore"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Dataset", "PaliGemmaModel"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Checkpoint", "PaliGemmaModel"]),
    ]
)
