/* FULLY_CONNECTED int8 on compiler-packed weights (layout: edgeforge.codegen.c.pack_fc).
 * The compiler folded in_offset * sum(w) into the bias, so the dot products take x as is. */
#include "ef_nn_support.h"

static void fc_store(const ef_fc_packed_params *p, const ef_quant *q, int32_t o, int32_t acc,
                     int8_t *y)
{
    acc = EF_REQUANTIZE_AS(EF_FC_SINGLE_ROUNDING, acc, q->mult[o], q->shift[o]);
    y[o] = (int8_t)ef_nn_clamp(acc + p->out_offset, p->act.min, p->act.max);
}

ef_status ef_fc_packed_s8(const ef_fc_packed_params *p, const ef_quant *q,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *wd, const int8_t *w, const int32_t *bias,
                          const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !bias || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n, rows = ef_nn_fc_rows(in, wd, out);
    if (rows < 0) {
        return EF_ERR_ARG;
    }
    const int32_t d4 = depth & ~3, tail = depth - d4, oc4 = oc & ~3;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + r * depth, *wp = w;
        int8_t *yp = y + r * oc;
        for (int32_t o = 0; o < oc4; o += 4) {
            int32_t acc[4] = {bias[o], bias[o + 1], bias[o + 2], bias[o + 3]};
            for (int32_t k = 0; k < d4; k += 4, wp += 16) {
                for (int32_t v = 0; v < 4; ++v) {         /* word v: rows (ra, ra + 1) */
                    const int32_t ra = 2 * (v >> 1), k0 = k + (v & 1);
                    for (int32_t l = 0; l < 2; ++l) {     /* lane l: input k0 + 2 l */
                        const int32_t e = (int8_t)wp[4 * v + 2 * l];
                        const int32_t f = (int8_t)wp[4 * v + 2 * l + 1] + (e < 0);
                        acc[ra] += (int32_t)xp[k0 + 2 * l] * e;
                        acc[ra + 1] += (int32_t)xp[k0 + 2 * l] * f;
                    }
                }
            }
            for (int32_t j = 0; j < 4; ++j, wp += tail) {
                for (int32_t i = 0; i < tail; ++i) {
                    acc[j] += (int32_t)xp[d4 + i] * wp[i];
                }
                fc_store(p, q, o + j, acc[j], yp);
            }
        }
        for (int32_t o = oc4; o < oc; ++o, wp += depth) {
            int32_t acc = bias[o];
            for (int32_t i = 0; i < depth; ++i) {
                acc += (int32_t)xp[i] * wp[i];
            }
            fc_store(p, q, o, acc, yp);
        }
    }
    return EF_OK;
}
