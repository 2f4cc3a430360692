/**
 * @file ef_dsp_conv.h
 * @brief The DSP convolution engine behind ef_conv2d_s8 and ef_conv2d_1x1_s8 (this dir).
 *
 * Output pixels go two at a time in raster order: both im2col columns (int16, input offset
 * added, padding taps = 0, reordered for SMLAD) are built BEFORE either pixel is written, and
 * a pixel writes only its own bytes, so the raster-order in-place contract of ef_kernels.h
 * (sdk/plan/inplace.py) still holds. Columns longer than EF_DSP_COL_MAX take a plain loop.
 * Sums are exact int32 in any order (products < 2^15, < 2^16 taps), so the bytes equal the
 * reference kernel's. Defined once, in ef_dsp_conv.c, which targets/build.py compiles with
 * every DSP build (the linker drops it when no conv uses it).
 */
#ifndef EF_DSP_CONV_H
#define EF_DSP_CONV_H

#include "ef_dsp.h"

/**
 * @brief Scratch bytes the engine takes from ctx for these dims: two im2col columns, the
 * natural-order column (C_IN % 4 != 0), the accumulators and the requantization table of one
 * block of output channels. 0: the dims take the plain loop, which needs none.
 */
int32_t ef_dsp_conv_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out);

/**
 * @brief CONV2D int8 per-channel with the ef_conv2d_s8 arguments (already checked by the
 * caller); pad and dilation are honoured, so 1x1 callers pass pad 0 / dilation 1.
 * @param ctx word-aligned scratch of ef_dsp_conv_scratch_size() bytes; NULL or smaller: the
 *            plain loop (same bytes, slower)
 * @return EF_OK
 */
ef_status ef_dsp_conv(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *wd, const int8_t *w, const int32_t *bias,
                      const ef_dims *out, int8_t *y);

/**
 * @brief ef_dsp_conv with each filter row padded to K rounded up to 4 (zeros after the K
 * taps): the K % 4 tail runs as one more SMLAD group instead of a per-channel C loop. The
 * scratch is the same ef_dsp_conv_scratch_size(); a too-small ctx is the caller's to refuse
 * (the plain fallback reads rows K apart).
 */
ef_status ef_dsp_conv_w4(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *wd, const int8_t *w4, const int32_t *bias,
                         const ef_dims *out, int8_t *y);

#endif /* EF_DSP_CONV_H */
