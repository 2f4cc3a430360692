/**
 * @file ef_types.h
 * @brief Plain-old-data types shared by every edgeforge int8 kernel and the generated code.
 *
 * Conventions (the same as sdk/qmath.py states them):
 *  - activations are NHWC, int8, per-tensor asymmetric: real = scale * (q - zero_point);
 *  - in_offset = -input_zero_point (added to inputs), out_offset = +output_zero_point;
 *  - a (mult, shift) pair means real ~= mult * 2^(shift - 31); shift > 0 is a LEFT shift;
 *  - clamps (ef_act) are already quantized to the output's int8 domain.
 */
#ifndef EF_TYPES_H
#define EF_TYPES_H

#include <stddef.h>
#include <stdint.h>

/** Status every kernel returns. Kernels never abort, print or allocate. */
typedef enum {
    EF_OK = 0,
    EF_ERR_ARG = -1       /**< a cheap argument check failed (NULL, bad size) */
} ef_status;

/** Tensor shape, NHWC. Filters use n = C_OUT; lower-rank tensors pad with leading 1s. */
typedef struct { int32_t n, h, w, c; } ef_dims;

/** A (height, width) pair: strides, paddings (top, left), dilations, kernel sizes. */
typedef struct { int32_t h, w; } ef_hw;

/** Output clamp in the output's quantized domain, -128 <= min <= max <= 127. */
typedef struct { int32_t min, max; } ef_act;

/** Per-output-channel requantization: real multiplier of channel k = mult[k] * 2^(shift[k]-31). */
typedef struct { const int32_t *mult; const int32_t *shift; } ef_quant;

/** Caller-owned scratch memory (sized by the kernel's _scratch_size function). */
typedef struct { void *buf; int32_t size; } ef_ctx;

/** CONV2D. in_offset in [-127, 128], out_offset in [-128, 127]; pad = (top, left). */
typedef struct {
    int32_t in_offset, out_offset;
    ef_hw stride, pad, dilation;
    ef_act act;
} ef_conv_params;

/** DWCONV2D: output channel = in_channel * depth_multiplier + m. */
typedef struct {
    int32_t in_offset, out_offset;
    int32_t depth_multiplier;
    ef_hw stride, pad, dilation;
    ef_act act;
} ef_dw_params;

/** FULLY_CONNECTED: weights [C_OUT, C_IN], symmetric (zero point 0). */
typedef struct { int32_t in_offset, out_offset; ef_act act; } ef_fc_params;

/**
 * FULLY_CONNECTED on host-packed weights (ef_fc_packed_s8): the input offset is already in
 * the bias. acc_small = 1 when the compiler proved every |accumulator| < 2^30 (the fast
 * requantization is then exact); rq, when not NULL (acc_small, double rounding, every
 * shift < 0), holds per channel (mult, -shift, 1 << (-shift - 1)) for the DSP output pass.
 */
typedef struct {
    int32_t out_offset;
    ef_act act;
    int32_t acc_small;
    const int32_t *rq;
} ef_fc_packed_params;

/** AVGPOOL2D / MAXPOOL2D: pad = (top, left); taps outside the input are skipped. */
typedef struct { ef_hw stride, pad, kernel; ef_act act; } ef_pool_params;

/**
 * ADD / SUB (TFLite's int8 add): both inputs are shifted left by left_shift (20), rescaled to
 * a common scale by (in*_mult, in*_shift), summed, then rescaled by (out_mult, out_shift).
 */
typedef struct {
    int32_t in1_offset, in2_offset, out_offset;
    int32_t in1_mult, in1_shift, in2_mult, in2_shift, out_mult, out_shift;
    int32_t left_shift;
    ef_act act;
} ef_add_params;

/** MUL: y = requant((x1 + in1_offset) * (x2 + in2_offset)) + out_offset. */
typedef struct {
    int32_t in1_offset, in2_offset, out_offset;
    int32_t out_mult, out_shift;
    ef_act act;
} ef_mul_params;

/** Elementwise requantize + clamp: QUANTIZE (int8 -> int8), RELU, RELU6. */
typedef struct {
    int32_t in_offset, out_offset;
    int32_t mult, shift;
    ef_act act;
} ef_requant_params;

/** SOFTMAX over the last axis (TFLite's int8 reference algorithm, gemmlowp fixed point). */
typedef struct { int32_t in_mult, in_left_shift, diff_min; } ef_softmax_params;

/** LOGISTIC / TANH / HARD_SWISH / LEAKY_RELU: a 256-entry table, y = lut[(uint8_t)(x + 128)]. */
typedef struct { const int8_t *lut; } ef_lut_params;

/** PAD: (before, after) per NHWC dim; padded elements get `value` (the zero point). */
typedef struct { int32_t before[4], after[4]; int32_t value; } ef_pad_params;

/** TRANSPOSE of a rank <= 4 tensor padded to NHWC: output dim k is input dim perm[k]. */
typedef struct { int32_t perm[4]; } ef_transpose_params;

/** STRIDED_SLICE of a rank <= 4 tensor padded to NHWC: start and step (>= 1) per dim. */
typedef struct { int32_t begin[4], stride[4]; } ef_strided_slice_params;

/** RESIZE_NEAREST_NEIGHBOR: input row of each output row, input column of each column.
 * RESIZE_BILINEAR: per output row / column three int32 (lower tap, upper tap, 10-bit
 * fraction). */
typedef struct { const int32_t *rows; const int32_t *cols; } ef_resize_params;

/**
 * CONCAT, one call per input: copies `outer` chunks of `chunk` bytes from x into y, chunk o
 * going to y + o * out_stride + out_start.
 */
typedef struct { int32_t outer, chunk, out_stride, out_start; } ef_concat_params;

/**
 * MEAN over the dims with reduce[d] = 1 (NHWC order), TFLite QuantizedMeanOrSum:
 * y = clamp(requant(sum(x) + in_offset * count, mult, shift) + out_offset), where the host
 * folded 1/count into (mult, shift).
 */
typedef struct {
    int32_t in_offset, out_offset;
    int32_t mult, shift;
    int32_t reduce[4];
    ef_act act;
} ef_mean_params;

/** GATHER: y[o, j, i] = x[o, idx[j], i] with o < outer, j < n_idx, i < inner. */
typedef struct {
    int32_t outer, axis_size, inner, n_idx;
    const int32_t *idx;
} ef_gather_params;

/** PRELU: v = x + in_offset; y = rq(v, mult1, shift1) if v >= 0 else
 * rq(v * (alpha + alpha_offset), mult2, shift2); then + out_offset. */
typedef struct {
    int32_t in_offset, alpha_offset, out_offset;
    int32_t mult1, shift1, mult2, shift2;
} ef_prelu_params;

/** UNIDIRECTIONAL_SEQUENCE_LSTM, 8x8_16 (edgeforge.qparams_lstm.LstmQuant): gates i, f, c, o;
 * x [B, T, F] ([T, B, F] when time_major), y likewise with H = n_cell; gates in Q3.12, their
 * activations in Q0.15 through `table` (uint16[256]); cell int16 at scale 2^cell_power. */
typedef struct {
    int32_t batches, steps, n_input, n_cell, time_major;
    int32_t in_offset, h_offset, out_zp;
    int32_t in_mult[4], in_shift[4], rec_mult[4], rec_shift[4];
    int32_t fc_mult, fc_shift, ig_mult, ig_shift, h_mult, h_shift;
    int32_t cell_power, cell_clip, tanh_mult, tanh_shift, litert, single;
    const uint16_t *table;
    const int8_t *w[4];         /**< input weights [H, F] per gate */
    const int8_t *r[4];         /**< recurrent weights [H, H] per gate */
    const int32_t *b[4];        /**< gate biases [H] */
    const int8_t *h0;           /**< hidden state reset value [B, H] */
    const int16_t *c0;          /**< cell state reset value [B, H] */
} ef_lstm_params;

/** Alignment of generated constant arrays and the static arena (no-op on unknown compilers). */
#if defined(__GNUC__) || defined(__clang__)
#define EF_ALIGNED(n) __attribute__((aligned(n)))
#else
#define EF_ALIGNED(n)
#endif

/** Propagate a non-OK status to the caller (generated code wraps every kernel call). */
#define EF_TRY(call) do { ef_status ef_s_ = (call); if (ef_s_ != EF_OK) return (int)ef_s_; } while (0)

#endif /* EF_TYPES_H */
