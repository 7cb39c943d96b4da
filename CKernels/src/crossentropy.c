/*
 * crossentropy.c — fused softmax cross-entropy (loss, gradient and entropy
 * in one pass per row) and its naive twin.
 */
#include "internal.h"

void pk_crossentropy(float *losses, float *dlogits, float *entropy,
                     const float *logits, const int *targets,
                     const float *dloss, float scale, int N, int V,
                     int ignore_index) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(10.0 * N * V);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *g = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        if (t == ignore_index || t < 0 || t >= V) {
            losses[n] = 0.0f;
            if (entropy) entropy[n] = 0.0f;
            if (g) for (int v = 0; v < V; v++) g[v] = 0.0f;
            continue;
        }
        ops->xent_row(losses + n, g, entropy ? entropy + n : NULL, x, t,
                      dloss ? dloss[n] : scale, V);
    }
}

void pk_crossentropy_naive(float *losses, float *dlogits, float *entropy,
                           const float *logits, const int *targets,
                           const float *dloss, float scale, int N, int V,
                           int ignore_index) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *g = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        if (t == ignore_index || t < 0 || t >= V) {
            losses[n] = 0.0f;
            if (entropy) entropy[n] = 0.0f;
            if (g) for (int v = 0; v < V; v++) g[v] = 0.0f;
            continue;
        }
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
        float lse = mx + logf(sum);
        float xt = x[t];
        losses[n] = lse - xt;
        if (entropy) {
            float h = 0.0f;
            for (int v = 0; v < V; v++) {
                float p = expf(x[v] - lse);
                h -= p * (x[v] - lse);
            }
            entropy[n] = h;
        }
        if (g) {
            float w = dloss ? dloss[n] : scale;
            for (int v = 0; v < V; v++) g[v] = expf(x[v] - lse) * w;
            g[t] -= w;
        }
    }
}
