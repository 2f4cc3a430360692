/* SOFTMAX int8 -> int8 over the last axis: TFLite's reference quantized Softmax, i.e.
 * gemmlowp fixed-point exp_on_negative_values on Q5.26 input differences, a Q12.19 sum,
 * one_over_one_plus_x_for_x_in_0_1 for the reciprocal, and a rounding shift to Q0.8. */
#include "ef_nn_support.h"

/* FixedPoint<int32, 0> product: the raw SaturatingRoundingDoublingHighMul. */
#define EF_FX_MUL(a, b) ef_srdhm((a), (b))

/* gemmlowp SaturatingRoundingMultiplyByPOT<exp> for exp > 0: saturating left shift. */
static inline int32_t ef_nn_sat_shl(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8). */
static int32_t ef_nn_exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28);              /* a + 1/8 */
    const int32_t x2 = EF_FX_MUL(x, x);
    const int32_t x3 = EF_FX_MUL(x2, x);
    const int32_t x4 = EF_FX_MUL(x2, x2);
    const int32_t x4_over_4 = ef_rdbp(x4, 2);
    const int32_t poly = ef_rdbp(EF_FX_MUL(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + EF_FX_MUL(constant_term, x + poly);
}

/* gemmlowp exp_on_negative_values for a Q5.26 input <= 0; result Q0.31. */
static int32_t ef_nn_exp_on_negative_values(int32_t a)
{
    enum { kIntegerBits = 5, kFractionalBits = 26 };
    const int32_t one_quarter = 1 << (kFractionalBits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    int32_t result = ef_nn_exp_quarter(ef_nn_sat_shl(a_mod_quarter_minus_one_quarter,
                                                     kIntegerBits));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    /* barrel shifter: multiply by exp(-2^k) for every set bit k of the remainder */
    static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308,
                                     39332535, 720401, 242};
    for (int32_t k = 0; k < 7; ++k) {
        if (remainder & (1 << (kFractionalBits - 2 + k))) {
            result = EF_FX_MUL(result, mults[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out (Newton-Raphson). */
static int32_t ef_nn_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;   /* RoundingHalfSum(a, One) */
    const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810, cneg32_17 = -1010580540;  /* Q2.29 */
    int32_t x = c48_17 + EF_FX_MUL(half_den, cneg32_17);
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t hx = EF_FX_MUL(half_den, x);                /* Q2.29 */
        const int32_t one_minus = (1 << 29) - hx;                 /* Q2.29 */
        x = x + ef_nn_sat_shl(EF_FX_MUL(x, one_minus), 2);        /* Q4.27 -> Q2.29 */
    }
    return ef_nn_sat_shl(x, 1);                                   /* Q1.30 -> Q0.31 */
}

static inline int32_t ef_nn_clz32(uint32_t v)
{
    int32_t n = 0;
    if (v == 0) {
        return 32;
    }
    while (!(v & 0x80000000u)) {
        v <<= 1;
        ++n;
    }
    return n;
}

ef_status ef_softmax_s8(const ef_softmax_params *p,
                        const ef_dims *in, const int8_t *x,
                        const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)
        || in->c != out->c || in->c <= 0) {
        return EF_ERR_ARG;
    }
    const int32_t depth = in->c, rows = ef_nn_numel(in) / depth;
    const int32_t mult = p->in_mult, lshift = p->in_left_shift, diff_min = p->diff_min;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + r * depth;
        int8_t *yp = y + r * depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = xp[c] > max_in_row ? xp[c] : max_in_row;
        }
        /* Q12.19 sum of at most 2^12 terms < 1 each: no overflow for depth < 4096 */
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)xp[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t scaled = EF_REQUANTIZE_AS(EF_SOFTMAX_SINGLE_ROUNDING, diff, mult,
                                                        lshift);
                sum_of_exps += ef_rdbp(ef_nn_exp_on_negative_values(scaled), 12);
            }
        }
        /* GetReciprocal(sum, 12 integer bits) */
        const int32_t headroom_plus_one = ef_nn_clz32((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = ef_nn_one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)xp[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t scaled = EF_REQUANTIZE_AS(EF_SOFTMAX_SINGLE_ROUNDING, diff, mult,
                                                        lshift);
                const int32_t e = ef_nn_exp_on_negative_values(scaled);
                const int32_t unsat = ef_rdbp(EF_FX_MUL(shifted_scale, e),
                                                 num_bits_over_unit + 31 - 8);
                yp[c] = (int8_t)ef_nn_clamp(unsat - 128, -128, 127);
            } else {
                yp[c] = -128;
            }
        }
    }
    return EF_OK;
}
