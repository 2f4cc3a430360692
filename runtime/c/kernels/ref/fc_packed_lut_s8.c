/* FULLY_CONNECTED on packed weights in ef_fc_packed_s8's layout (compile --cluster, C_IN and
 * C_OUT multiples of 4): each int16 lane of that layout holds two weights, so one 2 * bits
 * wide index selects it from a lane table built here from the value table (an index per
 * lane, not per weight: the same flash as ef_unpack_s8's). Blocks of four rows at a time are
 * expanded into the ctx scratch after the table and run by ef_fc_packed_s8, the fast DSP
 * kernel where linked; the bytes equal one ef_fc_packed_s8 over the whole matrix. Unpacking
 * costs about as much as the multiply-accumulates it feeds (each FC weight is used once per
 * input row), where ef_fc_lut_s8 + ef_fc_s8 cost several times more. */
#include <string.h>

#include "ef_nn_support.h"

int32_t ef_fc_packed_lut_s8_table_bytes(int32_t bits)
{
    return bits == 4 ? 512 : (bits == 2 ? 1024 : 0);   /* 256 lanes; 256 pairs of lanes */
}

ef_status ef_fc_packed_lut_s8(const ef_ctx *ctx, const ef_fc_packed_params *p,
                              const ef_quant *q, const ef_dims *in, const int8_t *x,
                              const ef_dims *wd, const int8_t *table, const uint8_t *idx,
                              int32_t bits, const int32_t *bias, const ef_dims *out, int8_t *y)
{
    const int32_t tb = ef_fc_packed_lut_s8_table_bytes(bits);
    if (!ctx || !ctx->buf || !p || !q || !in || !x || !wd || !table || !idx || !bias || !out ||
        !y || !tb) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n, rows = ef_nn_fc_rows(in, wd, out);
    const int32_t chunk = depth > 0 ? ((ctx->size - tb) / depth) & ~3 : 0;   /* rows */
    if (rows < 0 || chunk < 4 || (depth & 3) || (oc & 3)) {
        return EF_ERR_ARG;
    }
    /* lane (a, b) = 256 * w_b + w_a with w_b - (w_a < 0) in the high byte (pack_fc); at
     * 2 bits a byte holds two lane indices, so the table maps a byte to both lanes */
    uint16_t l16[16], *lanes = bits == 4 ? (uint16_t *)ctx->buf : l16;
    uint32_t *pairs = (uint32_t *)ctx->buf;
    const int32_t n_vals = 1 << bits;
    for (int32_t b = 0; b < n_vals; ++b) {
        for (int32_t a = 0; a < n_vals; ++a) {
            const int32_t lo = table[a], hi = table[b] - (lo < 0);
            lanes[a | (b << bits)] = (uint16_t)((lo & 0xFF) | ((hi & 0xFF) << 8));
        }
    }
    for (int32_t b = 0; bits == 2 && b < 256; ++b) {
        pairs[b] = l16[b & 0xF] | (uint32_t)l16[b >> 4] << 16;
    }
    uint16_t *w = (uint16_t *)ctx->buf + tb / 2;
    for (int32_t o0 = 0; o0 < oc; o0 += chunk) {
        const int32_t n_oc = oc - o0 < chunk ? oc - o0 : chunk, n = n_oc * depth / 2;   /* lanes */
        /* four lanes a step (n % 8 == 0), from one index word (4 bits) or halfword (2 bits);
         * lanes pair in a word little-endian, as on every supported core */
        if (bits == 4) {
            const uint8_t *s = idx + o0 * depth / 2;
            for (int32_t i = 0; i < n; i += 4) {
                uint32_t b;
                memcpy(&b, s + i, 4);
                const uint32_t v0 = lanes[b & 0xFFu] | (uint32_t)lanes[(b >> 8) & 0xFFu] << 16;
                const uint32_t v1 = lanes[(b >> 16) & 0xFFu] | (uint32_t)lanes[b >> 24] << 16;
                memcpy(w + i, &v0, 4);
                memcpy(w + i + 2, &v1, 4);
            }
        } else {
            const uint8_t *s = idx + o0 * depth / 4;
            for (int32_t i = 0; i < n; i += 4) {
                uint16_t h;
                memcpy(&h, s + i / 2, 2);
                memcpy(w + i, &pairs[h & 0xFFu], 4);
                memcpy(w + i + 2, &pairs[h >> 8], 4);
            }
        }
        ef_fc_packed_params pp = *p;
        pp.rq = p->rq ? p->rq + 3 * o0 : 0;
        const ef_quant qq = {q->mult + o0, q->shift + o0};
        const ef_dims d_in = {1, 1, 1, depth}, d_w = {n_oc, 1, 1, depth};
        const ef_dims d_out = {1, 1, 1, n_oc};
        for (int32_t r = 0; r < rows; ++r) {
            const ef_status s = ef_fc_packed_s8(&pp, &qq, &d_in, x + r * depth, &d_w,
                                                (const int8_t *)w, bias + o0, &d_out,
                                                y + r * oc + o0);
            if (s != EF_OK) {
                return s;
            }
        }
    }
    return EF_OK;
}
