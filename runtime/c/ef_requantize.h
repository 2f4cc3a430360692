/**
 * @file ef_requantize.h
 * @brief THE requantization helper and the gemmlowp fixed-point primitives it builds on.
 *
 * ef_requantize() is TFLite's MultiplyByQuantizedMultiplier; its rounding is chosen by ONE
 * macro, EF_SINGLE_ROUNDING, exactly as sdk/qmath.requantize picks it (and as
 * TFLITE_SINGLE_ROUNDING does in TFLite's common.h):
 *   0 (default): double rounding, SaturatingRoundingDoublingHighMul then RoundingDivideByPOT
 *                (TFLM's reference kernels; qmath numerics "tflm");
 *   1          : single rounding, one 64-bit multiply and one rounding shift (qmath "litert").
 *
 * A runtime may round differently per op: ai-edge-litert's BUILTIN_REF kernels double-round
 * everywhere except int8 FULLY_CONNECTED, which single-rounds (measured; the table is
 * sdk/qparams.SINGLE_ROUNDING_OPS). So each kernel requantizes with
 * EF_REQUANTIZE_AS(EF_<OP>_SINGLE_ROUNDING, ...), and EF_<OP>_SINGLE_ROUNDING defaults to
 * EF_SINGLE_ROUNDING. The C generator writes the profile's values into the copy of this
 * header it ships (the EF_PROFILE block below), and model.c checks them with #error.
 */
#ifndef EF_REQUANTIZE_H
#define EF_REQUANTIZE_H

#include <stdint.h>

/* EF_PROFILE: the C generator replaces this line with the compiled profile's defaults */

#ifndef EF_SINGLE_ROUNDING
#define EF_SINGLE_ROUNDING 0
#endif

/* per-op rounding, one macro per IR op that requantizes (default: EF_SINGLE_ROUNDING) */
#ifndef EF_CONV2D_SINGLE_ROUNDING
#define EF_CONV2D_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_DWCONV2D_SINGLE_ROUNDING
#define EF_DWCONV2D_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_FC_SINGLE_ROUNDING
#define EF_FC_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_MEAN_SINGLE_ROUNDING
#define EF_MEAN_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_ADD_SINGLE_ROUNDING
#define EF_ADD_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_SUB_SINGLE_ROUNDING
#define EF_SUB_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_MUL_SINGLE_ROUNDING
#define EF_MUL_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_QUANTIZE_SINGLE_ROUNDING
#define EF_QUANTIZE_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_RELU_SINGLE_ROUNDING
#define EF_RELU_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_RELU6_SINGLE_ROUNDING
#define EF_RELU6_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_SOFTMAX_SINGLE_ROUNDING
#define EF_SOFTMAX_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_SQUARED_DIFFERENCE_SINGLE_ROUNDING
#define EF_SQUARED_DIFFERENCE_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_MATMUL_SINGLE_ROUNDING
#define EF_MATMUL_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_SUM_SINGLE_ROUNDING
#define EF_SUM_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_PRELU_SINGLE_ROUNDING
#define EF_PRELU_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif
#ifndef EF_TRANSPOSE_CONV_SINGLE_ROUNDING
#define EF_TRANSPOSE_CONV_SINGLE_ROUNDING EF_SINGLE_ROUNDING
#endif

/**
 * gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating MIN*MIN.
 * gemmlowp computes trunc((ab + nudge) / 2^31) with nudge = 2^30 for ab >= 0 and 1 - 2^30
 * below; for ab < 0 that truncation is ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) /
 * 2^31), the same expression as for ab >= 0. So one multiply-accumulate and one arithmetic
 * shift (SMLAL + shift on Cortex-M) give gemmlowp's bits exactly.
 */
static inline int32_t ef_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/**
 * gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero, exponent >= 0.
 * Exponents above 31 (softmax of very wide rows) are computed exactly in 64 bits, as
 * sdk.qmath.rounding_divide_by_pot does (C++'s int32 shift would be undefined there).
 */
static inline int32_t ef_rdbp(int32_t x, int32_t exponent)
{
    if (exponent > 31) {
        const int64_t m = ((int64_t)1 << (exponent < 62 ? exponent : 62)) - 1;
        const int64_t r = (int64_t)x & m;
        const int64_t t = (m >> 1) + (x < 0 ? 1 : 0);
        return (int32_t)(((int64_t)x >> (exponent < 62 ? exponent : 62)) + (r > t ? 1 : 0));
    }
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/** Single rounding: (acc * mult + 2^(30 - shift)) >> (31 - shift); shift in [-31, 30]. */
static inline int32_t ef_requantize_single(int32_t acc, int32_t mult, int32_t shift)
{
    const int32_t total = 31 - shift;
    const int64_t rnd = (int64_t)1 << (total - 1);
    return (int32_t)(((int64_t)acc * (int64_t)mult + rnd) >> total);
}

/** Double rounding: RoundingDivideByPOT(SRDHM(acc << left, mult), right). */
static inline int32_t ef_requantize_double(int32_t acc, int32_t mult, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* shift through uint32 so an (impossible for valid models) overflow wraps, not UB */
    const int32_t shifted = (int32_t)((uint32_t)acc << left);
    return ef_rdbp(ef_srdhm(shifted, mult), right);
}

/** Requantize with the rounding `single` (a compile-time 0/1, e.g. EF_FC_SINGLE_ROUNDING). */
#define EF_REQUANTIZE_AS(single, acc, mult, shift) \
    ((single) ? ef_requantize_single((acc), (mult), (shift)) \
              : ef_requantize_double((acc), (mult), (shift)))

/**
 * @brief MultiplyByQuantizedMultiplier(acc, mult, shift), rounding per EF_SINGLE_ROUNDING.
 * @param acc   int32 accumulator
 * @param mult  Q31 multiplier, [2^30, 2^31) (or 0; MEAN folds 1/count in and goes lower)
 * @param shift exponent, shift > 0 = left; [-31, 30]
 * @return acc * mult * 2^(shift - 31), rounded as sdk.qmath.requantize rounds
 */
static inline int32_t ef_requantize(int32_t acc, int32_t mult, int32_t shift)
{
    return EF_REQUANTIZE_AS(EF_SINGLE_ROUNDING, acc, mult, shift);
}

#endif /* EF_REQUANTIZE_H */
