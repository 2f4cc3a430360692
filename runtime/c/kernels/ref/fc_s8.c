/* FULLY_CONNECTED int8 (TFLite reference FullyConnected / per-channel semantics). */
#include "ef_nn_support.h"

ef_status ef_fc_s8(const ef_fc_params *p, const ef_quant *q,
                   const ef_dims *in, const int8_t *x,
                   const ef_dims *wd, const int8_t *w, const int32_t *bias,
                   const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n;
    const int32_t rows = ef_nn_numel(in) / depth;
    if (ef_nn_numel(in) != rows * depth || ef_nn_numel(out) != rows * oc) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const int32_t amin = p->act.min, amax = p->act.max;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + r * depth;
        int8_t *yp = y + r * oc;
        for (int32_t o = 0; o < oc; ++o) {
            const int8_t *wp = w + o * depth;
            /* products < 2^15: exact for C_IN < 2^16 */
            int32_t acc = 0;
            for (int32_t i = 0; i < depth; ++i) {
                acc += ((int32_t)xp[i] + in_off) * (int32_t)wp[i];
            }
            if (bias) {
                acc += bias[o];
            }
            acc = EF_REQUANTIZE_AS(EF_FC_SINGLE_ROUNDING, acc, q->mult[o], q->shift[o]) + out_off;
            yp[o] = (int8_t)ef_nn_clamp(acc, amin, amax);
        }
    }
    return EF_OK;
}
