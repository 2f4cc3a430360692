/* FULLY_CONNECTED on packed weights (compile --cluster): the weight rows (output channels)
 * are unpacked from their value table + `bits`-wide indices a few at a time into the ctx
 * scratch, and ef_fc_s8 (the reference or the DSP one, whichever is linked) runs those
 * output channels for every input row. Output channels are independent, so the bytes equal
 * one ef_fc_s8 over the whole unpacked matrix, while the scratch needs only ctx->size
 * bytes (at least one row of C_IN), not the whole matrix. */
#include "ef_nn_support.h"

ef_status ef_fc_lut_s8(const ef_ctx *ctx, const ef_fc_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x, const ef_dims *wd,
                       const int8_t *table, const uint8_t *idx, int32_t bits,
                       const int32_t *bias, const ef_dims *out, int8_t *y)
{
    if (!ctx || !ctx->buf || !p || !q || !in || !x || !wd || !table || !idx || !out || !y ||
        (bits != 4 && bits != 2)) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n, rows = ef_nn_fc_rows(in, wd, out);
    const int32_t chunk = depth > 0 ? ctx->size / depth : 0;
    if (rows < 0 || chunk < 1) {
        return EF_ERR_ARG;
    }
    int8_t *w = (int8_t *)ctx->buf;
    const uint32_t mask = (1u << bits) - 1u;
    for (int32_t o0 = 0; o0 < oc; o0 += chunk) {
        const int32_t n_oc = oc - o0 < chunk ? oc - o0 : chunk;
        const int32_t first = o0 * depth, n = n_oc * depth;
        if (((uint32_t)first * (uint32_t)bits & 7u) == 0u) {   /* chunk starts on a byte */
            (void)ef_unpack_s8(table, idx + (uint32_t)first * (uint32_t)bits / 8u, n, bits, w);
        } else {
            for (int32_t i = 0; i < n; ++i) {   /* index i of element first + i */
                const uint32_t bit = (uint32_t)(first + i) * (uint32_t)bits;
                w[i] = table[(idx[bit >> 3] >> (bit & 7u)) & mask];
            }
        }
        const ef_quant qq = {q->mult + o0, q->shift + o0};
        const ef_dims d_in = {1, 1, 1, depth}, d_w = {n_oc, 1, 1, depth};
        const ef_dims d_out = {1, 1, 1, n_oc};
        for (int32_t r = 0; r < rows; ++r) {
            const ef_status s = ef_fc_s8(p, &qq, &d_in, x + r * depth, &d_w, w,
                                         bias ? bias + o0 : 0, &d_out, y + r * oc + o0);
            if (s != EF_OK) {
                return s;
            }
        }
    }
    return EF_OK;
}
