/* Private helpers of the 16x8 kernels: ref/nn_s16.c, and dsp/nn_s16.c, which compiles the
 * reference beside its own CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED loops. The
 * argument checks and the requantize-store tail live here once, so both sets agree. */
#ifndef EF_NN_S16_H
#define EF_NN_S16_H

#include "ef_kernels_s16.h"
#include "ef_nn_support.h"

/* requantize a 16x8 accumulator: int64 form, or the op's Q31 form for int32 semantics */
static inline int32_t ef_nn_s16_rq(int64_t acc, int32_t acc32, int32_t single, int32_t mult,
                                   int32_t shift)
{
    if (acc32) {
        return EF_REQUANTIZE_AS(single, (int32_t)acc, mult, shift);
    }
    return ef_requantize64(acc, mult, shift);
}

/* output channel o of a conv / depthwise / FC from its biased sum: clamp(requantize(acc)) */
static inline int16_t ef_nn_s16_store(int64_t acc, int32_t o, int32_t acc32, int32_t single,
                                      const ef_quant *q, const ef_act *act)
{
    const int32_t v = ef_nn_s16_rq(acc, acc32, single, q->mult[o], q->shift[o]);
    return (int16_t)ef_nn_clamp(v, act->min, act->max);
}

/* the same from the sum of products, adding bias[o] (bias may be absent) */
static inline int16_t ef_nn_s16_out(int64_t acc, const int64_t *bias, int32_t o, int32_t acc32,
                                    int32_t single, const ef_quant *q, const ef_act *act)
{
    return ef_nn_s16_store(bias ? acc + bias[o] : acc, o, acc32, single, q, act);
}

/* 1 when the arguments describe a 16x8 conv: [N,H,W,C_IN] * [C_OUT,KH,KW,C_IN] */
static inline int ef_nn_s16_conv_ok(const ef_conv_s16_params *p, const ef_quant *q,
                                    const ef_dims *in, const int16_t *x, const ef_dims *wd,
                                    const int8_t *w, const ef_dims *out, const int16_t *y)
{
    return p && q && in && x && wd && w && out && y && wd->c == in->c && wd->n == out->c
           && in->n == out->n;
}

/* 1 when the arguments describe a 16x8 depthwise conv: out->c = in->c * multiplier */
static inline int ef_nn_s16_dw_ok(const ef_dw_s16_params *p, const ef_quant *q,
                                  const ef_dims *in, const int16_t *x, const ef_dims *wd,
                                  const int8_t *w, const ef_dims *out, const int16_t *y)
{
    return p && q && in && x && wd && w && out && y && p->depth_multiplier >= 1
           && wd->c == out->c && in->c * p->depth_multiplier == out->c && in->n == out->n;
}

/* the rows of C_IN = wd->c values a 16x8 FC takes, or -1 when the arguments do not fit */
static inline int32_t ef_nn_s16_fc_rows(const ef_fc_s16_params *p, const ef_quant *q,
                                        const ef_dims *in, const int16_t *x, const ef_dims *wd,
                                        const int8_t *w, const ef_dims *out, const int16_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return -1;
    }
    const int32_t cin = wd->c, cout = wd->n;
    if (cin <= 0 || out->c != cout || ef_nn_numel(in) % cin != 0
        || ef_nn_numel(in) / cin * cout != ef_nn_numel(out)) {
        return -1;
    }
    return ef_nn_numel(in) / cin;
}

#endif /* EF_NN_S16_H */
