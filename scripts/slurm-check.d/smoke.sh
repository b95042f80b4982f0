# The --smoke job of scripts/slurm-check: proves that sbatch, srun and mpirun work inside
# an allocation of the private cluster, and whether srun can start MPI ranks over PMIx.

# Prints a job's output file, indented, under a header: all of it up to 80 lines, else the
# first and last 40 lines.
print_job_output() {
    local file=$1 lines
    echo "    --- $file"
    if [ ! -f "$file" ]; then
        echo "    (missing)"
        return
    fi
    lines=$(wc -l < "$file")
    if [ "$lines" -le 80 ]; then
        sed 's/^/    | /' "$file"
    else
        head -n 40 "$file" | sed 's/^/    | /'
        echo "    | ... $((lines - 80)) lines left out ..."
        tail -n 40 "$file" | sed 's/^/    | /'
    fi
}

# Prints the lines of `file` between the marker line "== name" and the next "== " line.
output_section() {
    local file=$1 name=$2
    awk -v header="== $name" '$0 == header { inside = 1; next } /^== / { inside = 0 } inside' "$file"
}

# Writes a C program that all-reduces the ranks and prints "rank R of N sum S", and
# compiles it with mpicc. With N ranks, S must be N*(N-1)/2 on every rank.
build_allreduce_program() {
    local folder=$1
    cat > "$folder/allreduce.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
    int rank = 0, size = 0, sum = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("rank %d of %d sum %d\n", rank, size, sum);
    MPI_Finalize();
    return 0;
}
EOF
    mpicc -o "$folder/allreduce" "$folder/allreduce.c"
}

# Writes the smoke batch script. Each step prints a "== name" header so that the checks
# can find its lines in the output file.
write_smoke_batch_script() {
    local folder=$1
    cat > "$folder/smoke.sbatch" <<EOF
#!/usr/bin/env bash
#SBATCH --job-name=smoke
set -u
status=0

echo "== srun hostname"
srun hostname || status=1

echo "== srun --mpi=list"
mpi_plugins=\$(srun --mpi=list 2>&1) || status=1
echo "\$mpi_plugins"

echo "== mpirun hostname"
mpirun -np 2 hostname || status=1

echo "== mpirun allreduce"
mpirun -np 2 "$folder/allreduce" || status=1

if grep -q pmix <<<"\$mpi_plugins"; then
    echo "== srun pmix allreduce"
    srun --mpi=pmix "$folder/allreduce" || status=1
fi
echo "== end"
exit "\$status"
EOF
}

# Counts the lines of `section` in `file` that equal `expected`.
count_lines_equal() {
    local file=$1 section=$2 expected=$3
    output_section "$file" "$section" | grep -cxF -- "$expected" || true
}

# Checks that both ranks printed the all-reduce result of a 2-rank job (0 + 1 = 1).
allreduce_section_is_correct() {
    local file=$1 section=$2
    [ "$(count_lines_equal "$file" "$section" "rank 0 of 2 sum 1")" -eq 1 ] &&
        [ "$(count_lines_equal "$file" "$section" "rank 1 of 2 sum 1")" -eq 1 ]
}

check_smoke_job() {
    local folder=$workdir/jobs/smoke job_id result output failed=0 host
    log "--smoke: srun, srun --mpi=list and mpirun inside a 2-task allocation"
    mkdir -p "$folder"
    build_allreduce_program "$folder" || { echo "    FAIL mpicc could not build the MPI test program"; return 1; }
    write_smoke_batch_script "$folder"

    job_id=$(sbatch --parsable --nodes=1 --ntasks=2 --cpus-per-task=1 --time=5 \
        --output="$folder/smoke-%j.out" --chdir="$folder" "$folder/smoke.sbatch") ||
        { echo "    FAIL sbatch rejected the smoke job"; return 1; }
    log "submitted smoke job $job_id"
    result=$(wait_for_job "$job_id" "${job_timeout:-300}")
    output=$folder/smoke-$job_id.out
    print_job_output "$output"

    host=$(hostname)
    check "job $job_id ended COMPLETED with exit code 0:0 (got: $result)" [ "$result" = "COMPLETED 0:0" ] || failed=1
    check "srun hostname ran 2 tasks on $host" \
        [ "$(count_lines_equal "$output" "srun hostname" "$host")" -eq 2 ] || failed=1
    check "mpirun -np 2 hostname inside the allocation ran 2 processes" \
        [ "$(count_lines_equal "$output" "mpirun hostname" "$host")" -eq 2 ] || failed=1
    check "mpirun started 2 MPI ranks whose all-reduce is correct" \
        allreduce_section_is_correct "$output" "mpirun allreduce" || failed=1

    if output_section "$output" "srun --mpi=list" | grep -q pmix; then
        echo "    INFO srun --mpi=list offers PMIx: $(output_section "$output" "srun --mpi=list" | grep -o 'pmix_v[0-9]*' | tr '\n' ' ')"
        check "srun --mpi=pmix started 2 MPI ranks whose all-reduce is correct" \
            allreduce_section_is_correct "$output" "srun pmix allreduce" || failed=1
    else
        echo "    INFO srun --mpi=list does not offer PMIx; cluster/slurm.sbatch falls back to mpirun here"
    fi
    return "$failed"
}
