/* QUANTIZE int8 -> int8, RELU, RELU6: requantize + clamp (TFLite Requantize / ReluQuantized). */
#include "ef_nn_support.h"

static inline ef_status ef_nn_requant(const ef_requant_params *p, int32_t single,
                                      const ef_dims *in, const int8_t *x,
                                      const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    const int32_t n = ef_nn_numel(out);
    const int32_t in_off = p->in_offset, out_off = p->out_offset, mult = p->mult;
    const int32_t shift = p->shift, amin = p->act.min, amax = p->act.max;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t v = EF_REQUANTIZE_AS(single, (int32_t)x[i] + in_off, mult, shift);
        y[i] = (int8_t)ef_nn_clamp(v + out_off, amin, amax);
    }
    return EF_OK;
}

ef_status ef_quantize_s8(const ef_requant_params *p,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *out, int8_t *y)
{
    return ef_nn_requant(p, EF_QUANTIZE_SINGLE_ROUNDING, in, x, out, y);
}

ef_status ef_relu_s8(const ef_requant_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y)
{
    return ef_nn_requant(p, EF_RELU_SINGLE_ROUNDING, in, x, out, y);
}

ef_status ef_relu6_s8(const ef_requant_params *p,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *out, int8_t *y)
{
    return ef_nn_requant(p, EF_RELU6_SINGLE_ROUNDING, in, x, out, y);
}
