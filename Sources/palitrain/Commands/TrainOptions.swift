import Foundation
import Training

/// The options of `palitrain train` and how they map onto `TrainSettings`.
enum TrainOptions {
    static let specs: [OptionSpec] = [
        .value("config", "FILE.json", help: "read settings from a JSON object whose keys are these option names; flags override it"),
        .value("data", "DIR", help: "dataset folder: a Roboflow PaliGemma export or train/ valid/ folders with annotations.jsonl"),
        .value("train-jsonl", "FILE", help: "training JSONL, instead of --data"),
        .value("valid-jsonl", "FILE", help: "validation JSONL, instead of --data"),
        .value("image-root", "DIR", help: "folder the image paths of --train-jsonl and --valid-jsonl are relative to"),
        .value("checkpoint", "FILE.npz", help: "initial weights in big_vision NPZ layout (f32, f16 or bf16)"),
        .value("tokenizer", "FILE.model", help: "sentencepiece model with the <locNNNN> and <segNNN> pieces"),
        .value("output-dir", "DIR", help: "folder for checkpoints, metrics.jsonl, config.json and report.html"),

        .value("batch-size", "N", default: "8", help: "global batch: examples per optimizer step over all ranks"),
        .value("grad-accum", "N", default: "1", help: "micro-steps per optimizer step on each rank"),
        .value("max-steps", "N", help: "optimizer steps to train; overrides --epochs"),
        .value("epochs", "X", default: "1", help: "passes over the training split (may be fractional)"),

        .value("optimizer", "sgd|adamw", default: "sgd", help: "update rule"),
        .value("lr", "RATE", default: "0.03", help: "peak learning rate", aliases: ["learning-rate", "learning_rate"]),
        .value("momentum", "X", default: "0", help: "SGD momentum (0 is plain SGD)"),
        .value("beta1", "X", default: "0.9", help: "AdamW first-moment decay"),
        .value("beta2", "X", default: "0.999", help: "AdamW second-moment decay"),
        .value("adam-eps", "X", default: "1e-8", help: "AdamW epsilon"),
        .value("weight-decay", "X", default: "0", help: "AdamW decoupled weight decay, multiplied by the learning rate"),
        .value("warmup", "FRACTION", default: "0.1", help: "fraction of the steps with linear warmup before the cosine decay"),
        .value("max-grad-norm", "X", default: "0", help: "clip the global gradient norm to X; 0 turns clipping off"),
        .value("trainable", "REGEX", default: "^llm/layers/attn/", help: "parameters whose big_vision name matches train; the rest stay frozen"),

        .value("seed", "N", default: "0", help: "seed of the data order"),
        .value("max-len", "N", default: "128", help: "model text length L as in big_vision (BOS, prefix, separator, suffix and EOS fill at most L + 1 tokens)"),
        .flag("skip-bad-records", help: "skip invalid records and report them instead of stopping"),
        .value("max-line-bytes", "N", default: "1048576", help: "longest JSONL line in bytes"),
        .value("max-image-pixels", "N", default: "100000000", help: "largest image, width x height, checked from its header"),
        .value("max-image-bytes", "N", default: "268435456", help: "largest image file in bytes"),

        .value("grad-compression", "zstd-fp16|fp16|none", default: "zstd-fp16", help: "encoding of gradients in the all-reduce"),
        .value("on-overflow", "fallback-f32|skip-step", default: "fallback-f32", help: "what an inf or NaN after the fp16 cast triggers"),
        .value("compute", "f32|bf16", default: "f32", help: "precision of the frozen matmuls"),
        .value("vision-cache-mb", "MIB", default: "2048", help: "MiB per machine (shared by its ranks) of vision-encoder outputs kept "
            + "in memory and reused in later epochs while no img/ parameter except img/head/ trains; 0 turns the cache off"),
        .value("vision-cache-dtype", "f16|bf16|f32", default: "f16", help: "storage of the cached vision features (f32 reproduces an uncached run bit for bit)"),
        .value("threads", "N", default: "0", help: "kernel threads per rank; 0 uses the cores available to the rank"),
        .value("check-replicas-every", "N", default: "50", help: "steps between parameter checksum comparisons across ranks; 0 only at checkpoints"),
        .value("comm-timeout", "SECONDS", default: "1800", help: "how long a rank waits for its peers before it stops with an error"),

        .value("eval-every", "N", default: "0", help: "steps between validations on rank 0; 0 validates only at the end"),
        .value("max-new-tokens", "N", default: "64", help: "maximum tokens decoded per validation example"),
        .value("eval-batch-size", "N", default: "8", help: "examples decoded together during validation"),
        .value("gallery-size", "N", default: "12", help: "validation images shown in report.html"),
        .value("save-every", "N", default: "0", help: "steps between checkpoints; 0 saves only at the end"),
        .value("keep-last", "K", default: "3", help: "checkpoints kept besides the best one"),
        .value("resume", "auto|none|PATH", default: "none", help: "auto resumes from OUTPUT/checkpoints/latest when it exists"),
        .value("stop-after", "STEP", help: "stop after this step as on SIGTERM: write a checkpoint and exit 0 (to rehearse preemption)"),
        .value("inject", "FAULT[,FAULT]", help: "for fault-injection tests only, never for training: plant faults such as "
            + "nan-grad:RANK@STEP or die:RANK@STEP in this run (all forms in Docs/reliability.md, section Faults)"),
    ]

    /// Applies a `--config` JSON object under the flags given on the command line.
    static func applyConfigFile(_ path: String, to arguments: inout ParsedArguments) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError("config file '\(path)' not found or not readable")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw UsageError("config file '\(path)' is not valid JSON: \(error.localizedDescription)")
        }
        guard let settings = object as? [String: Any] else {
            throw UsageError("config file '\(path)' must hold one JSON object whose keys are option names, like {\"lr\": 0.01}")
        }

        var known: [String: String] = [:]
        for spec in specs {
            for spelling in spec.spellings { known[spelling] = spec.name }
        }
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            guard let name = known[key], name != "config" else {
                throw UsageError("config file '\(path)': unknown key '\(key)'; keys are the option names of 'palitrain train --help'")
            }
            let text: String
            switch value {
            case let string as String: text = string
            case let number as NSNumber:
                let isBoolean = String(cString: number.objCType) == "c"
                text = isBoolean ? (number.boolValue ? "true" : "false") : number.stringValue
            default:
                throw UsageError("config file '\(path)': key '\(key)' must be a string, number or boolean")
            }
            arguments.setDefault(name, text)
        }
    }

    /// Resolves and checks every setting.
    static func settings(from arguments: ParsedArguments) throws -> TrainSettings {
        var s = TrainSettings()
        s.data = arguments.string("data")
        s.trainJSONL = arguments.string("train-jsonl")
        s.validJSONL = arguments.string("valid-jsonl")
        s.imageRoot = arguments.string("image-root")
        s.checkpoint = try arguments.required("checkpoint")
        s.tokenizer = try arguments.required("tokenizer")
        s.outputDirectory = try arguments.required("output-dir")
        if s.data == nil && s.trainJSONL == nil {
            throw UsageError("missing data: pass --data DIR, or --train-jsonl FILE with --image-root DIR")
        }

        s.globalBatchSize = try positive("batch-size", arguments)
        s.gradientAccumulation = try positive("grad-accum", arguments)
        if arguments.explicit.contains("max-steps") || arguments.string("max-steps") != nil {
            s.maxSteps = try positive("max-steps", arguments)
        }
        s.epochs = try arguments.double("epochs")
        if let epochs = s.epochs, epochs <= 0 {
            throw UsageError("option '--epochs' must be greater than 0, found \(epochs)")
        }

        s.optimizer = try arguments.choice("optimizer", ["sgd", "adamw"])!
        s.learningRate = try nonNegative("lr", arguments)
        s.momentum = try fraction("momentum", arguments)
        s.beta1 = try fraction("beta1", arguments)
        s.beta2 = try fraction("beta2", arguments)
        s.epsilon = try nonNegative("adam-eps", arguments)
        s.weightDecay = try nonNegative("weight-decay", arguments)
        s.warmupFraction = try fraction("warmup", arguments)
        s.maxGradNorm = try nonNegative("max-grad-norm", arguments)
        s.trainable = arguments.string("trainable") ?? s.trainable
        do {
            _ = try Regex(s.trainable)
        } catch {
            throw UsageError("option '--trainable' is not a valid regular expression: '\(s.trainable)' (\(error))")
        }

        guard let seed = UInt64(arguments.string("seed") ?? "0") else {
            throw UsageError("option '--seed' expects a non-negative integer, found '\(arguments.string("seed") ?? "")'")
        }
        s.seed = seed
        s.maxLength = try positive("max-len", arguments)
        s.skipBadRecords = arguments.flag("skip-bad-records")
        s.maxLineBytes = try positive("max-line-bytes", arguments)
        s.maxImagePixels = try positive("max-image-pixels", arguments)
        s.maxImageBytes = try positive("max-image-bytes", arguments)

        s.gradientCompression = try arguments.choice("grad-compression", ["zstd-fp16", "fp16", "none"])!
        s.onOverflow = try arguments.choice("on-overflow", ["fallback-f32", "skip-step"])!
        s.compute = try arguments.choice("compute", ["f32", "bf16"])!
        s.visionCacheMB = try nonNegativeInt("vision-cache-mb", arguments)
        // 16 TiB: far above any machine, and low enough that the byte count cannot overflow.
        guard s.visionCacheMB <= 1 << 24 else {
            throw UsageError("option '--vision-cache-mb' must be at most \(1 << 24) (16 TiB), found \(s.visionCacheMB)")
        }
        s.visionCacheDType = try arguments.choice("vision-cache-dtype", ["f16", "bf16", "f32"])!
        s.threads = try nonNegativeInt("threads", arguments)
        s.checkReplicasEvery = try nonNegativeInt("check-replicas-every", arguments)
        s.commTimeout = try nonNegative("comm-timeout", arguments)

        s.evalEvery = try nonNegativeInt("eval-every", arguments)
        s.maxNewTokens = try positive("max-new-tokens", arguments)
        s.evalBatchSize = try positive("eval-batch-size", arguments)
        s.gallerySize = try nonNegativeInt("gallery-size", arguments)
        s.saveEvery = try nonNegativeInt("save-every", arguments)
        s.keepLast = try positive("keep-last", arguments)
        s.resume = arguments.string("resume") ?? "none"
        if arguments.string("stop-after") != nil {
            s.stopAfter = try positive("stop-after", arguments)
        }
        return s
    }

    /// Parses `--inject` into a plan, or returns nil when the option is absent.
    static func faultPlan(from arguments: ParsedArguments) throws -> FaultPlan? {
        guard let text = arguments.string("inject") else { return nil }
        do {
            return try FaultPlan.parse(text)
        } catch let error as FaultPlanError {
            throw UsageError(error.description)
        }
    }

    private static func positive(_ name: String, _ arguments: ParsedArguments) throws -> Int {
        let value = try arguments.int(name) ?? 0
        guard value > 0 else { throw UsageError("option '--\(name)' must be a positive integer, found \(value)") }
        return value
    }

    private static func nonNegativeInt(_ name: String, _ arguments: ParsedArguments) throws -> Int {
        let value = try arguments.int(name) ?? 0
        guard value >= 0 else { throw UsageError("option '--\(name)' must be 0 or more, found \(value)") }
        return value
    }

    private static func nonNegative(_ name: String, _ arguments: ParsedArguments) throws -> Double {
        let value = try arguments.double(name) ?? 0
        guard value >= 0 else { throw UsageError("option '--\(name)' must be 0 or more, found \(value)") }
        return value
    }

    private static func fraction(_ name: String, _ arguments: ParsedArguments) throws -> Double {
        let value = try arguments.double(name) ?? 0
        guard (0..<1).contains(value) else { throw UsageError("option '--\(name)' must be in [0, 1), found \(value)") }
        return value
    }
}
