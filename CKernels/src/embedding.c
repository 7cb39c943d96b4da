/*
 * embedding.c — embedding gather and scatter-add. The scatter is parallel
 * over column ranges, each visiting the rows in row order, so repeated ids
 * accumulate identically for any thread count.
 */
#include "internal.h"

#include <string.h>

void pk_embedding_fwd(float *out, const float *table, const int *ids,
                      float scale, int N, int C) {
    int nt = pk_threads_for((double)N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++) {
        const float *src = table + (size_t)ids[n] * C;
        float *dst = out + (size_t)n * C;
        if (scale == 1.0f) memcpy(dst, src, (size_t)C * sizeof(float));
        else for (int c = 0; c < C; c++) dst[c] = scale * src[c];
    }
}

void pk_embedding_bwd(float *dtable, const float *dout, const int *ids,
                      float scale, int N, int C) {
    int nt = pk_threads_for((double)N * C);
    int parts = PK_MIN(nt, (C + 15) / 16);
    PK_PARALLEL_FOR(parts)
    for (int part = 0; part < parts; part++) {
        int c0, c1;
        pk_column_part(C, part, parts, &c0, &c1);
        for (int n = 0; n < N; n++) {
            float *restrict dst = dtable + (size_t)ids[n] * C;
            const float *restrict src = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) dst[c] += scale * src[c];
        }
    }
}

void pk_embedding_bwd_naive(float *dtable, const float *dout, const int *ids,
                            float scale, int N, int C) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            dtable[(size_t)ids[n] * C + c] += scale * dout[(size_t)n * C + c];
}
