/* SQUARED_DIFFERENCE int8 with 4-D broadcasting (TFLite squared_difference.cc semantics). */
#include "ef_nn_support.h"

static inline int8_t ef_nn_sqdiff_one(const ef_add_params *p, int32_t a, int32_t b)
{
    /* (x + offset) fits 9 bits; << 7 stays below 2^16, the scaled difference below 2^15,
     * so its square fits int32 */
    const int32_t a1 = (int32_t)((uint32_t)(a + p->in1_offset) << p->left_shift);
    const int32_t b1 = (int32_t)((uint32_t)(b + p->in2_offset) << p->left_shift);
    const int32_t d = EF_REQUANTIZE_AS(EF_SQUARED_DIFFERENCE_SINGLE_ROUNDING, a1, p->in1_mult,
                                       p->in1_shift)
                      - EF_REQUANTIZE_AS(EF_SQUARED_DIFFERENCE_SINGLE_ROUNDING, b1,
                                         p->in2_mult, p->in2_shift);
    const int32_t v = EF_REQUANTIZE_AS(EF_SQUARED_DIFFERENCE_SINGLE_ROUNDING, d * d,
                                       p->out_mult, p->out_shift) + p->out_offset;
    return (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
}

ef_status ef_squared_difference_s8(const ef_add_params *p,
                                   const ef_dims *in1, const int8_t *x1,
                                   const ef_dims *in2, const int8_t *x2,
                                   const ef_dims *out, int8_t *y)
{
    int32_t s1[4], s2[4];
    if (!p || !in1 || !x1 || !in2 || !x2 || !out || !y ||
        !ef_nn_bcast_strides(in1, out, s1) || !ef_nn_bcast_strides(in2, out, s2)) {
        return EF_ERR_ARG;
    }
    EF_NN_BCAST_FOR(out, s1, s2, i1, i2, *y++ = ef_nn_sqdiff_one(p, x1[i1], x2[i2]));
    return EF_OK;
}
