# The --signal jobs of scripts/slurm-check: submit cluster/slurm.sbatch with a stand-in
# for palitrain and check that SIGTERM sent to the batch shell reaches every rank, and
# that the ranks get time to finish (a real run writes a checkpoint then).

# Seconds the stand-in spends between SIGTERM and exit, like a checkpoint write. It is
# longer than the 1 s that Open MPI 4.1's mpirun waits between SIGTERM and SIGKILL.
stand_in_grace_seconds=5
# Lines each rank prints after SIGTERM, about 85 KB: more than the 64 KiB that a Linux pipe
# or pseudo-terminal buffers, so a launcher that stops reading the ranks' output blocks them.
stand_in_stop_lines=1300

# Writes an executable stand-in for palitrain into `folder`. Each rank records its
# arguments and launcher and creates started.RANK. On SIGTERM it prints
# stand_in_stop_lines lines ending with "rank R stopped", sleeps the grace period, creates
# terminated.RANK and exits 0. Without SIGTERM it exits 3 after 10 minutes.
write_stand_in() {
    local folder=$1
    cat > "$folder/palitrain" <<EOF
#!/usr/bin/env bash
# mpirun sets OMPI_COMM_WORLD_RANK; ranks started by srun only have SLURM_PROCID.
if [ -n "\${OMPI_COMM_WORLD_RANK:-}" ]; then
    rank=\$OMPI_COMM_WORLD_RANK launcher=mpirun
else
    rank=\${SLURM_PROCID:-unknown} launcher=srun
fi
stop() {
    for ((line = 1; line < $stand_in_stop_lines; line++)); do
        echo "rank \$rank stopping: line \$line of $stand_in_stop_lines, as long as a training log line"
    done
    echo "rank \$rank stopped"
    sleep $stand_in_grace_seconds
    date +%s > "$folder/terminated.\$rank"
    exit 0
}
trap stop TERM
printf '%s\n' "\$@" > "$folder/arguments.\$rank"
echo "\$launcher" > "$folder/launcher.\$rank"
date +%s > "$folder/started.\$rank"
for ((second = 0; second < 600; second++)); do
    sleep 1 &
    wait \$!
done
exit 3
EOF
    chmod +x "$folder/palitrain"
}

both_ranks_started() {
    [ -f "$1/started.0" ] && [ -f "$1/started.1" ]
}

# Prints the launcher recorded by both ranks, or "mixed" when they differ.
recorded_launcher() {
    local folder=$1 first second
    first=$(cat "$folder/launcher.0" 2>/dev/null || echo none)
    second=$(cat "$folder/launcher.1" 2>/dev/null || echo none)
    if [ "$first" = "$second" ]; then echo "$first"; else echo mixed; fi
}

# Submits cluster/slurm.sbatch on 1 node with 2 ranks, with the stand-in as PALITRAIN.
# Extra sbatch options come first. Prints the job id.
submit_sbatch_with_stand_in() {
    local folder=$1 launcher=$2
    shift 2
    (
        export PALITRAIN=$folder/palitrain LAUNCHER=$launcher
        export DATA=$folder/data CHECKPOINT=$folder/weights.npz TOKENIZER=$folder/tokenizer.model
        export OUTPUT_DIR=$folder/output
        sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 \
            --output="$folder/job-%j.out" --chdir="$repo_root" "$@" \
            "$repo_root/cluster/slurm.sbatch" --max-steps 3
    )
}

# Checks that a rank's stand-in got the arguments that cluster/slurm.sbatch builds,
# followed by the extra arguments of the sbatch command line.
arguments_are_forwarded() {
    local arguments
    arguments=$(tr '\n' ' ' < "$1") || return 1
    [[ "$arguments" == "train --data "*" --resume auto --max-steps 3 " ]]
}

# Checks what the batch shell and the stand-in recorded after a SIGTERM, and how the job
# ended. `expected_result` is "STATE EXITCODE" as wait_for_job prints it.
check_stand_in_records() {
    local folder=$1 launcher=$2 output=$3 result=$4 expected_result=$5 failed=0 rank
    check "the batch shell trapped SIGTERM and forwarded it with LAUNCHER=$launcher" \
        grep -qxF "slurm.sbatch: got SIGTERM; forwarding it to the ranks (LAUNCHER=$launcher)" "$output" || failed=1
    check "both ranks were started by $launcher (recorded: $(recorded_launcher "$folder"))" \
        [ "$(recorded_launcher "$folder")" = "$launcher" ] || failed=1
    for rank in 0 1; do
        check "rank $rank received the arguments 'train --data ... --resume auto --max-steps 3'" \
            arguments_are_forwarded "$folder/arguments.$rank" || failed=1
        check "rank $rank got SIGTERM and exited after its ${stand_in_grace_seconds}s grace period" \
            [ -f "$folder/terminated.$rank" ] || failed=1
        check "rank $rank printed $stand_in_stop_lines lines after SIGTERM into the job output" \
            grep -qxF "rank $rank stopped" "$output" || failed=1
    done
    check "the job ended $expected_result (got: $result)" [ "$result" = "$expected_result" ] || failed=1
    if [ -f "$folder/started.0" ] && [ -f "$folder/terminated.0" ]; then
        echo "    INFO SIGTERM reached rank 0 about $(($(cat "$folder/terminated.0") - $(cat "$folder/started.0") - stand_in_grace_seconds)) s after it started"
    fi
    return "$failed"
}

# Starts cluster/slurm.sbatch with `launcher`, sends SIGTERM to the batch shell only
# (`scancel --signal=TERM --batch`) once both ranks run, and checks the ranks' records.
check_scancel_term() {
    local launcher=$1 folder job_id result
    folder=$workdir/jobs/signal-$launcher
    log "--signal: scancel --signal=TERM --batch on cluster/slurm.sbatch with LAUNCHER=$launcher"
    mkdir -p "$folder"
    write_stand_in "$folder"

    job_id=$(submit_sbatch_with_stand_in "$folder" "$launcher" --time=5) ||
        { echo "    FAIL sbatch rejected cluster/slurm.sbatch"; return 1; }
    log "submitted job $job_id"
    if ! wait_until 60 "both ranks of job $job_id to start" both_ranks_started "$folder"; then
        print_job_output "$folder/job-$job_id.out"
        echo "    FAIL the ranks of job $job_id did not start"
        return 1
    fi

    scancel --signal=TERM --batch "$job_id"
    log "sent SIGTERM to the batch shell of job $job_id"
    result=$(wait_for_job "$job_id" "${job_timeout:-300}")
    print_job_output "$folder/job-$job_id.out"

    check_stand_in_records "$folder" "$launcher" "$folder/job-$job_id.out" "$result" "COMPLETED 0:0"
}

# Submits cluster/slurm.sbatch with a 1-minute limit and `--signal=B:TERM@55`, so that
# slurmctld itself sends SIGTERM to the batch shell before the limit, and checks that the
# ranks stopped before Slurm killed the job at the limit.
check_time_limit_warning() {
    local folder=$workdir/jobs/signal-time-limit job_id result
    log "--signal: time-limit warning --signal=B:TERM@55 with a 1-minute limit"
    mkdir -p "$folder"
    write_stand_in "$folder"

    job_id=$(submit_sbatch_with_stand_in "$folder" srun --time=1 --signal=B:TERM@55) ||
        { echo "    FAIL sbatch rejected cluster/slurm.sbatch"; return 1; }
    log "submitted job $job_id; slurmctld checks time limits periodically, so the signal can take up to a minute"
    result=$(wait_for_job "$job_id" "${job_timeout:-300}")
    print_job_output "$folder/job-$job_id.out"
    check_stand_in_records "$folder" srun "$folder/job-$job_id.out" "$result" "COMPLETED 0:0"
}

check_signal_forwarding() {
    local failed=0
    check_scancel_term srun || failed=1
    check_scancel_term mpirun || failed=1
    check_time_limit_warning || failed=1
    return "$failed"
}
