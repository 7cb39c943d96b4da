/*
 * kl.c — exact KL divergence between two categorical distributions given by
 * logits over the same (masked) support, with its gradient with respect to
 * the first one's logits (rows in parallel over the vectorised row body,
 * kl_simd.inc), its naive twin, and the masked fill that restricts logits to
 * a support. Each row's sums run in a fixed order, so results do not depend
 * on the thread count.
 */
#include "internal.h"

/* Masked value of the restricted logits: finite, so exp() gives 0 and
 * 0 · value stays 0 (−inf would give NaN in p · log p). */
#define PK_MASKED_LOGIT (-1.0e30f)

void pk_mask_fill(float *x, const uint8_t *mask, int N, int C) {
    int nt = pk_threads_for(1.0 * N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++) {
        float *row = x + (size_t)n * C;
        const uint8_t *m = mask + (size_t)n * C;
        for (int c = 0; c < C; c++) row[c] = m[c] ? row[c] : PK_MASKED_LOGIT;
    }
}

void pk_kl_categorical(float *kl, float *dlogits, const float *logits,
                       const float *ref_logits, const uint8_t *mask,
                       const float *dkl, float scale, int N, int C) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(12.0 * N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        ops->kl_row(kl + n, dlogits ? dlogits + o : NULL, logits + o, ref_logits + o,
                    mask ? mask + o : NULL, dkl ? dkl[n] : scale, C);
    }
}

/* The naive twin's row statistics: log Σ exp over the support, term by
 * term. Returns 0 when the row's support is empty. */
static int row_lse(const float *x, const uint8_t *m, int C, float *lse) {
    float mx = -INFINITY;
    for (int c = 0; c < C; c++)
        if (!m || m[c]) mx = x[c] > mx ? x[c] : mx;
    if (mx == -INFINITY) return 0;
    float s = 0.0f;
    for (int c = 0; c < C; c++)
        if (!m || m[c]) s += expf(x[c] - mx);
    *lse = mx + logf(s);
    return 1;
}

void pk_kl_categorical_naive(float *kl, float *dlogits, const float *logits,
                             const float *ref_logits, const uint8_t *mask,
                             const float *dkl, float scale, int N, int C) {
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        const float *x = logits + o, *r = ref_logits + o;
        const uint8_t *m = mask ? mask + o : NULL;
        /* the two log-softmaxes, then the sums, term by term */
        float lp = 0, lq = 0;
        int ok = row_lse(x, m, C, &lp) & row_lse(r, m, C, &lq);
        float k = 0.0f;
        if (ok)
            for (int c = 0; c < C; c++)
                if (!m || m[c]) k += expf(x[c] - lp) * ((x[c] - lp) - (r[c] - lq));
        kl[n] = ok ? k : 0.0f;
        if (!dlogits) continue;
        float w = dkl ? dkl[n] : scale;
        for (int c = 0; c < C; c++) {
            float v = 0.0f;
            if (ok && (!m || m[c])) {
                float p = expf(x[c] - lp);
                v = w * p * ((x[c] - lp) - (r[c] - lq)) - w * p * k;
            }
            dlogits[o + c] = v;
        }
    }
}
