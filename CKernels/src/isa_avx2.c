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
#include "norm_simd.inc"
#include "activation_simd.inc"
#include "scoring_simd.inc"

const pk_isa_ops pk_ops_avx2 = {
    .level = PK_SIMD_AVX2,
    .mr = UK_MR,
    .nr = UK_NR,
    .gemm_ukernel = gemm_ukernel,
    .attn_fwd_head = attn_fwd_head,
    .attn_bwd_head = attn_bwd_head,
    .attn_decode_group = attn_decode_group,
    .softmax_row = softmax_row,
    .softmax_bwd_row = softmax_bwd_row,
    .xent_row = xent_row,
    .rmsnorm_fwd_row = rmsnorm_fwd_row,
    .rmsnorm_bwd_row = rmsnorm_bwd_row,
    .layernorm_fwd_row = layernorm_fwd_row,
    .layernorm_bwd_row = layernorm_bwd_row,
    .norm_weight_grad_span = norm_weight_grad_span,
    .gelu_fwd = gelu_fwd,
    .gelu_bwd = gelu_bwd,
    .dropout_span = dropout_span,
    .relu_fwd_span = relu_fwd_span,
    .relu_bwd_span = relu_bwd_span,
    .relu_bwd_inplace_span = relu_bwd_inplace_span,
    .axpby_span = axpby_span,
    .scale_span = scale_span,
    .score_stats_rows = score_stats_rows,
    .score_rows = SC_ROWS,
    .dot = dot_simd,
};

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#endif /* x86-64 */
