/*
 * Self-test for scripts/multihost: checks that the ranks it starts sit in distinct
 * network namespaces and exchange data correctly through MPI.
 *
 * Usage: allreduce_check EXPECTED_HOSTS [ELEMENTS]
 *
 * 1. Every rank reads its processor name and its network namespace id
 *    (/proc/self/ns/net), and rank 0 prints them for all ranks. The program fails
 *    when the number of distinct namespaces differs from EXPECTED_HOSTS.
 * 2. A ring exchange: rank r sends ELEMENTS doubles stamped with r to rank r+1 and
 *    checks what rank r-1 sent.
 * 3. MPI_Allreduce (sum) of ELEMENTS doubles, out of place and in place. Rank r
 *    contributes (r + 1) * (i % 997 + 1) at index i, so every sum is an integer below
 *    2^53 and must match exactly.
 *
 * Exit status: 0 when every rank passed all checks, 1 otherwise (on every rank).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NAME_LENGTH = 64 };

/* What one rank reports about where it runs. */
typedef struct {
    char host[MPI_MAX_PROCESSOR_NAME];
    char netns[NAME_LENGTH];
} placement;

static double contribution(int rank, long index) {
    return (double)(rank + 1) * (double)(index % 997 + 1);
}

static double expected_sum(int size, long index) {
    return (double)size * (double)(size + 1) / 2.0 * (double)(index % 997 + 1);
}

/* Gathers every rank's processor name and network namespace on all ranks and prints
 * them on rank 0. Returns the number of distinct network namespaces. */
static int gather_placements(int rank, int size, placement *all) {
    placement mine;
    memset(&mine, 0, sizeof mine);

    int length = 0;
    char name[MPI_MAX_PROCESSOR_NAME];
    MPI_Get_processor_name(name, &length);
    memcpy(mine.host, name, (size_t)length);

    ssize_t n = readlink("/proc/self/ns/net", mine.netns, NAME_LENGTH - 1);
    if (n < 0) {
        snprintf(mine.netns, NAME_LENGTH, "unreadable");
    }

    MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                  MPI_COMM_WORLD);

    int distinct = 0;
    for (int r = 0; r < size; r++) {
        int seen = 0;
        for (int q = 0; q < r; q++) {
            if (strcmp(all[q].netns, all[r].netns) == 0) {
                seen = 1;
                break;
            }
        }
        distinct += !seen;
    }
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            printf("allreduce_check: rank %d runs on %s in %s\n", r, all[r].host, all[r].netns);
        }
    }
    return distinct;
}

/* Sends a stamped buffer around the ring. Returns the number of wrong elements received. */
static long check_ring(int rank, int size, long elements, double *send, double *receive) {
    int next = (rank + 1) % size;
    int previous = (rank + size - 1) % size;
    for (long i = 0; i < elements; i++) {
        send[i] = (double)rank * 1e6 + (double)(i % 1000);
    }
    MPI_Sendrecv(send, (int)elements, MPI_DOUBLE, next, 7, receive, (int)elements, MPI_DOUBLE,
                 previous, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);

    long wrong = 0;
    for (long i = 0; i < elements; i++) {
        wrong += receive[i] != (double)previous * 1e6 + (double)(i % 1000);
    }
    return wrong;
}

/* Runs the out-of-place and the in-place sum. Returns the number of wrong elements. */
static long check_allreduce(int rank, int size, long elements, double *send, double *result) {
    for (long i = 0; i < elements; i++) {
        send[i] = contribution(rank, i);
    }
    MPI_Allreduce(send, result, (int)elements, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);

    long wrong = 0;
    for (long i = 0; i < elements; i++) {
        wrong += result[i] != expected_sum(size, i);
    }

    MPI_Allreduce(MPI_IN_PLACE, send, (int)elements, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (long i = 0; i < elements; i++) {
        wrong += send[i] != expected_sum(size, i);
    }
    return wrong;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0;
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    int expected_hosts = argc > 1 ? atoi(argv[1]) : 0;
    long elements = argc > 2 ? atol(argv[2]) : 1L << 19;
    if (expected_hosts < 1 || elements < 1 || elements > (1L << 28)) {
        if (rank == 0) {
            fprintf(stderr,
                    "allreduce_check: error: invalid arguments. Usage: allreduce_check "
                    "EXPECTED_HOSTS [ELEMENTS], with EXPECTED_HOSTS >= 1 and 1 <= ELEMENTS "
                    "<= 2^28\n");
        }
        MPI_Finalize();
        return 1;
    }

    placement *all = calloc((size_t)size, sizeof(placement));
    double *send = malloc((size_t)elements * sizeof(double));
    double *receive = malloc((size_t)elements * sizeof(double));
    if (all == NULL || send == NULL || receive == NULL) {
        fprintf(stderr, "allreduce_check: error: rank %d could not allocate %ld doubles\n", rank,
                elements);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    int distinct = gather_placements(rank, size, all);
    long ring_wrong = check_ring(rank, size, elements, send, receive);
    long sum_wrong = check_allreduce(rank, size, elements, send, receive);

    if (ring_wrong != 0) {
        fprintf(stderr, "allreduce_check: error: rank %d received %ld wrong elements of %ld "
                "from rank %d in the ring exchange\n", rank, ring_wrong, elements,
                (rank + size - 1) % size);
    }
    if (sum_wrong != 0) {
        fprintf(stderr, "allreduce_check: error: rank %d has %ld wrong elements of %ld after "
                "MPI_Allreduce (out of place and in place together)\n", rank, sum_wrong,
                elements);
    }

    /* Every rank learns whether any rank failed, so all of them exit with the same status. */
    long local_failures = ring_wrong + sum_wrong;
    long failures = 0;
    MPI_Allreduce(&local_failures, &failures, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);

    int ok = failures == 0 && distinct == expected_hosts;
    if (rank == 0) {
        if (distinct != expected_hosts) {
            fprintf(stderr, "allreduce_check: error: the %d ranks run in %d distinct network "
                    "namespaces, expected %d (one per host)\n", size, distinct, expected_hosts);
        }
        printf("allreduce_check: %s: %d ranks in %d namespaces, ring exchange and "
               "MPI_Allreduce of %ld doubles (%ld bytes) per rank, %ld wrong elements\n",
               ok ? "passed" : "FAILED", size, distinct, elements,
               elements * (long)sizeof(double), failures);
    }

    free(all);
    free(send);
    free(receive);
    MPI_Finalize();
    return ok ? 0 : 1;
}
