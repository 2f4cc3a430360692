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
    const ef_act act = p->act;
    for (int32_t r = 0; r < rows; ++r) {
        ef_nn_dense_s8(x + r * depth, depth, w, bias, oc, in_off, out_off, q, act,
                       EF_FC_SINGLE_ROUNDING, y + r * oc);
    }
    return EF_OK;
}
