/**
 * @file ef_kernels_s16.h
 * @brief 16x8 kernels: int16 activations (symmetric, zero point 0), int8 weights, int64
 *        bias -- TFLite's 16x8 reference kernels, bit-exact with TFLM and LiteRT.
 *
 * Tensors are NHWC as in ef_kernels.h; every kernel returns EF_OK or EF_ERR_ARG and never
 * allocates. The params come from sdk/qparams16.py (the same numbers the host reference
 * uses). Offsets are absent: 16x8 activations have zero point 0. ADD / SUB / MUL / MEAN /
 * AVGPOOL2D / MAXPOOL2D take the int8 params structs of ef_types.h with zero offsets.
 */
#ifndef EF_KERNELS_S16_H
#define EF_KERNELS_S16_H

#include "ef_kernels.h"
#include "ef_requantize.h"

/** CONV2D 16x8. acc32 = 1: int32 bias semantics (int32 accumulator, the op's Q31
 *  requantization); 0: int64 accumulator and ef_requantize64. pad = (top, left). */
typedef struct {
    ef_hw stride, pad, dilation;
    ef_act act;
    int32_t acc32;
} ef_conv_s16_params;

/** DWCONV2D 16x8: output channel = in_channel * depth_multiplier + m. */
typedef struct {
    int32_t depth_multiplier;
    ef_hw stride, pad, dilation;
    ef_act act;
    int32_t acc32;
} ef_dw_s16_params;

/** FULLY_CONNECTED 16x8: weights [C_OUT, C_IN]. */
typedef struct { ef_act act; int32_t acc32; } ef_fc_s16_params;

/** LOGISTIC / TANH int16: input rescaled by (x * mult + round) >> left_shift (mult 0: the
 *  power-of-two case, 3 << left_shift with no shift). */
typedef struct { int32_t mult, left_shift; } ef_sigmoid_s16_params;

/** SOFTMAX int16 -> int16 (output scale 1/32768): 513-entry interpolated tables. */
typedef struct {
    int32_t in_mult, in_shift;
    const int16_t *exp_lut;     /* exp on [-10, 0] */
    const int16_t *recip_lut;   /* 1 / (1 + x) on [0, 1] */
} ef_softmax_s16_params;

/**
 * MultiplyByQuantizedMultiplier for an int64 accumulator (TFLite common.cc, both rounding
 * builds): the Q31 multiplier rounded to Q15 (0x7FFF at most), one rounding shift.
 * @param acc   |acc| < 2^47
 * @param mult  Q31 multiplier >= 0
 * @param shift exponent, > 0 = left; [-31, 7]
 */
static inline int32_t ef_requantize64(int64_t acc, int32_t mult, int32_t shift)
{
    const int32_t reduced = mult < 0x7FFF0000 ? (mult + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total = 15 - shift;
    return (int32_t)((acc * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/** @brief 16x8 convolution, [N,H,W,C_IN] int16 * [C_OUT,KH,KW,C_IN] int8 + int64 bias. */
ef_status ef_conv2d_s16(const ef_conv_s16_params *p, const ef_quant *q,
                        const ef_dims *in, const int16_t *x,
                        const ef_dims *wd, const int8_t *w, const int64_t *bias,
                        const ef_dims *out, int16_t *y);

/** @brief 16x8 depthwise convolution, weights [1,KH,KW,C_OUT]. */
ef_status ef_dwconv2d_s16(const ef_dw_s16_params *p, const ef_quant *q,
                          const ef_dims *in, const int16_t *x,
                          const ef_dims *wd, const int8_t *w, const int64_t *bias,
                          const ef_dims *out, int16_t *y);

/** @brief 16x8 fully connected: rows of C_IN = wd->c (out->c = wd->n outputs per row). */
ef_status ef_fc_s16(const ef_fc_s16_params *p, const ef_quant *q,
                    const ef_dims *in, const int16_t *x,
                    const ef_dims *wd, const int8_t *w, const int64_t *bias,
                    const ef_dims *out, int16_t *y);

/** @brief Average pool (valid taps, rounding half away from zero), int16. */
ef_status ef_avgpool2d_s16(const ef_pool_params *p, const ef_dims *in, const int16_t *x,
                           const ef_dims *out, int16_t *y);

/** @brief Max pool over taps inside the input, int16. */
ef_status ef_maxpool2d_s16(const ef_pool_params *p, const ef_dims *in, const int16_t *x,
                           const ef_dims *out, int16_t *y);

/** @brief MEAN int16 over the dims p->reduce marks (1/count folded into mult, shift). */
ef_status ef_mean_s16(const ef_mean_params *p, const ef_dims *in, const int16_t *x,
                      const ef_dims *out, int16_t *y);

/** @brief x1 + x2 with numpy broadcasting of size-1 dims (left_shift 15), int16. */
ef_status ef_add_s16(const ef_add_params *p, const ef_dims *in1, const int16_t *x1,
                     const ef_dims *in2, const int16_t *x2, const ef_dims *out, int16_t *y);

/** @brief x1 - x2, as ef_add_s16. */
ef_status ef_sub_s16(const ef_add_params *p, const ef_dims *in1, const int16_t *x1,
                     const ef_dims *in2, const int16_t *x2, const ef_dims *out, int16_t *y);

/** @brief x1 * x2 requantized, broadcasting as ef_add_s16, int16. */
ef_status ef_mul_s16(const ef_mul_params *p, const ef_dims *in1, const int16_t *x1,
                     const ef_dims *in2, const int16_t *x2, const ef_dims *out, int16_t *y);

/** @brief LOGISTIC int16 -> int16 (output scale 1/32768). */
ef_status ef_logistic_s16(const ef_sigmoid_s16_params *p, const ef_dims *in, const int16_t *x,
                          const ef_dims *out, int16_t *y);

/** @brief TANH int16 -> int16 (output scale 1/32768). */
ef_status ef_tanh_s16(const ef_sigmoid_s16_params *p, const ef_dims *in, const int16_t *x,
                      const ef_dims *out, int16_t *y);

/** @brief SOFTMAX over C of [N,H,W,C], int16 -> int16. */
ef_status ef_softmax_s16(const ef_softmax_s16_params *p, const ef_dims *in, const int16_t *x,
                         const ef_dims *out, int16_t *y);

/** @brief QUANTIZE int8 -> int16: clamp(out_offset + rq(x + in_offset)). */
ef_status ef_quantize_s8_s16(const ef_requant_params *p, const ef_dims *in, const int8_t *x,
                             const ef_dims *out, int16_t *y);

/** @brief QUANTIZE int16 -> int8. */
ef_status ef_quantize_s16_s8(const ef_requant_params *p, const ef_dims *in, const int16_t *x,
                             const ef_dims *out, int8_t *y);

/** @brief QUANTIZE int16 -> int16 (a rescale). */
ef_status ef_quantize_s16(const ef_requant_params *p, const ef_dims *in, const int16_t *x,
                          const ef_dims *out, int16_t *y);

#endif /* EF_KERNELS_S16_H */
