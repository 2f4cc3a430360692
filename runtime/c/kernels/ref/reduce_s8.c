/* SUM, REDUCE_MAX, REDUCE_MIN int8 over any subset of the NHWC dims (TFLite reduce.cc:
 * QuantizedMeanOrSum with compute_sum; ReduceGeneric max/min on the bytes). */
#include "ef_nn_support.h"

enum { EF_NN_RED_SUM, EF_NN_RED_MAX, EF_NN_RED_MIN };

static ef_status ef_nn_reduce(const ef_mean_params *p, int mode,
                              const ef_dims *in, const int8_t *x,
                              const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y) {
        return EF_ERR_ARG;
    }
    int32_t od[4], rd[4], st[4];
    const int32_t count = ef_nn_reduce_geometry(p->reduce, in, out, od, rd, st);
    if (count <= 0) {
        return EF_ERR_ARG;
    }
    for (int32_t a = 0; a < od[0]; ++a) {
        for (int32_t b = 0; b < od[1]; ++b) {
            for (int32_t c = 0; c < od[2]; ++c) {
                for (int32_t d = 0; d < od[3]; ++d) {
                    const int8_t *base = x + a * st[0] + b * st[1] + c * st[2] + d * st[3];
                    /* sum: |x| <= 128 per element, exact in int32 below 2^24 elements */
                    int32_t acc = mode == EF_NN_RED_SUM ? 0 : base[0];
                    for (int32_t i = 0; i < rd[0]; ++i) {
                        for (int32_t j = 0; j < rd[1]; ++j) {
                            for (int32_t k = 0; k < rd[2]; ++k) {
                                const int8_t *xp = base + i * st[0] + j * st[1] + k * st[2];
                                for (int32_t l = 0; l < rd[3]; ++l) {
                                    const int32_t v = xp[l];
                                    acc = mode == EF_NN_RED_SUM ? acc + v
                                          : mode == EF_NN_RED_MAX ? (v > acc ? v : acc)
                                          : (v < acc ? v : acc);
                                }
                            }
                        }
                    }
                    if (mode == EF_NN_RED_SUM) {
                        acc = EF_REQUANTIZE_AS(EF_SUM_SINGLE_ROUNDING, acc + p->in_offset * count,
                                               p->mult, p->shift) + p->out_offset;
                    }
                    *y++ = (int8_t)ef_nn_clamp(acc, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_sum_s8(const ef_mean_params *p, const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_SUM, in, x, out, y);
}

ef_status ef_reduce_max_s8(const ef_mean_params *p, const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_MAX, in, x, out, y);
}

ef_status ef_reduce_min_s8(const ef_mean_params *p, const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_MIN, in, x, out, y);
}
