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

# --map-by ppr:N:node places N ranks per node; binding each rank to a socket keeps
# its BLAS threads on local memory. For one rank per GPU, bind to cores instead and
# let palitrain choose the device from OMPI_COMM_WORLD_LOCAL_RANK.
exec mpirun \
    -np "$RANKS" \
    --hostfile "$HOSTFILE" \
    --map-by "ppr:${RANKS_PER_NODE}:node:PE=${THREADS_PER_RANK}" \
    --bind-to core \
    -x PATH -x LD_LIBRARY_PATH \
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
