/*
 * optimizer.c — AdamW over a flat parameter arena, the global gradient
 * norm (summed in double over fixed chunks, in chunk order) and clipping.
 */
#include "internal.h"

enum { OPT_CHUNK = 16384, OPT_MAX_PARTIALS = 4096 };

static void adamw_range(float *restrict p, float *restrict m, float *restrict v, const float *restrict g,
                        size_t lo, size_t hi, float lr, float beta1,
                        float beta2, float eps, float wd, float step_size,
                        float bc2_sqrt) {
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i] * (1.0f - lr * wd);
        float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
        float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

void pk_adamw(float *params, float *m, float *v, const float *grads, size_t n,
              float lr, float beta1, float beta2, float eps,
              float weight_decay, int step) {
    float bc1 = 1.0f - powf(beta1, (float)step);
    float bc2 = 1.0f - powf(beta2, (float)step);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    size_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    int nt = pk_threads_for(10.0 * n);
    PK_PARALLEL_FOR(nt)
    for (size_t ch = 0; ch < nchunks; ch++)
        adamw_range(params, m, v, grads, ch * OPT_CHUNK,
                    PK_MIN(n, (ch + 1) * OPT_CHUNK), lr, beta1, beta2, eps,
                    weight_decay, step_size, bc2_sqrt);
}

void pk_adamw_naive(float *params, float *m, float *v, const float *grads,
                    size_t n, float lr, float beta1, float beta2, float eps,
                    float weight_decay, int step) {
    float bc1 = 1.0f - powf(beta1, (float)step);
    float bc2 = 1.0f - powf(beta2, (float)step);
    adamw_range(params, m, v, grads, 0, n, lr, beta1, beta2, eps, weight_decay,
                lr / bc1, sqrtf(bc2));
}

double pk_sum_squares(const float *x, size_t n) {
    if (n == 0) return 0.0;
    /* The chunk size depends on n only, never on the thread count. */
    size_t chunk = PK_MAX((size_t)OPT_CHUNK, (n + OPT_MAX_PARTIALS - 1) / OPT_MAX_PARTIALS);
    size_t nchunks = (n + chunk - 1) / chunk;
    double partial[OPT_MAX_PARTIALS];
    int nt = pk_threads_for(2.0 * n);
    PK_PARALLEL_FOR(nt)
    for (size_t ch = 0; ch < nchunks; ch++) {
        size_t hi = PK_MIN(n, (ch + 1) * chunk);
        double s = 0.0;
        for (size_t i = ch * chunk; i < hi; i++) s += (double)x[i] * (double)x[i];
        partial[ch] = s;
    }
    double total = 0.0;
    for (size_t ch = 0; ch < nchunks; ch++) total += partial[ch];
    return total;
}

float pk_clip_grad_norm(float *grads, size_t n, float max_norm) {
    float norm = (float)sqrt(pk_sum_squares(grads, n));
    if (max_norm > 0.0f && norm > max_norm) {
        float coef = max_norm / (norm + 1e-6f);
        pk_scale(grads, coef, n);
    }
    return norm;
}
