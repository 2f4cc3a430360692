/* MAXIMUM and MINIMUM int8 with 4-D broadcasting: TFLite's kernels compare the raw bytes
 * (operands and output share one quantization), so no arithmetic beyond the comparison. */
#include "ef_nn_support.h"

static inline int8_t ef_nn_pick(int32_t want_max, int8_t u, int8_t v)
{
    return want_max ? (u > v ? u : v) : (u < v ? u : v);
}

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
    EF_NN_BCAST_FOR(out, s1, s2, i1, i2, *y++ = ef_nn_pick(want_max, x1[i1], x2[i2]));
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
