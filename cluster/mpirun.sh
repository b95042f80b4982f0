#!/usr/bin/env bash
# Launches palitrain training on the nodes of a hostfile with Open MPI.
#
# Edit the variables below (paths and counts), then run from a login node:
#   cluster/mpirun.sh
# Every node must see the same paths: put the binary, the data, the checkpoint and
# OUTPUT_DIR on a shared filesystem (NFS, Lustre, GPFS).
set -euo pipefail

HOSTFILE=${HOSTFILE:-cluster/hostfile.example}
RANKS=${RANKS:-4}                      # total ranks: the sum of the slots you use
RANKS_PER_NODE=${RANKS_PER_NODE:-2}    # one per GPU, or one per CPU socket
THREADS_PER_RANK=${THREADS_PER_RANK:-8}
PALITRAIN=${PALITRAIN:-$PWD/.build/release/palitrain}
DATA=${DATA:-/shared/datasets/fractures}
CHECKPOINT=${CHECKPOINT:-/shared/models/paligemma-3b-pt-224.f16.npz}
TOKENIZER=${TOKENIZER:-/shared/models/paligemma_tokenizer.model}
OUTPUT_DIR=${OUTPUT_DIR:-/shared/runs/fractures}

# -x sends these variables to the ranks on other nodes. An unset one would only make
# mpirun print a warning, so LD_LIBRARY_PATH is sent when it is set.
forward=(-x PATH)
if [ -n "${LD_LIBRARY_PATH+set}" ]; then
    forward+=(-x LD_LIBRARY_PATH)
fi

# --map-by ppr:N:node:PE=T places N ranks per node and gives each rank T cores, and
# --bind-to core keeps the rank and its BLAS threads on those cores. For one rank per
# GPU, let palitrain choose the device from OMPI_COMM_WORLD_LOCAL_RANK.
# To stop the run with a checkpoint, send SIGUSR1 to mpirun: Open MPI 4.1 forwards it
# to every rank. SIGTERM or Ctrl-C makes mpirun kill the ranks 1 s after it signals
# them (odls_base_sigkill_timeout), which is too soon to write a checkpoint.
exec mpirun \
    -np "$RANKS" \
    --hostfile "$HOSTFILE" \
    --map-by "ppr:${RANKS_PER_NODE}:node:PE=${THREADS_PER_RANK}" \
    --bind-to core \
    "${forward[@]}" \
    -x OPENBLAS_NUM_THREADS="$THREADS_PER_RANK" \
    -x OMP_NUM_THREADS="$THREADS_PER_RANK" \
    "$PALITRAIN" train \
        --data "$DATA" \
        --checkpoint "$CHECKPOINT" \
        --tokenizer "$TOKENIZER" \
        --output-dir "$OUTPUT_DIR" \
        --threads "$THREADS_PER_RANK" \
        --resume auto \
        "$@"
