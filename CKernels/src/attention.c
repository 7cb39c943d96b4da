/*
 * attention.c — multi-head attention: parallel loops over the vectorised
 * bodies (attention_simd.inc), the naive twins, and the T5 relative
 * position bias gather/scatter.
 *
 * Forward is parallel over (b, h), decode over groups of rows: each owns
 * its outputs.
 * Backward is parallel over (kv entry, h): each owns dk/dv of its entry and
 * dq of its query rows, visited in row order. dbias is then reduced over the
 * batch in batch order, parallel over (h, i).
 */
#include "internal.h"

#include <string.h>

static double attn_flops(const pk_attention_desc *d) {
    return 4.0 * d->B * d->H * (double)d->Tq * d->Tk * d->D;
}

static int attn_vectorisable(const pk_attention_desc *d) {
    return d->D <= PK_ATTN_MAX_D;
}

void pk_attention_fwd(float *out, float *probs, float *scratch, const float *q,
                      const float *k, const float *v,
                      const pk_attention_desc *d) {
    if (!attn_vectorisable(d)) {
        pk_attention_fwd_naive(out, probs, scratch, q, k, v, d);
        return;
    }
    const pk_isa_ops *ops = pk_ops();
    pk_attn_args a = {.d = d, .out = out, .probs = probs, .ds = scratch,
                      .q = q, .k = k, .v = v};
    int units = d->B * d->H;
    int nt = pk_threads_for(attn_flops(d));
    PK_PARALLEL_FOR(nt)
    for (int u = 0; u < units; u++) ops->attn_fwd_head(&a, u / d->H, u % d->H);
}

/* Rows of query batch entry b that are computed (and, packed, stored). */
static int attn_query_len(const pk_attention_desc *d, int b) {
    return d->q_len ? PK_MAX(0, PK_MIN(d->q_len[b], d->Tq)) : d->Tq;
}

/* dbias[h,i,:] += Σ_b dscores[b,h,i,:] in batch order (rows past a
 * query length hold nothing; causal rows nothing past key i, so those
 * zeros are not added). */
static void reduce_dbias(float *dbias, const float *ds,
                         const pk_attention_desc *d) {
    const int H = d->H, Tq = d->Tq, Tk = d->Tk;
    int nt = pk_threads_for((double)d->B * H * Tq * Tk);
    PK_PARALLEL_FOR(nt)
    for (int hi = 0; hi < H * Tq; hi++) {
        int h = hi / Tq, i = hi % Tq;
        float *dst = dbias + ((size_t)h * Tq + i) * Tk;
        const int visible = d->causal ? PK_MIN(i + 1, Tk) : Tk;
        for (int b = 0; b < d->B; b++) {
            if (i >= attn_query_len(d, b)) continue;
            int ld;
            const float *src = ds + pk_attn_probs_at(d, b, h, &ld) + (size_t)i * ld;
            for (int j = 0; j < visible; j++) dst[j] += src[j];
        }
    }
}

void pk_attention_bwd(float *dq, float *dk, float *dv, float *dbias,
                      float *scratch, const float *dout, const float *probs,
                      const float *q, const float *k, const float *v,
                      const pk_attention_desc *d) {
    if (!attn_vectorisable(d)) {
        pk_attention_bwd_naive(dq, dk, dv, dbias, scratch, dout, probs, q, k, v, d);
        return;
    }
    const pk_isa_ops *ops = pk_ops();
    pk_attn_args a = {.d = d, .dq = dq, .dk = dk, .dv = dv, .ds = scratch,
                      .dout = dout, .saved_probs = probs, .q = q, .k = k, .v = v};
    int entries = (d->B + d->kv_group - 1) / d->kv_group;
    int units = entries * d->H;
    int nt = pk_threads_for(2.0 * attn_flops(d));
    PK_PARALLEL_FOR(nt)
    for (int u = 0; u < units; u++) ops->attn_bwd_head(&a, u / d->H, u % d->H);
    if (dbias) reduce_dbias(dbias, scratch, d);
}

/* Key/value entry of decoding row b: its first cache row and its length. */
static void decode_entry(const pk_attention_desc *d, int b, size_t *row, int *len) {
    int e = b / d->kv_group;
    *row = d->kv_rows ? (size_t)d->kv_rows[e] : (size_t)e * d->Tk_cap;
    *len = d->kv_len ? PK_MAX(0, PK_MIN(d->kv_len[e], d->Tk)) : d->Tk;
}

/* Decoding rows are taken in groups: a group starts at every multiple of
 * PK_DECODE_GROUP and wherever the key/value entry changes, so groups do
 * not depend on the thread count. Returns the length of the group starting
 * at row b, or 0 if none starts there. */
static int decode_group_at(const pk_attention_desc *d, int b) {
    size_t row, prev_row;
    int len, prev_len;
    decode_entry(d, b, &row, &len);
    if (b % PK_DECODE_GROUP != 0) {
        decode_entry(d, b - 1, &prev_row, &prev_len);
        if (prev_row == row && prev_len == len) return 0;
    }
    int n = 1;
    while (b + n < d->B && (b + n) % PK_DECODE_GROUP != 0) {
        size_t r2;
        int l2;
        decode_entry(d, b + n, &r2, &l2);
        if (r2 != row || l2 != len) break;
        n++;
    }
    return n;
}

void pk_attention_decode(float *out, const float *q, const float *kcache,
                         const float *vcache, const pk_attention_desc *d) {
    if (!attn_vectorisable(d)) {
        pk_attention_decode_naive(out, q, kcache, vcache, d);
        return;
    }
    const pk_isa_ops *ops = pk_ops();
    pk_attn_args a = {.d = d, .out = out, .q = q, .k = kcache, .v = vcache};
    int nt = pk_threads_for(attn_flops(d));
    PK_PARALLEL_FOR(nt)
    for (int b = 0; b < d->B; b++) {
        int n = decode_group_at(d, b);
        if (n > 0) ops->attn_decode_group(&a, b, n);
    }
}

/* ------------------------------------------------------------------ */
/* Naive twins: direct loops over the definitions.                    */
/* ------------------------------------------------------------------ */

typedef struct naive_view {
    int e, klen, qlen;
    const float *q, *k, *v;
    size_t qrow, kvrow;
} naive_view;

static naive_view naive_view_of(const pk_attention_desc *d, const float *q,
                                const float *k, const float *v, int b, int h) {
    naive_view w;
    w.e = b / d->kv_group;
    w.klen = d->kv_len ? PK_MAX(0, PK_MIN(d->kv_len[w.e], d->Tk)) : d->Tk;
    w.qlen = d->q_len ? PK_MAX(0, PK_MIN(d->q_len[b], d->Tq)) : d->Tq;
    size_t qrow = d->q_rows ? (size_t)d->q_rows[b] : (size_t)b * d->Tq;
    size_t kvrow = d->kv_rows ? (size_t)d->kv_rows[w.e] : (size_t)w.e * d->Tk_cap;
    w.q = q + qrow * d->q_stride + (size_t)h * d->D;
    w.k = k + kvrow * d->kv_stride + (size_t)h * d->D;
    w.v = v + kvrow * d->kv_stride + (size_t)h * d->D;
    w.qrow = qrow;
    w.kvrow = kvrow;
    return w;
}

static int naive_visible(const pk_attention_desc *d, const naive_view *w,
                         int i, int j) {
    return j < w->klen && (!d->causal || j <= i);
}

static float naive_keep_scale(const pk_attention_desc *d, size_t idx) {
    if (d->dropout_p <= 0.0f) return 1.0f;
    uint64_t key = pk_stream_key(d->seed, d->stream);
    return pk_random_bits(key, idx) >= pk_keep_threshold(d->dropout_p)
               ? 1.0f / (1.0f - d->dropout_p) : 0.0f;
}

void pk_attention_fwd_naive(float *out, float *probs, float *scratch,
                            const float *q, const float *k, const float *v,
                            const pk_attention_desc *d) {
    const int H = d->H, Tq = d->Tq, Tk = d->Tk, D = d->D;
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < H; h++) {
            naive_view w = naive_view_of(d, q, k, v, b, h);
            size_t slab = ((size_t)b * H + h) * Tq * Tk;
            int ld;
            size_t at = pk_attn_probs_at(d, b, h, &ld);
            for (int i = 0; i < (d->q_rows ? w.qlen : Tq); i++) {
                float *P = probs + at + (size_t)i * ld;
                float *o = out + (w.qrow + (size_t)i) * d->out_stride + (size_t)h * D;
                float mx = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    if (i < w.qlen && naive_visible(d, &w, i, j)) {
                        float s = 0.0f;
                        for (int c = 0; c < D; c++)
                            s += w.q[(size_t)i * d->q_stride + c] * w.k[(size_t)j * d->kv_stride + c];
                        s *= d->scale;
                        if (d->bias) s += d->bias[((size_t)h * Tq + i) * Tk + j];
                        P[j] = s;
                        mx = s > mx ? s : mx;
                    } else {
                        P[j] = -INFINITY;
                    }
                }
                float sum = 0.0f;
                for (int j = 0; j < Tk; j++) {
                    P[j] = (mx == -INFINITY || P[j] == -INFINITY) ? 0.0f : expf(P[j] - mx);
                    sum += P[j];
                }
                for (int j = 0; j < Tk; j++) P[j] = sum > 0.0f ? P[j] / sum : 0.0f;
                for (int c = 0; c < D; c++) {
                    float acc = 0.0f;
                    for (int j = 0; j < Tk; j++) {
                        float pd = P[j] * naive_keep_scale(d, slab + (size_t)i * Tk + j);
                        if (scratch && d->dropout_p > 0.0f) scratch[at + (size_t)i * ld + j] = pd;
                        if (j < w.klen) acc += pd * w.v[(size_t)j * d->kv_stride + c];
                    }
                    if (i < w.qlen) o[c] = acc;
                    else if (!d->q_rows) o[c] = 0.0f;
                }
            }
        }
}

void pk_attention_bwd_naive(float *dq, float *dk, float *dv, float *dbias,
                            float *scratch, const float *dout,
                            const float *probs, const float *q,
                            const float *k, const float *v,
                            const pk_attention_desc *d) {
    const int H = d->H, Tq = d->Tq, Tk = d->Tk, D = d->D;
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < H; h++) {
            naive_view w = naive_view_of(d, q, k, v, b, h);
            size_t slab = ((size_t)b * H + h) * Tq * Tk;
            int ld;
            size_t at = pk_attn_probs_at(d, b, h, &ld);
            size_t qo = w.qrow * d->q_stride + (size_t)h * D;
            size_t ko = w.kvrow * d->kv_stride + (size_t)h * D;
            size_t oo = w.qrow * d->out_stride + (size_t)h * D;
            for (int i = 0; i < (d->q_rows ? w.qlen : Tq); i++) {
                const float *P = probs + at + (size_t)i * ld;
                float *S = scratch + at + (size_t)i * ld;
                if (i >= w.qlen) {
                    for (int j = 0; j < Tk; j++) S[j] = 0.0f;
                    continue;
                }
                const float *go = dout + oo + (size_t)i * d->out_stride;
                float dot = 0.0f;
                for (int j = 0; j < Tk; j++) {
                    float g = 0.0f;
                    if (naive_visible(d, &w, i, j)) {
                        for (int c = 0; c < D; c++) g += go[c] * w.v[(size_t)j * d->kv_stride + c];
                        g *= naive_keep_scale(d, slab + (size_t)i * Tk + j);
                    }
                    S[j] = g;
                    dot += P[j] * g;
                }
                for (int j = 0; j < Tk; j++) {
                    float pd = P[j] * naive_keep_scale(d, slab + (size_t)i * Tk + j);
                    S[j] = P[j] * (S[j] - dot);
                    if (!naive_visible(d, &w, i, j)) continue;
                    for (int c = 0; c < D; c++) {
                        if (dv) dv[ko + (size_t)j * d->kv_stride + c] += pd * go[c];
                        if (dq) dq[qo + (size_t)i * d->q_stride + c] += d->scale * S[j] * w.k[(size_t)j * d->kv_stride + c];
                        if (dk) dk[ko + (size_t)j * d->kv_stride + c] += d->scale * S[j] * w.q[(size_t)i * d->q_stride + c];
                    }
                }
            }
        }
    if (dbias)
        for (int b = 0; b < d->B; b++)
            for (int h = 0; h < H; h++) {
                int ld;
                size_t at = pk_attn_probs_at(d, b, h, &ld);
                for (int i = 0; i < attn_query_len(d, b); i++)
                    for (int j = 0; j < Tk; j++)
                        dbias[((size_t)h * Tq + i) * Tk + j] += scratch[at + (size_t)i * ld + j];
            }
}

void pk_attention_decode_naive(float *out, const float *q,
                               const float *kcache, const float *vcache,
                               const pk_attention_desc *d) {
    const int H = d->H, D = d->D;
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < H; h++) {
            int e = b / d->kv_group;
            int klen = d->kv_len ? PK_MAX(0, PK_MIN(d->kv_len[e], d->Tk)) : d->Tk;
            const float *qb = q + (size_t)b * d->q_stride + (size_t)h * D;
            size_t kvrow = d->kv_rows ? (size_t)d->kv_rows[e] : (size_t)e * d->Tk_cap;
            const float *kb = kcache + kvrow * d->kv_stride + (size_t)h * D;
            const float *vb = vcache + kvrow * d->kv_stride + (size_t)h * D;
            float *o = out + (size_t)b * d->out_stride + (size_t)h * D;
            float mx = -INFINITY;
            for (int j = 0; j < klen; j++) {
                float s = 0.0f;
                for (int c = 0; c < D; c++) s += qb[c] * kb[(size_t)j * d->kv_stride + c];
                s = s * d->scale + (d->bias ? d->bias[(size_t)h * d->Tk + j] : 0.0f);
                mx = s > mx ? s : mx;
            }
            float sum = 0.0f;
            for (int c = 0; c < D; c++) o[c] = 0.0f;
            for (int j = 0; j < klen; j++) {
                float s = 0.0f;
                for (int c = 0; c < D; c++) s += qb[c] * kb[(size_t)j * d->kv_stride + c];
                s = s * d->scale + (d->bias ? d->bias[(size_t)h * d->Tk + j] : 0.0f);
                float p = expf(s - mx);
                sum += p;
                for (int c = 0; c < D; c++) o[c] += p * vb[(size_t)j * d->kv_stride + c];
            }
            for (int c = 0; c < D; c++) o[c] = sum > 0.0f ? o[c] / sum : 0.0f;
        }
}

/* ------------------------------------------------------------------ */
/* T5 relative position bias                                          */
/* ------------------------------------------------------------------ */

void pk_position_bias_fwd(float *bias, const float *table, const int *buckets,
                          int H, int Tq, int Tk) {
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Tq; i++)
            for (int j = 0; j < Tk; j++)
                bias[((size_t)h * Tq + i) * Tk + j] = table[(size_t)buckets[(size_t)i * Tk + j] * H + h];
}

void pk_position_bias_bwd(float *dtable, const float *dbias,
                          const int *buckets, int NB, int H, int Tq, int Tk) {
    (void)NB;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Tq; i++)
            for (int j = 0; j < Tk; j++)
                dtable[(size_t)buckets[(size_t)i * Tk + j] * H + h] += dbias[((size_t)h * Tq + i) * Tk + j];
}
