/*
 * simd.h — a small vector abstraction, instantiated once per ISA.
 *
 * Include it after defining PK_ISA to PK_ISA_SCALAR, PK_ISA_AVX2 or
 * PK_ISA_AVX512 (in the matching isa_*.c translation unit, which also sets
 * the target attributes). It defines:
 *   vf   a vector of VW floats        vm   a lane mask
 *   vzero vset1 vload vstore vloadn vstoren (first n lanes, rest zero)
 *   vadd vsub vmul vdiv vfma(a,b,c)=a·b+c vmax vmin vabs
 *   vhsum vhmax   horizontal sum / max (a fixed order per ISA)
 *   vexp          exp with ≤ 2 ulp error, NaN propagating, 0 below −87
 *   vmask_u8(p)   lanes whose byte p[i] != 0;  vmask_n(n) first n lanes
 *   vmask_gt(a,b) lanes with a > b;  vblend(m, a, b) = m ? b : a
 *   vcount(m)     number of set lanes
 *   vrandom_keep(key, base, thr)  lanes l with pk_random_bits(key, base+l) ≥ thr
 *   vtranspose_block(dst, ldd, src, lds, rows)  one VW×VW block transposed
 */
#ifndef PK_SIMD_H
#define PK_SIMD_H

#include <math.h>
#include <stdint.h>

#include "internal.h"

/* Full unrolling of the small constant-trip loops over accumulators, so
 * they live in registers (clang and gcc both read this pragma). */
#define PK_UNROLL _Pragma("GCC unroll 32")

#if PK_ISA == PK_ISA_AVX512
#include <immintrin.h>
#define VW 16
typedef __m512 vf;
typedef __mmask16 vm;
static inline vf vzero(void) { return _mm512_setzero_ps(); }
static inline vf vset1(float x) { return _mm512_set1_ps(x); }
static inline vf vload(const float *p) { return _mm512_loadu_ps(p); }
static inline void vstore(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vm vmask_n(int n) {
    return (vm)(n >= 16 ? 0xFFFFu : ((1u << (n > 0 ? n : 0)) - 1u));
}
static inline vf vloadn(const float *p, int n) {
    return _mm512_maskz_loadu_ps(vmask_n(n), p);
}
static inline void vstoren(float *p, vf v, int n) {
    _mm512_mask_storeu_ps(p, vmask_n(n), v);
}
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vabs(vf a) {
    return _mm512_castsi512_ps(_mm512_and_si512(
        _mm512_castps_si512(a), _mm512_set1_epi32(0x7FFFFFFF)));
}
static inline float vhsum(vf a) { return _mm512_reduce_add_ps(a); }
static inline float vhmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline vm vmask_u8(const uint8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    return _mm512_test_epi32_mask(_mm512_cvtepu8_epi32(b),
                                  _mm512_set1_epi32(0xFF));
}
static inline vm vmask_gt(vf a, vf b) {
    return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ);
}
static inline vm vmask_and(vm a, vm b) { return (vm)(a & b); }
static inline vf vblend(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, a, b); }
static inline int vcount(vm m) { return __builtin_popcount((unsigned)m); }
static inline vf vexp2i(vf fx) {
    __m512i n = _mm512_cvtps_epi32(fx);
    n = _mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23);
    return _mm512_castsi512_ps(n);
}
static inline vf vround(vf x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* r[c] ← column c of the 16×16 block whose rows are r[0..16), in registers. */
static inline void vtranspose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}
/* dst[c·ldd + r] = src[r·lds + c] for r < rows (rows ≥ rows read as 0),
 * c < 16: one 16×16 block. */
static inline void vtranspose_block(float *dst, int ldd, const float *src,
                                   int lds, int rows) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + (size_t)i * lds) : _mm512_setzero_ps();
    vtranspose16(r);
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (size_t)i * ldd, r[i]);
}
/* Lanes l whose random bits for index base + l reach the keep threshold
 * (pk_random_bits, vectorised). */
static inline vm vrandom_keep(uint64_t key, uint32_t base, uint32_t thr) {
    __m512i x = _mm512_add_epi32(_mm512_set1_epi32((int)base),
                                 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x9E3779B1u));
    x = _mm512_xor_si512(x, _mm512_set1_epi32((int)(uint32_t)key));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x85EBCA6Bu));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 13));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0xC2B2AE35u));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_add_epi32(x, _mm512_set1_epi32((int)(uint32_t)(key >> 32)));
    return _mm512_cmpge_epu32_mask(x, _mm512_set1_epi32((int)thr));
}

#elif PK_ISA == PK_ISA_AVX2
#include <immintrin.h>
#define VW 8
typedef __m256 vf;
typedef __m256 vm;
static inline vf vzero(void) { return _mm256_setzero_ps(); }
static inline vf vset1(float x) { return _mm256_set1_ps(x); }
static inline vf vload(const float *p) { return _mm256_loadu_ps(p); }
static inline void vstore(float *p, vf v) { _mm256_storeu_ps(p, v); }
static const int32_t pk_avx2_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                               0,  0,  0,  0,  0,  0,  0,  0};
static inline __m256i vmask_ni(int n) {
    n = n < 0 ? 0 : (n > 8 ? 8 : n);
    return _mm256_loadu_si256((const __m256i *)(pk_avx2_mask_table + 8 - n));
}
static inline vm vmask_n(int n) { return _mm256_castsi256_ps(vmask_ni(n)); }
static inline vf vloadn(const float *p, int n) {
    return _mm256_maskload_ps(p, vmask_ni(n));
}
static inline void vstoren(float *p, vf v, int n) {
    _mm256_maskstore_ps(p, vmask_ni(n), v);
}
static inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vabs(vf a) {
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
}
static inline float vhsum(vf a) {
    __m128 lo = _mm256_castps256_ps128(a), hi = _mm256_extractf128_ps(a, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}
static inline float vhmax(vf a) {
    __m128 lo = _mm256_castps256_ps128(a), hi = _mm256_extractf128_ps(a, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}
static inline vm vmask_u8(const uint8_t *p) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    __m256i w = _mm256_cvtepu8_epi32(b);
    return _mm256_castsi256_ps(
        _mm256_xor_si256(_mm256_cmpeq_epi32(w, _mm256_setzero_si256()),
                         _mm256_set1_epi32(-1)));
}
static inline vm vmask_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vmask_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vf vblend(vm m, vf a, vf b) { return _mm256_blendv_ps(a, b, m); }
static inline int vcount(vm m) { return __builtin_popcount((unsigned)_mm256_movemask_ps(m)); }
static inline vf vexp2i(vf fx) {
    __m256i n = _mm256_cvtps_epi32(fx);
    n = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(n);
}
static inline vf vround(vf x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline void vtranspose_block(float *dst, int ldd, const float *src,
                                   int lds, int rows) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_loadu_ps(src + (size_t)i * lds) : _mm256_setzero_ps();
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (size_t)i * ldd, t[i]);
}
static inline vm vrandom_keep(uint64_t key, uint32_t base, uint32_t thr) {
    __m256i x = _mm256_add_epi32(_mm256_set1_epi32((int)base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x9E3779B1u));
    x = _mm256_xor_si256(x, _mm256_set1_epi32((int)(uint32_t)key));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x85EBCA6Bu));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 13));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0xC2B2AE35u));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_add_epi32(x, _mm256_set1_epi32((int)(uint32_t)(key >> 32)));
    /* unsigned x >= thr  ⇔  signed (x ^ 2^31) > (thr − 1) ^ 2^31, for thr ≥ 1 */
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    __m256i gt = _mm256_cmpgt_epi32(_mm256_xor_si256(x, sign),
                                    _mm256_xor_si256(_mm256_set1_epi32((int)(thr - 1u)), sign));
    if (thr == 0) gt = _mm256_set1_epi32(-1);
    return _mm256_castsi256_ps(gt);
}

#else /* scalar */
#define VW 1
typedef float vf;
typedef int vm;
static inline vf vzero(void) { return 0.0f; }
static inline vf vset1(float x) { return x; }
static inline vf vload(const float *p) { return *p; }
static inline void vstore(float *p, vf v) { *p = v; }
static inline vm vmask_n(int n) { return n > 0; }
static inline vf vloadn(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline void vstoren(float *p, vf v, int n) { if (n > 0) *p = v; }
static inline vf vadd(vf a, vf b) { return a + b; }
static inline vf vsub(vf a, vf b) { return a - b; }
static inline vf vmul(vf a, vf b) { return a * b; }
static inline vf vdiv(vf a, vf b) { return a / b; }
static inline vf vfma(vf a, vf b, vf c) { return fmaf(a, b, c); }
static inline vf vmax(vf a, vf b) { return a > b ? a : b; }
static inline vf vmin(vf a, vf b) { return a < b ? a : b; }
static inline vf vabs(vf a) { return fabsf(a); }
static inline float vhsum(vf a) { return a; }
static inline float vhmax(vf a) { return a; }
static inline vm vmask_u8(const uint8_t *p) { return *p != 0; }
static inline vm vmask_gt(vf a, vf b) { return a > b; }
static inline vm vmask_and(vm a, vm b) { return a && b; }
static inline vf vblend(vm m, vf a, vf b) { return m ? b : a; }
static inline int vcount(vm m) { return m ? 1 : 0; }
static inline vm vrandom_keep(uint64_t key, uint32_t base, uint32_t thr) {
    return pk_random_bits(key, base) >= thr;
}
static inline void vtranspose_block(float *dst, int ldd, const float *src,
                                   int lds, int rows) {
    (void)ldd;
    (void)lds;
    *dst = rows > 0 ? *src : 0.0f;
}
#endif

/* exp: Cephes-style range reduction and degree-6 polynomial. */
static inline vf vexp(vf x) {
#if PK_ISA == PK_ISA_SCALAR
    return x < -87.0f ? 0.0f : expf(x);
#else
    /* vmax(lo, x)/vmin(hi, ·) return x when x is NaN, so NaN propagates. */
    vf xc = vmin(vset1(88.0f), vmax(vset1(-87.0f), x));
    vf fx = vround(vmul(xc, vset1(1.44269504088896341f)));
    vf r = vfma(fx, vset1(-0.693359375f), xc);
    r = vfma(fx, vset1(2.12194440e-4f), r);
    vf y = vset1(1.9875691500e-4f);
    y = vfma(y, r, vset1(1.3981999507e-3f));
    y = vfma(y, r, vset1(8.3334519073e-3f));
    y = vfma(y, r, vset1(4.1665795894e-2f));
    y = vfma(y, r, vset1(1.6666665459e-1f));
    y = vfma(y, r, vset1(5.0000001201e-1f));
    y = vfma(y, vmul(r, r), vadd(r, vset1(1.0f)));
    y = vmul(y, vexp2i(fx));
    return vblend(vmask_gt(vset1(-87.0f), x), y, vzero());
#endif
}

/* 1 + erf(x) for the GELU: erfc rational approximation (relative error
 * < 1.2e-7, Numerical Recipes' erfcc) evaluated without cancellation for
 * negative x. */
static inline vf v_one_plus_erf(vf x) {
    vf z = vabs(x);
    vf t = vdiv(vset1(1.0f), vfma(vset1(0.5f), z, vset1(1.0f)));
    vf p = vset1(0.17087277f);
    p = vfma(p, t, vset1(-0.82215223f));
    p = vfma(p, t, vset1(1.48851587f));
    p = vfma(p, t, vset1(-1.13520398f));
    p = vfma(p, t, vset1(0.27886807f));
    p = vfma(p, t, vset1(-0.18628806f));
    p = vfma(p, t, vset1(0.09678418f));
    p = vfma(p, t, vset1(0.37409196f));
    p = vfma(p, t, vset1(1.00002368f));
    p = vfma(p, t, vset1(-1.26551223f));
    vf erfc = vmul(t, vexp(vsub(p, vmul(z, z))));
    /* x >= 0: 1 + erf = 2 − erfc(x);  x < 0: 1 + erf = erfc(|x|). */
    return vblend(vmask_gt(vzero(), x), vsub(vset1(2.0f), erfc), erfc);
}

#endif /* PK_SIMD_H */
