/**
 * @file ef_inplace.h
 * @brief True in-place kernel variants (y == x allowed) the arena planner can ask for.
 *
 * Same arithmetic, arguments and results as the out-of-place kernels in ef_kernels.h, plus a
 * caller-owned scratch ctx first. They are chosen by codegen only where sdk/plan says so
 * (GraphPlan.kernels); the scratch sizes are mirrored in sdk/plan/scratch.py.
 * y may equal x, or start below x (y <= x); any other overlap is undefined.
 */
#ifndef EF_INPLACE_H
#define EF_INPLACE_H

#include "ef_kernels.h"

/**
 * @brief Depthwise conv that may overwrite its own input: stride 1, depth_multiplier 1,
 * output dims == input dims. Before output pixel p is written, input pixel p is copied into a ring of
 * pad.h * W + pad.w + 1 pixels in ctx->buf: every window pixel at or before p (already
 * overwritten, or about to be) is read from the ring, every later one from x (still intact).
 * @param ctx scratch of ef_dwconv2d_inplace_s8_scratch_size() bytes
 * @return EF_OK, EF_ERR_ARG on NULL / a too-small ctx / unsupported geometry
 */
ef_status ef_dwconv2d_inplace_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
                                 const ef_dims *in, const int8_t *x,
                                 const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                 const ef_dims *out, int8_t *y);

/** @brief Scratch bytes: min(pad.h * W + pad.w + 1, H * W) * C. */
int32_t ef_dwconv2d_inplace_s8_scratch_size(const ef_dw_params *p, const ef_dims *in);

/**
 * @brief 1x1 conv (stride 1, pad 0) that may overwrite its input, for C_OUT <= C_IN: each
 * input pixel is copied to ctx->buf before its output pixel is written.
 * @param ctx scratch of ef_conv2d_1x1_inplace_s8_scratch_size() = C_IN bytes
 */
ef_status ef_conv2d_1x1_inplace_s8(const ef_ctx *ctx, const ef_conv_params *p,
                                   const ef_quant *q,
                                   const ef_dims *in, const int8_t *x,
                                   const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                   const ef_dims *out, int8_t *y);

/** @brief Scratch bytes: C_IN. */
int32_t ef_conv2d_1x1_inplace_s8_scratch_size(const ef_dims *in);

#endif /* EF_INPLACE_H */
