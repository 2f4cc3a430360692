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

/** A CONV2D kernel (ef_conv2d_s8, ef_conv2d_1x1_s8, ef_conv2d_shallow_s8: one signature). */
typedef ef_status (*ef_conv_fn)(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                                const ef_dims *in, const int8_t *x,
                                const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                const ef_dims *out, int8_t *y);

/** An ADD/SUB kernel (ef_add_s8, ef_sub_s8). */
typedef ef_status (*ef_add_fn)(const ef_ctx *ctx, const ef_add_params *p,
                               const ef_dims *in1, const int8_t *x1,
                               const ef_dims *in2, const int8_t *x2,
                               const ef_dims *out, int8_t *y);

/** One whole CONV2D as codegen would call it, minus its data pointers. */
typedef struct {
    ef_conv_fn fn;
    const ef_conv_params *p;
    const ef_quant *q;
    const ef_dims *in, *wd;
    const int8_t *w;
    const int32_t *bias;
    const ef_dims *out;
} ef_conv_call;

/**
 * @brief y = add(conv2(conv1(x)), skip), row by row, so neither conv output exists whole:
 * conv1's output rows live in a band of (KH2 - 1) * DH2 + 1 rows (the rows one conv2 output
 * row reads), conv2's output in one row, and each output row is added to skip's row as soon
 * as it exists. Every call is the linked kernel on a window of rows with the pad it has
 * there, so the bytes equal the three ops run whole (sdk/plan/fuse.py).
 * @param ctx  band (rounded up to 4 bytes), `group` conv2 output rows (rounded up to 4),
 *             then what is left for each kernel call in turn (the convs' scratch, the add's
 *             tables; too little takes their no-scratch path)
 * @param conv_first 1 if conv2's output is the add's first input, 0 if its second
 * @param group conv2 rows summed per add call (>= 1: fewer calls, fewer table builds)
 * @param x    conv1's input; skip the other add input, [1, OH2, OW2, C_OUT2] like y
 * @param y    may equal skip (or start below it), and skip may equal x when every conv1 row
 *             computed after output row r reads only x rows > r (the planner checks)
 * @return EF_OK, EF_ERR_ARG on NULL, a batch != 1 or a ctx without the band and row
 */
ef_status ef_conv_pair_add_s8(const ef_ctx *ctx, const ef_conv_call *c1,
                              const ef_conv_call *c2, ef_add_fn add, const ef_add_params *ap,
                              int32_t conv_first, int32_t group, const int8_t *x,
                              const int8_t *skip, int8_t *y);

#endif /* EF_INPLACE_H */
