/*
 * threads.c — thread count, SIMD level detection and dispatch.
 */
#include "internal.h"

#include <stdatomic.h>

/* Per calling thread, so embedders can give each handle its own count
 * (0: not set yet → one per core). */
static _Thread_local int g_threads = 0;
static atomic_int g_simd = -1;     /* -1: not chosen yet → best supported */

static int cores(void) {
#ifdef _OPENMP
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

void pk_set_num_threads(int n) {
#ifdef _OPENMP
    g_threads = n > 0 ? n : cores();
#else
    (void)n;
    g_threads = 1;
#endif
}

int pk_get_num_threads(void) {
    return g_threads > 0 ? g_threads : cores();
}

int pk_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int pk_threads_for(double work) {
    /* Below ~200k units (flops or bytes) one thread is faster than waking
     * the team. */
    if (work < 2.0e5) return 1;
    return pk_get_num_threads();
}

int pk_simd_supported(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            cached = PK_SIMD_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            cached = PK_SIMD_AVX2;
        else
            cached = PK_SIMD_SCALAR;
    }
    return cached;
#else
    return PK_SIMD_SCALAR;
#endif
}

void pk_set_simd_level(int level) {
    int best = pk_simd_supported();
    if (level < PK_SIMD_SCALAR) level = PK_SIMD_SCALAR;
    atomic_store(&g_simd, level > best ? best : level);
}

int pk_get_simd_level(void) {
    int s = atomic_load(&g_simd);
    return s >= 0 ? s : pk_simd_supported();
}

const char *pk_simd_name(int level) {
    switch (level) {
    case PK_SIMD_AVX512: return "avx512";
    case PK_SIMD_AVX2: return "avx2";
    default: return "scalar";
    }
}

const pk_isa_ops *pk_ops(void) {
#if defined(__x86_64__) || defined(_M_X64)
    switch (pk_get_simd_level()) {
    case PK_SIMD_AVX512: return &pk_ops_avx512;
    case PK_SIMD_AVX2: return &pk_ops_avx2;
    default: return &pk_ops_scalar;
    }
#else
    return &pk_ops_scalar;
#endif
}
