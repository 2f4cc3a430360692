/**
 * @file ef_kernels.h
 * @brief edgeforge portable int8 kernels: one function per IR op (ef_<op>[_<variant>]_s8).
 *
 * Semantics follow TFLite's reference integer kernels (the ones TFLM runs) bit for bit; the
 * rounding of every requantization is chosen by EF_SINGLE_ROUNDING (see ef_requantize.h).
 * All "prepare" math (multipliers, shifts, offsets, clamps, tables) is done on the host by
 * sdk/qparams.py; kernels only evaluate.
 *
 * Argument order (CMSIS-NN style): [ctx,] params, [quant,] then (dims, data) per input, the
 * output pair last. Every kernel returns EF_OK, or EF_ERR_ARG on a NULL pointer / shape
 * mismatch it can detect cheaply.
 *
 * IN-PLACE CONTRACT (relied on by the arena planner, sdk/plan/):
 *  - every kernel computes its outputs in raster order (n, y, x, then channels) and never
 *    reads an input element after the output element at the same flat index was written;
 *  - elementwise kernels (add, sub, mul, quantize, relu, relu6, leaky_relu, logistic, tanh,
 *    hard_swish, sqrt, rsqrt, exp, gelu, squared_difference) read element i before writing element i, so the output may alias an input
 *    of the same shape exactly (y == x1 or y == x2); a broadcast input must not alias;
 *  - windowed kernels (conv2d, conv2d_1x1, dwconv2d, dwconv2d_3x3, avgpool2d, maxpool2d)
 *    produce output pixels in raster order and, while producing pixel p, read only input
 *    pixels inside p's window and write only p's bytes; so y may overlap x when every byte
 *    of pixel p lands below the lowest input byte any pixel >= p still reads
 *    (sdk/plan/inplace.py derives that lag from the geometry);
 *  - ef_reshape_s8 is a memmove: any overlap is fine;
 *  - true in-place variants (y == x: depthwise with a ring of rows, 1x1 with one pixel
 *    buffered) are in kernels/ref/ef_inplace.h, with _scratch_size functions mirrored in
 *    sdk/plan/scratch.py;
 *  - all other kernels need y disjoint from their inputs.
 */
#ifndef EF_KERNELS_H
#define EF_KERNELS_H

#include "ef_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief 2-D convolution, int8 per-channel (TFLite ConvPerChannel).
 * @param ctx  kernel scratch (TFLM's scratch buffer, CMSIS-NN's ctx): ef_conv2d_s8_scratch_size()
 *             bytes from the planned arena, word aligned; NULL or smaller takes a loop that
 *             needs none (same bytes, slower). Likewise for every kernel with a ctx below.
 * @param p    offsets, stride, pad (top, left), dilation, clamp
 * @param q    per-output-channel multiplier/shift, length wd->n
 * @param in   input dims [N, H, W, C_IN];     x    input data
 * @param wd   filter dims [C_OUT, KH, KW, C_IN]; w filter data, symmetric int8
 * @param bias int32 [C_OUT] or NULL
 * @param out  output dims [N, OH, OW, C_OUT]; y output data
 * @return EF_OK, or EF_ERR_ARG if a pointer is NULL or channel counts disagree
 */
ef_status ef_conv2d_s8(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *wd, const int8_t *w, const int32_t *bias,
                       const ef_dims *out, int8_t *y);

/**
 * @brief Scratch bytes ef_conv2d_s8 wants in ctx for these dims (0: none). Each kernel set
 * (kernels/ref, kernels/dsp) defines its own; sdk/plan/scratch.py mirrors both.
 */
int32_t ef_conv2d_s8_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out);

/**
 * @brief 1x1 convolution (pad 0, dilation 1, any stride): a per-pixel matrix-vector product.
 * Same arguments and results as ef_conv2d_s8 for a [C_OUT, 1, 1, C_IN] filter.
 */
ef_status ef_conv2d_1x1_s8(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *wd, const int8_t *w, const int32_t *bias,
                           const ef_dims *out, int8_t *y);

/** @brief Scratch bytes of ef_conv2d_1x1_s8 (see ef_conv2d_s8_scratch_size). */
int32_t ef_conv2d_1x1_s8_scratch_size(const ef_dims *in, const ef_dims *wd,
                                      const ef_dims *out);

/**
 * @brief 2-D convolution for shallow inputs (few C_IN): same results as ef_conv2d_s8, with
 * the filter stored transposed so the inner loop runs over output channels.
 * @param wd  logical filter dims [C_OUT, KH, KW, C_IN]
 * @param w_t filter data in [KH, KW, C_IN, C_OUT] order (the C generator transposes it)
 * Other arguments as ef_conv2d_s8.
 */
ef_status ef_conv2d_shallow_s8(const ef_ctx *ctx, const ef_conv_params *p,
                               const ef_quant *q,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *wd, const int8_t *w_t, const int32_t *bias,
                               const ef_dims *out, int8_t *y);

/** @brief Scratch bytes of ef_conv2d_shallow_s8 (see ef_conv2d_s8_scratch_size). */
int32_t ef_conv2d_shallow_s8_scratch_size(const ef_dims *in, const ef_dims *wd,
                                          const ef_dims *out);

/**
 * @brief Depthwise 2-D convolution, int8 per-channel (TFLite DepthwiseConvPerChannel).
 * @param wd filter dims [1, KH, KW, C_IN * depth_multiplier];
 *           output channel = ic * depth_multiplier + m
 * Other arguments as ef_conv2d_s8.
 */
ef_status ef_dwconv2d_s8(const ef_dw_params *p, const ef_quant *q,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *wd, const int8_t *w, const int32_t *bias,
                         const ef_dims *out, int8_t *y);

/**
 * @brief Depthwise 3x3, depth_multiplier 1, dilation 1: same results as ef_dwconv2d_s8,
 * faster loops.
 */
ef_status ef_dwconv2d_3x3_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
                             const ef_dims *in, const int8_t *x,
                             const ef_dims *wd, const int8_t *w, const int32_t *bias,
                             const ef_dims *out, int8_t *y);

/** @brief Scratch bytes of ef_dwconv2d_3x3_s8 (see ef_conv2d_s8_scratch_size). */
int32_t ef_dwconv2d_3x3_s8_scratch_size(const ef_dw_params *p, const ef_dims *in,
                                        const ef_dims *out);

/**
 * @brief Fully connected: y[r, o] = requant(sum_i (x[r, i] + in_offset) * w[o, i] + bias[o]).
 * @param in  dims with n = rows, c = C_IN (h = w = 1)
 * @param wd  dims with n = C_OUT, c = C_IN
 * @param q   per-channel (length C_OUT) or per-tensor (every entry equal) multipliers
 * @param out dims with n = rows, c = C_OUT
 */
ef_status ef_fc_s8(const ef_fc_params *p, const ef_quant *q,
                   const ef_dims *in, const int8_t *x,
                   const ef_dims *wd, const int8_t *w, const int32_t *bias,
                   const ef_dims *out, int8_t *y);

/**
 * @brief Fully connected on weights packed by the compiler (edgeforge.codegen.c.pack_fc):
 * y[r, o] = requant(sum_i x[r, i] * w[o, i] + bias[o]), where bias already holds
 * in_offset * sum_i w[o, i]. Packed layout (two rows per int16 lane, for SMLAD): see
 * edgeforge.codegen.c.pack_fc; weights in [-127, 127].
 * @param bias not NULL (the folded bias)
 */
ef_status ef_fc_packed_s8(const ef_fc_packed_params *p, const ef_quant *q,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *wd, const int8_t *w, const int32_t *bias,
                          const ef_dims *out, int8_t *y);

/**
 * @brief Fully connected on block-sparse weights (edgeforge.codegen.c.block_sparse_fc): the
 * [C_OUT, C_IN] matrix in 4x4 blocks, only nonzero ones stored. Block row b (outputs 4b..4b+3)
 * holds blocks bptr[b] .. bptr[b + 1] - 1; block k starts at input column bcol[k] and its 16
 * weights bval[16k ..] are its four rows of four (rows past C_OUT are zero padding).
 * Same bytes as ef_fc_s8 on the dense matrix.
 * @return EF_ERR_ARG unless C_IN is a multiple of 4
 */
ef_status ef_fc_bsr_s8(const ef_fc_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x, const ef_dims *wd,
                       const uint16_t *bptr, const uint16_t *bcol, const int8_t *bval,
                       const int32_t *bias, const ef_dims *out, int8_t *y);

/**
 * @brief Average pool, counting only taps inside the input; rounds half away from zero.
 * @return EF_ERR_ARG if an output window covers no input tap
 */
ef_status ef_avgpool2d_s8(const ef_pool_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y);

/** @brief Max pool over taps inside the input, then clamp. */
ef_status ef_maxpool2d_s8(const ef_pool_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y);

/**
 * @brief Mean over the dims flagged in p->reduce (see ef_mean_params); the output has those
 * dims set to 1 (keepdims or not: the bytes are the same).
 */
ef_status ef_mean_s8(const ef_mean_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y);

/**
 * @brief Elementwise add with 4-D broadcasting (a dim of 1 broadcasts), TFLite int8 Add.
 * Inputs and output are [N, H, W, C] (lower ranks padded with leading 1s). Same-shape
 * inputs of >= 1024 elements (DSP set: >= 512) rescale through two 256-entry int32 tables
 * in ctx (2 KiB).
 */
ef_status ef_add_s8(const ef_ctx *ctx, const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y);

/** @brief Scratch bytes of ef_add_s8 and ef_sub_s8: the two tables, or 0. */
int32_t ef_add_s8_scratch_size(const ef_dims *in1, const ef_dims *in2, const ef_dims *out);

/** @brief Elementwise x1 - x2, as ef_add_s8 (same scratch size). */
ef_status ef_sub_s8(const ef_ctx *ctx, const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y);

/** @brief Elementwise x1 * x2 with 4-D broadcasting, TFLite int8 Mul. */
ef_status ef_mul_s8(const ef_mul_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y);

/**
 * @brief Copy one input of a concatenation into its slice of the output (call once per
 * input). Inputs and output share one scale and zero point (as TFLite requires for int8).
 */
ef_status ef_concat_s8(const ef_concat_params *p,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *out, int8_t *y);

/** @brief Constant pad of an [N, H, W, C] tensor with p->value. */
ef_status ef_pad_s8(const ef_pad_params *p,
                    const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y);

/** @brief Transpose: y[i0, i1, i2, i3] = x[...] with input index k = output index of the
 * output dim d where perm[d] == k; output written in raster order. */
ef_status ef_transpose_s8(const ef_transpose_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y);

/** @brief Strided slice (SLICE, STRIDED_SLICE, one SPLIT part): y = x[b + i * s] per dim,
 * shape `out`; the same quantization in and out (bytes move). */
ef_status ef_strided_slice_s8(const ef_strided_slice_params *p,
                              const ef_dims *in, const int8_t *x,
                              const ef_dims *out, int8_t *y);

/** @brief Nearest-neighbour resize of H, W: y[n, i, j, :] = x[n, rows[i], cols[j], :]. */
ef_status ef_resize_nearest_s8(const ef_resize_params *p,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *out, int8_t *y);

/** @brief Bilinear resize of H, W (TFLite ResizeBilinearInteger): taps and 10-bit fractions
 * per output row / column in p (three int32 each); the same quantization in and out. */
ef_status ef_resize_bilinear_s8(const ef_resize_params *p,
                                const ef_dims *in, const int8_t *x,
                                const ef_dims *out, int8_t *y);

/** @brief Elementwise max with 4-D broadcasting of raw int8 (both inputs and the output
 *  share one quantization, so no requantization). Returns EF_OK. */
ef_status ef_maximum_s8(const ef_dims *in1, const int8_t *x1, const ef_dims *in2,
                        const int8_t *x2, const ef_dims *out, int8_t *y);
/** @brief Elementwise min, as ef_maximum_s8. Returns EF_OK. */
ef_status ef_minimum_s8(const ef_dims *in1, const int8_t *x1, const ef_dims *in2,
                        const int8_t *x2, const ef_dims *out, int8_t *y);

/** @brief Reshape: the same bytes; a memmove when input and output live apart. */
ef_status ef_reshape_s8(const ef_dims *in, const int8_t *x, const ef_dims *out, int8_t *y);

/** @brief Packed weights (compile --cluster): n int8 weights w[i] = table[index i], the
 *  indices `bits` (4 or 2) wide, packed from each byte's low bits up. Returns EF_OK. */
ef_status ef_unpack_s8(const int8_t *table, const uint8_t *idx, int32_t n, int32_t bits,
                       int8_t *w);
/** @brief FULLY_CONNECTED on packed weights (table + `bits`-wide indices, as
 *  ef_unpack_s8): rows of the weight matrix are unpacked ctx->size / C_IN at a time into
 *  ctx->buf and run by ef_fc_s8; the same bytes as ef_fc_s8 on the unpacked matrix.
 *  EF_ERR_ARG if ctx holds less than one row. */
ef_status ef_fc_lut_s8(const ef_ctx *ctx, const ef_fc_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x, const ef_dims *wd,
                       const int8_t *table, const uint8_t *idx, int32_t bits,
                       const int32_t *bias, const ef_dims *out, int8_t *y);
/** @brief FULLY_CONNECTED on packed weights in ef_fc_packed_s8's layout
 *  (edgeforge.codegen.c.pack_fc_lut): one 2 * bits wide index per int16 lane (two weights),
 *  expanded through a lane table built from `table` (ef_fc_packed_lut_s8_table_bytes at the
 *  start of ctx->buf), then blocks of four weight rows at a time into the rest of ctx and run
 *  by ef_fc_packed_s8 with `bias` (the folded one). The same bytes as ef_fc_packed_s8 on the
 *  unpacked matrix. EF_ERR_ARG unless C_IN, C_OUT % 4 == 0 and ctx holds four rows. */
ef_status ef_fc_packed_lut_s8(const ef_ctx *ctx, const ef_fc_packed_params *p,
                              const ef_quant *q, const ef_dims *in, const int8_t *x,
                              const ef_dims *wd, const int8_t *table, const uint8_t *idx,
                              int32_t bits, const int32_t *bias, const ef_dims *out, int8_t *y);
/** @brief Bytes of ef_fc_packed_lut_s8's lane table for `bits` (4: 512, 2: 1024; else 0). */
int32_t ef_fc_packed_lut_s8_table_bytes(int32_t bits);

/**
 * @brief Softmax over C of [N, H, W, C], int8 -> int8 (output scale 1/256, zero point -128),
 * with TFLite's reference integer algorithm (gemmlowp exp, reciprocal).
 */
ef_status ef_softmax_s8(const ef_softmax_params *p,
                        const ef_dims *in, const int8_t *x,
                        const ef_dims *out, int8_t *y);

/** @brief Logistic via a host-computed 256-entry table (reproduces the runtime's bytes). */
ef_status ef_logistic_s8(const ef_lut_params *p,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *out, int8_t *y);

/** @brief Tanh via a host-computed 256-entry table. */
ef_status ef_tanh_s8(const ef_lut_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y);

/** @brief Hard swish via a host-computed 256-entry table. */
ef_status ef_hard_swish_s8(const ef_lut_params *p,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y);

/**
 * @brief Requantize + clamp: y = clamp(requant(x + in_offset) + out_offset). QUANTIZE
 * int8 -> int8 (clamp = int8 range), RELU and RELU6 (clamp = the activation's range; TFLite
 * requantizes there too when the scales differ).
 */
ef_status ef_quantize_s8(const ef_requant_params *p,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *out, int8_t *y);

/** @brief RELU: ef_quantize_s8 with the clamp [out_zp, 127]. */
ef_status ef_relu_s8(const ef_requant_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y);

/** @brief RELU6: ef_quantize_s8 with the clamp [q(0), q(6)]. */
ef_status ef_relu6_s8(const ef_requant_params *p,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *out, int8_t *y);

/** @brief Leaky ReLU via a host-computed 256-entry table (identity / alpha requant by sign). */
ef_status ef_leaky_relu_s8(const ef_lut_params *p,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y);

/**
 * @brief Elementwise (x1 - x2)^2 with 4-D broadcasting, TFLite int8 SQUARED_DIFFERENCE:
 * inputs << 7 rescaled to 1/(2 max scale), the int32 difference squared, requantized.
 * Takes ef_add_params (left_shift 7, act = the int8 range).
 */
ef_status ef_squared_difference_s8(const ef_add_params *p,
                                   const ef_dims *in1, const int8_t *x1,
                                   const ef_dims *in2, const int8_t *x2,
                                   const ef_dims *out, int8_t *y);

/**
 * @brief BATCH_MATMUL of two int8 tensors, TFLite reference_ops::BatchMatMul:
 * y = requant(sum_k (x1[.., i, k] + in1_offset) * (x2[.., k, j] + in2_offset)) + out_offset.
 * @param in1 [B0, B1, M, K]; in2 [B0', B1', K, N]; out [B0, B1, M, N] (a batch dim of 1
 * broadcasts; lower ranks pad with leading 1s). Takes ef_mul_params (one multiplier).
 */
ef_status ef_matmul_s8(const ef_mul_params *p,
                       const ef_dims *in1, const int8_t *x1,
                       const ef_dims *in2, const int8_t *x2,
                       const ef_dims *out, int8_t *y);

/**
 * @brief SUM int8 over the dims flagged in p->reduce, TFLite QuantizedMeanOrSum with
 * compute_sum: requant(sum(x) + in_offset * count) + out_offset (no 1/count folded in).
 */
ef_status ef_sum_s8(const ef_mean_params *p,
                    const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y);

/** @brief REDUCE_MAX over the dims flagged in p->reduce (input and output share quant). */
ef_status ef_reduce_max_s8(const ef_mean_params *p,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y);

/** @brief REDUCE_MIN over the dims flagged in p->reduce (input and output share quant). */
ef_status ef_reduce_min_s8(const ef_mean_params *p,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y);

/**
 * @brief Transpose convolution, int8 per-channel (TFLite reference_integer_ops::TransposeConv):
 * output (oy, ox) sums (x[iy, ix] + in_offset) * w[co, ky, kx, :] over iy * stride + ky -
 * pad.h == oy (and the same for x), + bias, requantized per channel. Each output pixel
 * gathers its taps, so no int32 scatter buffer is needed. p->dilation is ignored (1).
 * @param wd filter dims [C_OUT, KH, KW, C_IN]; out [N, OH, OW, C_OUT]
 */
ef_status ef_transpose_conv_s8(const ef_conv_params *p, const ef_quant *q,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *wd, const int8_t *w, const int32_t *bias,
                               const ef_dims *out, int8_t *y);

/** @brief GATHER along one axis with constant int32 indices (p->idx): a byte copy. */
ef_status ef_gather_s8(const ef_gather_params *p,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *out, int8_t *y);

/**
 * @brief PRELU, TFLite int8 (two multipliers by the input's sign), alpha broadcast to x
 * (4-D broadcasting as ef_add_s8; x has the output's dims).
 */
ef_status ef_prelu_s8(const ef_prelu_params *p,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *ad, const int8_t *alpha,
                      const ef_dims *out, int8_t *y);

/** @brief Square root (LiteRT's truncating int8 SQRT) via a host-computed 256-entry table. */
ef_status ef_sqrt_s8(const ef_lut_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y);

/** @brief 1/sqrt (TFLite's fixed-point RSQRT) via a host-computed 256-entry table. */
ef_status ef_rsqrt_s8(const ef_lut_params *p,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *out, int8_t *y);

/** @brief Exp (LiteRT's float-filled table) via a host-computed 256-entry table. */
ef_status ef_exp_s8(const ef_lut_params *p,
                    const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y);

/** @brief GELU, erf or tanh form (LiteRT's float-filled table) via a host-computed 256-entry table. */
ef_status ef_gelu_s8(const ef_lut_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y);

/**
 * @brief LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM), int8 with int16 gates and cell state, as TFLM's
 * integer lstm_eval (p->litert: LiteRT's). The states start from p->h0 / p->c0 each call.
 * @param scratch ef_lstm_s8_scratch_size(p) bytes, 4-byte aligned: accumulators, cell, gates, hidden
 */
ef_status ef_lstm_s8(const ef_lstm_params *p, void *scratch, const int8_t *x, int8_t *y);

/** @brief Scratch bytes ef_lstm_s8 needs: 3 * batches * n_cell + 16 * n_cell. */
int32_t ef_lstm_s8_scratch_size(const ef_lstm_params *p);

#ifdef __cplusplus
}
#endif

#endif /* EF_KERNELS_H */
