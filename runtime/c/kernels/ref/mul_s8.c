/* MUL int8 with 4-D broadcasting (TFLite reference_integer_ops::Mul semantics). */
#include "ef_nn_support.h"

static inline int8_t ef_nn_mul_one(const ef_mul_params *p, int32_t a, int32_t b)
{
    /* |x + offset| <= 255: the product fits 17 bits */
    const int32_t prod = (a + p->in1_offset) * (b + p->in2_offset);
    const int32_t v = EF_REQUANTIZE_AS(EF_MUL_SINGLE_ROUNDING, prod, p->out_mult, p->out_shift)
                      + p->out_offset;
    return (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
}

ef_status ef_mul_s8(const ef_mul_params *pp,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    if (!pp || !in1 || !x1 || !in2 || !x2 || !out || !y) {
        return EF_ERR_ARG;
    }
    /* a local copy: int8 stores to y could alias *pp and force reloads every element */
    const ef_mul_params prm = *pp;
    const ef_mul_params *p = &prm;
    if (ef_nn_same_dims(in1, out) && ef_nn_same_dims(in2, out)) {
        const int32_t n = ef_nn_numel(out);
        for (int32_t i = 0; i < n; ++i) {
            y[i] = ef_nn_mul_one(p, x1[i], x2[i]);
        }
        return EF_OK;
    }
    int32_t s1[4], s2[4];
    if (!ef_nn_bcast_strides(in1, out, s1) || !ef_nn_bcast_strides(in2, out, s2)) {
        return EF_ERR_ARG;
    }
    EF_NN_BCAST_FOR(out, s1, s2, i1, i2, *y++ = ef_nn_mul_one(p, x1[i1], x2[i2]));
    return EF_OK;
}
