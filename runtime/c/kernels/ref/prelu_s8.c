/* PRELU int8 (TFLite reference_ops::BroadcastPrelu4DSlow). */
#include "ef_nn_support.h"

ef_status ef_prelu_s8(const ef_prelu_params *p,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *ad, const int8_t *alpha,
                      const ef_dims *out, int8_t *y)
{
    int32_t sa[4];
    if (!p || !in || !x || !ad || !alpha || !out || !y || !ef_nn_same_dims(in, out) ||
        !ef_nn_bcast_strides(ad, out, sa)) {
        return EF_ERR_ARG;
    }
    for (int32_t b = 0; b < out->n; ++b) {
        for (int32_t h = 0; h < out->h; ++h) {
            for (int32_t w = 0; w < out->w; ++w) {
                const int32_t ia = b * sa[0] + h * sa[1] + w * sa[2];
                for (int32_t c = 0; c < out->c; ++c) {
                    const int32_t v = (int32_t)*x++ + p->in_offset;
                    int32_t r;
                    if (v >= 0) {
                        r = EF_REQUANTIZE_AS(EF_PRELU_SINGLE_ROUNDING, v, p->mult1, p->shift1);
                    } else {
                        /* |v| <= 255, |alpha + offset| <= 255: the product fits int32 */
                        const int32_t av = (int32_t)alpha[ia + c * sa[3]] + p->alpha_offset;
                        r = EF_REQUANTIZE_AS(EF_PRELU_SINGLE_ROUNDING, v * av, p->mult2,
                                             p->shift2);
                    }
                    *y++ = (int8_t)ef_nn_clamp(r + p->out_offset, -128, 127);
                }
            }
        }
    }
    return EF_OK;
}
