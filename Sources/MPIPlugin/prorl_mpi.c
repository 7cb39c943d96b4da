/*
 * prorl_mpi.c — the engine's collectives over MPI, as a plugin.
 *
 * Built by `make mpi` with the system's mpicc into libprorl_mpi.so; the
 * engine opens it at run time (Sources/ProRL/Distributed/MPICollective.swift)
 * when it was started by an MPI launcher. So the engine itself never links
 * MPI: it builds and runs where MPI is absent, and this file is the only
 * code that includes mpi.h (any MPI implementation: the ABI below is plain C).
 *
 * Every function returns 0 or an MPI error code (the communicator returns
 * errors instead of aborting); prorl_mpi_error_string describes one. Counts
 * are 64-bit: larger buffers go in chunks of at most 2^30 elements. Only the
 * thread that called prorl_mpi_init may call the others (MPI_THREAD_FUNNELED:
 * the kernels' OpenMP threads never touch MPI).
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRORL_MPI_EXPORT __attribute__((visibility("default")))
#define CHUNK ((int64_t)1 << 30)

static int finalize_at_exit = 1;

static void finalize(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized && finalize_at_exit) MPI_Finalize();
}

/* The plugin's ABI version: the engine refuses a plugin of another. */
PRORL_MPI_EXPORT int prorl_mpi_abi_version(void) { return 1; }

/* Initialises MPI (once) and returns this process's rank and the world size.
 * MPI_Finalize runs at exit (a normal exit of every rank). */
PRORL_MPI_EXPORT int prorl_mpi_init(int *rank, int *size) {
    int initialized = 0, provided = 0, rc;
    MPI_Initialized(&initialized);
    if (!initialized) {
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return rc;
        atexit(finalize);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return rc;
    return MPI_Comm_size(MPI_COMM_WORLD, size);
}

/* In-place sum of n values of `type` (`size` bytes each) over all ranks, in
 * chunks; every rank receives the same values. */
static int allreduce_sum(void *values, int64_t n, MPI_Datatype type, size_t size) {
    for (int64_t at = 0; at < n; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)values + (size_t)at * size, (int)m, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

PRORL_MPI_EXPORT int prorl_mpi_allreduce_f32(float *values, int64_t n) {
    return allreduce_sum(values, n, MPI_FLOAT, sizeof(float));
}

PRORL_MPI_EXPORT int prorl_mpi_allreduce_f64(double *values, int64_t n) {
    return allreduce_sum(values, n, MPI_DOUBLE, sizeof(double));
}

/* Rank root's bytes to every rank. */
PRORL_MPI_EXPORT int prorl_mpi_broadcast(void *bytes, int64_t n, int root) {
    for (int64_t at = 0; at < n; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        int rc = MPI_Bcast((char *)bytes + at, (int)m, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

/* Every rank's byte count: counts[r] for r in 0..<size. */
PRORL_MPI_EXPORT int prorl_mpi_allgather_counts(int64_t mine, int64_t *counts) {
    return MPI_Allgather(&mine, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD);
}

/* Every rank's bytes, concatenated in rank order into recv (Σ counts bytes;
 * counts as prorl_mpi_allgather_counts returned them): one MPI_Allgatherv
 * when the total fits an int, else a broadcast from each rank in turn. */
PRORL_MPI_EXPORT int prorl_mpi_allgather_bytes(const void *send, int64_t n, void *recv, const int64_t *counts) {
    int size = 0, rank = 0, rc;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int64_t total = 0;
    for (int r = 0; r < size; r++) total += counts[r];
    if (total < INT32_MAX) {
        int *c = malloc(sizeof(int) * (size_t)size * 2);
        if (!c) return MPI_ERR_NO_MEM;
        int *displacements = c + size, offset = 0;
        for (int r = 0; r < size; r++) { c[r] = (int)counts[r]; displacements[r] = offset; offset += c[r]; }
        rc = MPI_Allgatherv(send, (int)n, MPI_BYTE, recv, c, displacements, MPI_BYTE, MPI_COMM_WORLD);
        free(c);
        return rc;
    }
    int64_t offset = 0;
    for (int r = 0; r < size; r++) {
        if (r == rank && n > 0) memcpy((char *)recv + offset, send, (size_t)n);
        if ((rc = prorl_mpi_broadcast((char *)recv + offset, counts[r], r)) != MPI_SUCCESS) return rc;
        offset += counts[r];
    }
    return MPI_SUCCESS;
}

PRORL_MPI_EXPORT int prorl_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

/* Ends every rank of the job (after an error on this one): a rank that
 * stopped while the others wait in a collective must not leave them hanging. */
PRORL_MPI_EXPORT void prorl_mpi_abort(int code) {
    finalize_at_exit = 0;
    MPI_Abort(MPI_COMM_WORLD, code);
}

PRORL_MPI_EXPORT void prorl_mpi_error_string(int code, char *out, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (capacity <= 0) return;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", code);
    snprintf(out, (size_t)capacity, "%s", text);
}

/* The library's own version line (e.g. "Open MPI v4.1.4, ..."). */
PRORL_MPI_EXPORT void prorl_mpi_library(char *out, int capacity) {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    if (capacity <= 0) return;
    MPI_Get_library_version(text, &length);
    char *newline = strchr(text, '\n');
    if (newline) *newline = 0;
    snprintf(out, (size_t)capacity, "%s", text);
}
