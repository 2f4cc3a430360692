/* ADD and SUB int8 with 4-D broadcasting (TFLite reference_integer_ops::Add semantics). */
#include "ef_nn_support.h"

/* sign = +1 (ADD) or -1 (SUB); single = that op's rounding (a compile-time constant) */
static inline int8_t ef_nn_add_one(const ef_add_params *p, int32_t a, int32_t b, int32_t sign,
                                   int32_t single)
{
    /* (x + offset) fits 9 bits; << left_shift (20) stays below 2^29: no overflow */
    const int32_t a1 = (int32_t)((uint32_t)(a + p->in1_offset) << p->left_shift);
    const int32_t b1 = (int32_t)((uint32_t)(b + p->in2_offset) << p->left_shift);
    const int32_t sa = EF_REQUANTIZE_AS(single, a1, p->in1_mult, p->in1_shift);
    const int32_t sb = EF_REQUANTIZE_AS(single, b1, p->in2_mult, p->in2_shift);
    const int32_t raw = sa + sign * sb;
    const int32_t v = EF_REQUANTIZE_AS(single, raw, p->out_mult, p->out_shift) + p->out_offset;
    return (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
}

/* Large same-shape inputs: each input's rescaled value depends on its int8 byte only, so
 * tabulate both (2 x 256 int32 in the ctx scratch, 2 KiB) and requantize once per element.
 * The table entries are exactly the values ef_nn_add_one computes. */
#define EF_NN_ADD_TABLE_MIN 1024

int32_t ef_add_s8_scratch_size(const ef_dims *in1, const ef_dims *in2, const ef_dims *out)
{
    return ef_nn_same_dims(in1, out) && ef_nn_same_dims(in2, out)
           && ef_nn_numel(out) >= EF_NN_ADD_TABLE_MIN ? 2 * 256 * 4 : 0;
}

static void ef_nn_addsub_table(const ef_add_params *pp, int32_t sign, int32_t single,
                               const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n,
                               int32_t *t1)
{
    /* a local copy: int8 stores to y could alias *pp and force reloads every element */
    const ef_add_params prm = *pp;
    const ef_add_params *p = &prm;
    int32_t *t2 = t1 + 256;
    for (int32_t v = -128; v < 128; ++v) {
        const int32_t a1 = (int32_t)((uint32_t)(v + p->in1_offset) << p->left_shift);
        const int32_t b1 = (int32_t)((uint32_t)(v + p->in2_offset) << p->left_shift);
        t1[v + 128] = EF_REQUANTIZE_AS(single, a1, p->in1_mult, p->in1_shift);
        t2[v + 128] = sign * EF_REQUANTIZE_AS(single, b1, p->in2_mult, p->in2_shift);
    }
    for (int32_t i = 0; i < n; ++i) {
        const int32_t raw = t1[(int32_t)x1[i] + 128] + t2[(int32_t)x2[i] + 128];
        const int32_t v = EF_REQUANTIZE_AS(single, raw, p->out_mult, p->out_shift)
                          + p->out_offset;
        y[i] = (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
    }
}

static inline ef_status ef_nn_addsub(const ef_ctx *ctx, const ef_add_params *pp,
                              int32_t sign, int32_t single,
                              const ef_dims *in1, const int8_t *x1,
                              const ef_dims *in2, const int8_t *x2,
                              const ef_dims *out, int8_t *y)
{
    if (!pp || !in1 || !x1 || !in2 || !x2 || !out || !y) {
        return EF_ERR_ARG;
    }
    const ef_add_params prm = *pp;     /* see ef_nn_addsub_table */
    const ef_add_params *p = &prm;
    if (ef_nn_same_dims(in1, out) && ef_nn_same_dims(in2, out)) {
        const int32_t n = ef_nn_numel(out);
        if (n >= EF_NN_ADD_TABLE_MIN && ctx && ctx->buf && ((uintptr_t)ctx->buf & 3) == 0
            && ctx->size >= ef_add_s8_scratch_size(in1, in2, out)) {
            ef_nn_addsub_table(p, sign, single, x1, x2, y, n, (int32_t *)ctx->buf);
            return EF_OK;
        }
        for (int32_t i = 0; i < n; ++i) {
            y[i] = ef_nn_add_one(p, x1[i], x2[i], sign, single);
        }
        return EF_OK;
    }
    int32_t s1[4], s2[4];
    if (!ef_nn_bcast_strides(in1, out, s1) || !ef_nn_bcast_strides(in2, out, s2)) {
        return EF_ERR_ARG;
    }
    EF_NN_BCAST_FOR(out, s1, s2, i1, i2,
                    *y++ = ef_nn_add_one(p, x1[i1], x2[i2], sign, single));
    return EF_OK;
}

ef_status ef_add_s8(const ef_ctx *ctx, const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    return ef_nn_addsub(ctx, p, 1, EF_ADD_SINGLE_ROUNDING, in1, x1, in2, x2, out, y);
}

ef_status ef_sub_s8(const ef_ctx *ctx, const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    return ef_nn_addsub(ctx, p, -1, EF_SUB_SINGLE_ROUNDING, in1, x1, in2, x2, out, y);
}
