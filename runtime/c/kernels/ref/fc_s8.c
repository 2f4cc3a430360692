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
    int32_t acc[EF_NN_ACC_BLOCK];   /* products < 2^15: exact for C_IN < 2^16 */
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + r * depth;
        int8_t *yp = y + r * oc;
        for (int32_t o0 = 0; o0 < oc; o0 += EF_NN_ACC_BLOCK) {
            const int32_t no = oc - o0 < EF_NN_ACC_BLOCK ? oc - o0 : EF_NN_ACC_BLOCK;
            for (int32_t o = 0; o < no; ++o) {
                acc[o] = bias ? bias[o0 + o] : 0;
            }
            ef_nn_matvec_s8(xp, w + o0 * depth, depth, no, depth, in_off, acc);
            for (int32_t o = 0; o < no; ++o) {
                const int32_t v = EF_REQUANTIZE_AS(EF_FC_SINGLE_ROUNDING, acc[o],
                                                   q->mult[o0 + o], q->shift[o0 + o]);
                yp[o0 + o] = (int8_t)ef_nn_clamp(v + out_off, amin, amax);
            }
        }
    }
    return EF_OK;
}
