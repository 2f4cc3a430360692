/**
 * @file ef_requantize.h
 * @brief THE requantization helper and the gemmlowp fixed-point primitives it builds on.
 *
 * EF_SINGLE_ROUNDING picks the rounding, exactly as sdk/qmath.requantize does for the
 * numerics profile (and as TFLITE_SINGLE_ROUNDING does in TFLite's common.h):
 *   0 (default, --numerics tflm)  : double rounding, SaturatingRoundingDoublingHighMul then
 *                                   RoundingDivideByPOT (TFLM's reference kernels);
 *   1 (--numerics litert)         : single rounding, one 64-bit multiply and one rounding
 *                                   shift (ai-edge-litert's kernels).
 * The generated model.h defines it for the profile the model was compiled for.
 */
#ifndef EF_REQUANTIZE_H
#define EF_REQUANTIZE_H

#include <stdint.h>

#ifndef EF_SINGLE_ROUNDING
#define EF_SINGLE_ROUNDING 0
#endif

/** gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating MIN*MIN. */
static inline int32_t ef_nn_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as gemmlowp's does */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/** gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero, 0 <= exp <= 31. */
static inline int32_t ef_nn_rdbp(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/**
 * @brief MultiplyByQuantizedMultiplier(acc, mult, shift) for the numerics profile.
 * @param acc   int32 accumulator
 * @param mult  Q31 multiplier, [2^30, 2^31) (or 0)
 * @param shift exponent, shift > 0 = left; [-31, 30]
 * @return acc * mult * 2^(shift - 31), rounded as the profile's runtime rounds
 */
static inline int32_t ef_requantize(int32_t acc, int32_t mult, int32_t shift)
{
#if EF_SINGLE_ROUNDING
    const int32_t total = 31 - shift;
    const int64_t rnd = (int64_t)1 << (total - 1);
    return (int32_t)(((int64_t)acc * (int64_t)mult + rnd) >> total);
#else
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* shift through uint32 so an (impossible for valid models) overflow wraps, not UB */
    const int32_t shifted = (int32_t)((uint32_t)acc << left);
    return ef_nn_rdbp(ef_nn_srdhm(shifted, mult), right);
#endif
}

/** Clamp to [lo, hi]. */
static inline int32_t ef_nn_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

#endif /* EF_REQUANTIZE_H */
