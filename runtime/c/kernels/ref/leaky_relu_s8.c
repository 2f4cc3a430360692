/* LEAKY_RELU int8 (TFLite reference QuantizeLeakyRelu semantics). */
#include "ef_nn_support.h"

ef_status ef_leaky_relu_s8(const ef_leaky_relu_params *p,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    const int32_t n = ef_nn_numel(out);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t v = (int32_t)x[i] + p->in_offset;
        const int32_t r = v >= 0 ? ef_requantize(v, p->id_mult, p->id_shift)
                                 : ef_requantize(v, p->alpha_mult, p->alpha_shift);
        y[i] = (int8_t)ef_nn_clamp(r + p->out_offset, -128, 127);
    }
    return EF_OK;
}
