/* LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, SQRT, RSQRT, EXP, GELU int8: the op is a function of one int8 value, so a
 * 256-entry table computed on the host by the same integer algorithm the runtime uses
 * (sdk/qparams.py) reproduces its bytes exactly. */
#include "ef_nn_support.h"

static ef_status ef_nn_lut_op(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                              const ef_dims *out, int8_t *y)
{
    if (!p || !p->lut || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    ef_nn_lut_s8(p->lut, x, y, ef_nn_numel(out));
    return EF_OK;
}

ef_status ef_logistic_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                         const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_tanh_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_hard_swish_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_leaky_relu_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_sqrt_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_rsqrt_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                      const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_exp_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}

ef_status ef_gelu_s8(const ef_lut_params *p, const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y)
{
    return ef_nn_lut_op(p, in, x, out, y);
}
