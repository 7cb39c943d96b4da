/*
 * scoring.c — the simulator's item scoring: plain logits through the GEMM,
 * and the fused statistics (log-sum-exp, target score, rank) that never
 * materialise [B,V] (vectorised body in scoring_simd.inc).
 */
#include "internal.h"

void pk_score_logits(float *logits, const float *u, const float *items, int B,
                     int V, int C) {
    pk_gemm(0, 1, B, V, C, 1.0f, u, C, items, C, 0.0f, logits, V);
}

void pk_score_stats(float *lse, float *target_score, int *rank,
                    const float *u, const float *items, const int *targets,
                    int B, int V, int C) {
    if (C > PK_SCORE_MAX_C) {
        pk_score_stats_naive(lse, target_score, rank, u, items, targets, B, V, C);
        return;
    }
    const pk_isa_ops *ops = pk_ops();
    const int rows = ops->score_rows;
    const int tiles = (B + rows - 1) / rows;
    int nt = pk_threads_for(2.0 * B * (double)V * C);
    PK_PARALLEL_FOR_INTERLEAVED(nt)
    for (int t = 0; t < tiles; t++) {
        int r0 = t * rows, nr = PK_MIN(rows, B - r0);
        ops->score_stats_rows(lse ? lse + r0 : NULL,
                              target_score ? target_score + r0 : NULL,
                              rank ? rank + r0 : NULL, u + (size_t)r0 * C, items,
                              targets ? targets + r0 : NULL, nr, V, C);
    }
}

static float dot_fma(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int c = 0; c < n; c++) s = fmaf(a[c], b[c], s);
    return s;
}

void pk_score_stats_naive(float *lse, float *target_score, int *rank,
                          const float *u, const float *items,
                          const int *targets, int B, int V, int C) {
    for (int b = 0; b < B; b++) {
        const float *ub = u + (size_t)b * C;
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) {
            float s = dot_fma(ub, items + (size_t)v * C, C);
            mx = s > mx ? s : mx;
        }
        float ts = targets ? dot_fma(ub, items + (size_t)targets[b] * C, C) : INFINITY;
        float sum = 0.0f;
        int higher = 0;
        for (int v = 0; v < V; v++) {
            float s = dot_fma(ub, items + (size_t)v * C, C);
            sum += expf(s - mx);
            if (targets && v != targets[b] && s > ts) higher++;
        }
        if (lse) lse[b] = mx + logf(sum);
        if (target_score) target_score[b] = ts;
        if (rank) rank[b] = 1 + higher;
    }
}

void pk_score_pairs(float *out, const float *u, const float *items,
                    const int *ids, int B, int C) {
    int nt = pk_threads_for(2.0 * B * C);
    PK_PARALLEL_FOR(nt)
    for (int b = 0; b < B; b++) out[b] = dot_fma(u + (size_t)b * C, items + (size_t)ids[b] * C, C);
}
