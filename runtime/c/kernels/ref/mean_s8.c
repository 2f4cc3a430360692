/* MEAN int8 over any subset of the NHWC dims (TFLite reference_ops::QuantizedMeanOrSum in its
 * integer form: 1/count is folded into (mult, shift) on the host). */
#include "ef_nn_support.h"

ef_status ef_mean_s8(const ef_mean_params *p,
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
                    /* |x| <= 128 per element: the int32 sum is exact below 2^24 elements */
                    int32_t sum = 0;
                    for (int32_t i = 0; i < rd[0]; ++i) {
                        for (int32_t j = 0; j < rd[1]; ++j) {
                            for (int32_t k = 0; k < rd[2]; ++k) {
                                const int8_t *xp = base + i * st[0] + j * st[1] + k * st[2];
                                for (int32_t l = 0; l < rd[3]; ++l) {
                                    sum += xp[l];
                                }
                            }
                        }
                    }
                    const int32_t v = EF_REQUANTIZE_AS(EF_MEAN_SINGLE_ROUNDING,
                                                       sum + p->in_offset * count,
                                                       p->mult, p->shift) + p->out_offset;
                    *y++ = (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}
