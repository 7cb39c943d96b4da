/*
 * isa_scalar.c — the kernel bodies instantiated for the scalar level.
 * Each *_simd.inc is written once over simd.h; this file compiles it with
 * the matching target and publishes the routines as pk_ops_scalar.
 */
#include "internal.h"

#define PK_ISA PK_ISA_SCALAR
#include "simd.h"
#include "gemm_ukernel.inc"
#include "attention_simd.inc"
#include "softmax_simd.inc"
#include "norm_simd.inc"
#include "activation_simd.inc"
#include "scoring_simd.inc"

const pk_isa_ops pk_ops_scalar = {
    .level = PK_SIMD_SCALAR,
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
