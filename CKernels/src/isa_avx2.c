/*
 * isa_avx2.c — the kernel bodies instantiated for the avx2 level.
 * Each *_simd.inc is written once over simd.h; this file compiles it with
 * the matching target and publishes the routines as pk_ops_avx2.
 */
#include "internal.h"
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,popcnt")
#endif

#define PK_ISA PK_ISA_AVX2
#include "simd.h"
#include "gemm_ukernel.inc"
#include "attention_simd.inc"
#include "softmax_simd.inc"
#include "kl_simd.inc"
#include "norm_simd.inc"
#include "activation_simd.inc"
#include "scoring_simd.inc"

#define PK_ISA_OPS pk_ops_avx2
#define PK_ISA_LEVEL PK_SIMD_AVX2
#include "isa_table.inc"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#endif /* x86-64 */
