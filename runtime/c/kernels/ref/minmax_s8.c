/* MAXIMUM and MINIMUM int8 with 4-D broadcasting: TFLite's kernels compare the raw bytes
 * (operands and output share one quantization), so no arithmetic beyond the comparison. */
#include "ef_nn_support.h"

static ef_status ef_nn_minmax(int32_t want_max, const ef_dims *in1, const int8_t *x1,
                              const ef_dims *in2, const int8_t *x2,
                              const ef_dims *out, int8_t *y)
{
    if (!in1 || !x1 || !in2 || !x2 || !out || !y) {
        return EF_ERR_ARG;
    }
    int32_t s1[4], s2[4];
    if (!ef_nn_bcast_strides(in1, out, s1) || !ef_nn_bcast_strides(in2, out, s2)) {
        return EF_ERR_ARG;
    }
    for (int32_t b = 0; b < out->n; ++b) {
        for (int32_t h = 0; h < out->h; ++h) {
            for (int32_t w = 0; w < out->w; ++w) {
                const int8_t *a = x1 + b * s1[0] + h * s1[1] + w * s1[2];
                const int8_t *e = x2 + b * s2[0] + h * s2[1] + w * s2[2];
                for (int32_t c = 0; c < out->c; ++c) {
                    const int8_t u = a[c * s1[3]], v = e[c * s2[3]];
                    *y++ = want_max ? (u > v ? u : v) : (u < v ? u : v);
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_maximum_s8(const ef_dims *in1, const int8_t *x1, const ef_dims *in2,
                        const int8_t *x2, const ef_dims *out, int8_t *y)
{
    return ef_nn_minmax(1, in1, x1, in2, x2, out, y);
}

ef_status ef_minimum_s8(const ef_dims *in1, const int8_t *x1, const ef_dims *in2,
                        const int8_t *x2, const ef_dims *out, int8_t *y)
{
    return ef_nn_minmax(0, in1, x1, in2, x2, out, y);
}
