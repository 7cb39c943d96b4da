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
#include "kl_simd.inc"
#include "norm_simd.inc"
#include "activation_simd.inc"
#include "scoring_simd.inc"

#define PK_ISA_OPS pk_ops_scalar
#define PK_ISA_LEVEL PK_SIMD_SCALAR
#include "isa_table.inc"
