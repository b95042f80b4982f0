# The --train jobs of scripts/slurm-check: submit cluster/slurm.sbatch with the real
# palitrain, check that it trains and writes OUTPUT_DIR/checkpoints/latest, then submit it
# again and check that the second job resumes from that checkpoint.

# Checks that `palitrain train --help` works and lists the options cluster/slurm.sbatch
# passes. A build without the train command may still exit 0 on it.
train_command_works() {
    local palitrain=$1 help option
    if ! help=$("$palitrain" train --help 2>&1); then
        echo "    FAIL '$palitrain train --help' exited non-zero; this build has no working train command. Its output:"
        sed 's/^/    | /' <<<"$help" | head -n 5
        return 1
    fi
    for option in --data --checkpoint --tokenizer --output-dir --threads --resume --max-steps; do
        if ! grep -q -- "$option" <<<"$help"; then
            echo "    FAIL '$palitrain train --help' does not list $option; this build has no working train command. Its output:"
            sed 's/^/    | /' <<<"$help" | head -n 5
            return 1
        fi
    done
}

# Writes a small Roboflow PaliGemma export into `folder`: 8 training and 2 validation PNG
# images of 64x64 pixels, each with one red square and the matching "detect square"
# annotation in PaliGemma's <locYYYY> format (coordinates scaled to 0..1023).
write_tiny_dataset() {
    local folder=$1
    mkdir -p "$folder"
    python3 - "$folder" <<'EOF'
import json, random, struct, sys, zlib
from pathlib import Path

folder = Path(sys.argv[1])
size = 64

def png_bytes(pixels):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\x00" + bytes(row) for row in pixels)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")

def location(value):
    return "<loc%04d>" % round(value / size * 1023)

rng = random.Random(0)
for split, count in (("train", 8), ("valid", 2)):
    lines = []
    for index in range(count):
        side = rng.randint(12, 32)
        top, left = rng.randint(0, size - side), rng.randint(0, size - side)
        pixels = [[value for x in range(size)
                   for value in ((220, 30, 30) if top <= y < top + side and left <= x < left + side else (240, 240, 240))]
                  for y in range(size)]
        name = "%s_%02d.png" % (split, index)
        (folder / name).write_bytes(png_bytes(pixels))
        suffix = "".join(location(v) for v in (top, left, top + side, left + side)) + " square"
        lines.append(json.dumps({"image": name, "prefix": "detect square", "suffix": suffix}))
    (folder / ("_annotations.%s.jsonl" % split)).write_text("\n".join(lines) + "\n")
EOF
}

# Prints the step that OUTPUT_DIR/checkpoints/latest names, after checking that its folder
# is complete (has the COMPLETE marker and params.npz); prints nothing otherwise.
latest_complete_step() {
    local checkpoints=$1/checkpoints folder
    [ -f "$checkpoints/latest" ] || return 0
    folder=$(tr -d '[:space:]' < "$checkpoints/latest")
    [[ "$folder" =~ ^step_[0-9]{8}$ ]] || return 0
    [ -f "$checkpoints/$folder/COMPLETE" ] && [ -f "$checkpoints/$folder/params.npz" ] || return 0
    echo $((10#${folder#step_}))
}

latest_is_step() {
    [ -n "$2" ] && [ "$(latest_complete_step "$1")" = "$2" ]
}

# Prints the steps of the `train/loss` lines of OUTPUT_DIR/metrics.jsonl in file order,
# with "nonfinite" after a step whose loss is null (metrics.jsonl writes NaN and inf so).
logged_training_steps() {
    python3 - "$1/metrics.jsonl" <<'EOF'
import json, sys
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    sys.exit(0)
for line in lines:
    record = json.loads(line)
    if "train/loss" in record:
        print(record["step"], end=" " if record["train/loss"] is not None else " nonfinite ")
EOF
}

# Submits cluster/slurm.sbatch with the real palitrain on 1 node with 2 ranks. Arguments
# after `max_steps` go to palitrain. Prints the job id.
submit_training_job() {
    local folder=$1 max_steps=$2
    shift 2
    (
        export PALITRAIN DATA CHECKPOINT TOKENIZER OUTPUT_DIR
        sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 \
            --time="$(((${job_timeout:-3600} + 59) / 60))" \
            --output="$folder/train-%j.out" --chdir="$repo_root" \
            "$repo_root/cluster/slurm.sbatch" --max-steps "$max_steps" "$@"
    )
}

# Runs a training job to its end and checks its state, the steps it logged and the
# checkpoint it left. `expected_steps` lists the steps metrics.jsonl must hold afterwards.
check_training_run() {
    local folder=$1 max_steps=$2 expected_steps=$3 job_id result failed=0
    shift 3
    job_id=$(submit_training_job "$folder" "$max_steps" "$@") ||
        { echo "    FAIL sbatch rejected cluster/slurm.sbatch"; return 1; }
    log "submitted training job $job_id (--max-steps $max_steps)"
    result=$(wait_for_job "$job_id" "${job_timeout:-3600}")
    print_job_output "$folder/train-$job_id.out"

    check "job $job_id ended COMPLETED 0:0 (got: $result)" [ "$result" = "COMPLETED 0:0" ] || failed=1
    check "metrics.jsonl logged finite losses for steps $expected_steps (got: $(logged_training_steps "$OUTPUT_DIR"))" \
        [ "$(logged_training_steps "$OUTPUT_DIR")" = "$expected_steps " ] || failed=1
    check "OUTPUT_DIR/checkpoints/latest names the complete folder of step $max_steps" \
        latest_is_step "$OUTPUT_DIR" "$max_steps" || failed=1
    return "$failed"
}

step_is_between() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

metrics_has_step() {
    grep -q "\"step\": $2," "$1/metrics.jsonl"
}

# Starts a long training job, sends SIGTERM to its batch shell once step `after_step` is
# logged, and checks that palitrain stopped early, wrote a checkpoint of its last step and
# exited 0.
check_training_stop_signal() {
    local folder=$1 after_step=$2 job_id result failed=0 stop_step last_logged
    shift 2
    job_id=$(submit_training_job "$folder" 100000 "$@") ||
        { echo "    FAIL sbatch rejected cluster/slurm.sbatch"; return 1; }
    log "submitted training job $job_id (--max-steps 100000), to be stopped by SIGTERM"
    if ! wait_until "${job_timeout:-3600}" "step $after_step in metrics.jsonl" metrics_has_step "$OUTPUT_DIR" "$after_step"; then
        print_job_output "$folder/train-$job_id.out"
        echo "    FAIL job $job_id did not reach step $after_step"
        return 1
    fi
    scancel --signal=TERM --batch "$job_id"
    log "sent SIGTERM to the batch shell of job $job_id"
    result=$(wait_for_job "$job_id" "${job_timeout:-3600}")
    print_job_output "$folder/train-$job_id.out"

    # The log wording is palitrain's own, so the checks read the files the run left.
    stop_step=$(latest_complete_step "$OUTPUT_DIR")
    last_logged=$(logged_training_steps "$OUTPUT_DIR" | awk '{ print $NF }')
    check "job $job_id ended COMPLETED 0:0 (got: $result)" [ "$result" = "COMPLETED 0:0" ] || failed=1
    check "the run stopped early, at step ${stop_step:-none} of 100000, after step $after_step" \
        step_is_between "$stop_step" "$after_step" 99999 || failed=1
    check "checkpoints/latest is the last logged step (logged: ${last_logged:-none})" \
        [ "${stop_step:-none}" = "${last_logged:-missing}" ] || failed=1
    grep -i 'stop' "$folder/train-$job_id.out" | grep -v '^slurmstepd' | sed 's/^/    INFO palitrain: /'
    return "$failed"
}

check_training_job() {
    local folder=$workdir/jobs/train palitrain_args=()
    log "--train: cluster/slurm.sbatch with the real palitrain: 3 steps, 1 more after a resume, then a SIGTERM stop"
    mkdir -p "$folder"

    PALITRAIN=${PALITRAIN:-$repo_root/.build/release/palitrain}
    if [ ! -x "$PALITRAIN" ]; then
        echo "    FAIL palitrain not found at $PALITRAIN; build it with 'swift build -c release --product palitrain' or set PALITRAIN"
        return 1
    fi
    train_command_works "$PALITRAIN" || return 1

    # Inputs not given in the environment are made here: the test tokenizer of the
    # repository, a tiny model sized to it, and a dataset of red squares.
    TOKENIZER=${TOKENIZER:-$repo_root/Tests/Fixtures/dataset/tokenizer/test-tokenizer.model}
    if [ ! -f "$TOKENIZER" ]; then
        echo "    FAIL tokenizer $TOKENIZER not found; set TOKENIZER to a sentencepiece .model file"
        return 1
    fi
    if [ -z "${CHECKPOINT:-}" ]; then
        CHECKPOINT=$folder/tiny.npz
        if ! "$PALITRAIN" init --variant tiny --tokenizer "$TOKENIZER" --out "$CHECKPOINT"; then
            echo "    FAIL 'palitrain init --variant tiny' could not write $CHECKPOINT"
            return 1
        fi
    fi
    if [ -z "${DATA:-}" ]; then
        DATA=$folder/dataset
        write_tiny_dataset "$DATA" || { echo "    FAIL could not write the tiny dataset to $DATA"; return 1; }
        palitrain_args=(--batch-size 2 --max-new-tokens 8)
    fi
    OUTPUT_DIR=${OUTPUT_DIR:-$folder/output}
    if [ -e "$OUTPUT_DIR/checkpoints" ] || [ -e "$OUTPUT_DIR/metrics.jsonl" ]; then
        echo "    FAIL $OUTPUT_DIR already contains a run; the resume checks need an empty OUTPUT_DIR"
        return 1
    fi
    palitrain_args+=("${extra_train_args[@]}")

    # --max-steps is the total step count of the run, so the resumed job trains step 4 only
    # and metrics.jsonl lists each step once.
    check_training_run "$folder" 3 "1 2 3" "${palitrain_args[@]}" || return 1
    check_training_run "$folder" 4 "1 2 3 4" "${palitrain_args[@]}" || return 1
    check_training_stop_signal "$folder" 6 "${palitrain_args[@]}"
}
