/**
 * @file ef_nn_support.h
 * @brief Private helpers shared by the reference kernels (not part of the public API).
 */
#ifndef EF_NN_SUPPORT_H
#define EF_NN_SUPPORT_H

#include "ef_kernels.h"
#include "ef_requantize.h"

/** Clamp to [lo, hi]. */
static inline int32_t ef_nn_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/** Number of elements of an NHWC shape. */
static inline int32_t ef_nn_numel(const ef_dims *d)
{
    return d->n * d->h * d->w * d->c;
}

/* Rows of a FULLY_CONNECTED-shaped call (a 1x1 stride-1 conv's pixels): in holds rows x C_IN
 * (wd->c) values and out rows x C_OUT (wd->n); -1 when the dims disagree. */
static inline int32_t ef_nn_fc_rows(const ef_dims *in, const ef_dims *wd, const ef_dims *out)
{
    const int32_t depth = wd->c, rows = depth > 0 ? ef_nn_numel(in) / depth : 0;
    return depth > 0 && ef_nn_numel(in) == rows * depth && ef_nn_numel(out) == rows * wd->n
               ? rows : -1;
}

/* The loop geometry of a reduction (MEAN, SUM, REDUCE_MAX/MIN) over the dims p_reduce marks:
 * kept extents od, reduced extents rd, input strides st, and the reduced element count.
 * Returns 0 when out does not hold the kept extents (or nothing is reduced over). */
static inline int32_t ef_nn_reduce_geometry(const int32_t p_reduce[4], const ef_dims *in,
                                            const ef_dims *out, int32_t od[4], int32_t rd[4],
                                            int32_t st[4])
{
    const int32_t id[4] = {in->n, in->h, in->w, in->c};
    int32_t count = 1;
    st[0] = in->h * in->w * in->c;
    st[1] = in->w * in->c;
    st[2] = in->c;
    st[3] = 1;
    for (int32_t k = 0; k < 4; ++k) {
        od[k] = p_reduce[k] ? 1 : id[k];
        rd[k] = p_reduce[k] ? id[k] : 1;
        count *= rd[k];
    }
    return od[0] * od[1] * od[2] * od[3] == ef_nn_numel(out) ? count : 0;
}

/* MEAN, SUM, REDUCE_MAX, REDUCE_MIN over the dims p->reduce marks: one loop nest. SUM
 * (MEAN: 1/count folded into mult on the host) requantizes the offset-corrected sum with
 * `single` (that op's EF_<OP>_SINGLE_ROUNDING); MAX/MIN compare the bytes. */
enum { EF_NN_RED_SUM, EF_NN_RED_MAX, EF_NN_RED_MIN };

static inline ef_status ef_nn_reduce(const ef_mean_params *p, int mode, int32_t single,
                                     const ef_dims *in, const int8_t *x,
                                     const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y) {
        return EF_ERR_ARG;
    }
    int32_t od[4], rd[4], st[4];
    const int32_t count = ef_nn_reduce_geometry(p->reduce, in, out, od, rd, st);
    if (count <= 0) {
        return EF_ERR_ARG;
    }
    for (int32_t a = 0; a < od[0]; ++a) {
        for (int32_t b = 0; b < od[1]; ++b) {
            for (int32_t c = 0; c < od[2]; ++c) {
                for (int32_t d = 0; d < od[3]; ++d) {
                    const int8_t *base = x + a * st[0] + b * st[1] + c * st[2] + d * st[3];
                    /* sum: |x| <= 128 per element, exact in int32 below 2^24 elements */
                    int32_t acc = mode == EF_NN_RED_SUM ? 0 : base[0];
                    for (int32_t i = 0; i < rd[0]; ++i) {
                        for (int32_t j = 0; j < rd[1]; ++j) {
                            for (int32_t k = 0; k < rd[2]; ++k) {
                                const int8_t *xp = base + i * st[0] + j * st[1] + k * st[2];
                                for (int32_t l = 0; l < rd[3]; ++l) {
                                    const int32_t v = xp[l];
                                    acc = mode == EF_NN_RED_SUM ? acc + v
                                          : mode == EF_NN_RED_MAX ? (v > acc ? v : acc)
                                          : (v < acc ? v : acc);
                                }
                            }
                        }
                    }
                    if (mode == EF_NN_RED_SUM) {
                        acc = EF_REQUANTIZE_AS(single, acc + p->in_offset * count,
                                               p->mult, p->shift) + p->out_offset;
                    }
                    *y++ = (int8_t)ef_nn_clamp(acc, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}

/** 1 if the two shapes are identical. */
static inline int ef_nn_same_dims(const ef_dims *a, const ef_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/**
 * Element strides of `d` broadcast to `out`: a dim of size 1 gets stride 0.
 * @return 0 if some dim is neither equal to out's nor 1.
 */
static inline int ef_nn_bcast_strides(const ef_dims *d, const ef_dims *out, int32_t s[4])
{
    const int32_t dd[4] = {d->n, d->h, d->w, d->c};
    const int32_t od[4] = {out->n, out->h, out->w, out->c};
    int32_t stride = 1;
    for (int k = 3; k >= 0; --k) {
        if (dd[k] != od[k] && dd[k] != 1) {
            return 0;
        }
        s[k] = dd[k] == 1 ? 0 : stride;
        stride *= dd[k];
    }
    return 1;
}

/**
 * Run STMT for each element of `out` in NHWC order, with I1 / I2 (declared here) its offsets
 * in two operands broadcast to `out` by the strides s1 / s2 of ef_nn_bcast_strides: the one
 * loop nest of the broadcasting binary kernels.
 */
#define EF_NN_BCAST_FOR(out, s1, s2, I1, I2, STMT)                                            \
    for (int32_t b_ = 0; b_ < (out)->n; ++b_) {                                               \
        for (int32_t h_ = 0; h_ < (out)->h; ++h_) {                                           \
            for (int32_t w_ = 0; w_ < (out)->w; ++w_) {                                       \
                const int32_t r1_ = b_ * (s1)[0] + h_ * (s1)[1] + w_ * (s1)[2];               \
                const int32_t r2_ = b_ * (s2)[0] + h_ * (s2)[1] + w_ * (s2)[2];               \
                for (int32_t c_ = 0; c_ < (out)->c; ++c_) {                                   \
                    const int32_t I1 = r1_ + c_ * (s1)[3], I2 = r2_ + c_ * (s2)[3];           \
                    STMT;                                                                     \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

/**
 * The taps of a k-tap window starting at input index i0 (negative: it starts in the padding)
 * that fall inside an input of n: [ef_nn_tap_lo(i0), ef_nn_tap_hi(i0, k, n)).
 */
static inline int32_t ef_nn_tap_lo(int32_t i0)
{
    return i0 < 0 ? -i0 : 0;
}

static inline int32_t ef_nn_tap_hi(int32_t i0, int32_t k, int32_t n)
{
    return i0 + k > n ? n - i0 : k;
}

/* AVERAGE_POOL_2D and MAX_POOL_2D: one window walk (is_max a constant at each call). Pixels
 * go in raster order and each writes only its own bytes after reading its window. */
static inline ef_status ef_nn_pool(const ef_pool_params *p, int is_max,
                                   const ef_dims *in, const int8_t *x,
                                   const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || in->c != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->pad.h, pw = p->pad.w;
    const int32_t fh = p->kernel.h, fw = p->kernel.w;
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t batches = in->n, ih = in->h, iw = in->w, ch = in->c;
    const int32_t oh = out->h, ow = out->w;
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            const int32_t fy0 = ef_nn_tap_lo(iy0), fy1 = ef_nn_tap_hi(iy0, fh, ih);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                const int32_t fx0 = ef_nn_tap_lo(ix0), fx1 = ef_nn_tap_hi(ix0, fw, iw);
                if (!is_max && (fy1 <= fy0 || fx1 <= fx0)) {
                    return EF_ERR_ARG;
                }
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                for (int32_t c = 0; c < ch; ++c) {
                    /* avg: |x| <= 128 per tap, exact for fewer than 2^24 taps */
                    int32_t acc = is_max ? -128 : 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *xp = x + ((b * ih + iy0 + fy) * iw + ix0) * ch + c;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            acc = !is_max ? acc + xp[fx * ch]
                                  : xp[fx * ch] > acc ? xp[fx * ch] : acc;
                        }
                    }
                    if (!is_max) {   /* round half away from zero; C division truncates */
                        const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    yp[c] = (int8_t)ef_nn_clamp(acc, amin, amax);
                }
            }
        }
    }
    return EF_OK;
}

/** y[i] = lut[x[i] + 128] for n elements; reads x[i] before writing y[i] (in-place safe). */
static inline void ef_nn_lut_s8(const int8_t *lut, const int8_t *x, int8_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        y[i] = lut[(int32_t)x[i] + 128];
    }
}

/** Bytes of the stack im2col buffer ef_conv2d_s8 uses for filters with short rows. */
#define EF_NN_COL_MAX 256

/** Output channels processed per block: int32 accumulators kept on the stack (256 bytes). */
#define EF_NN_ACC_BLOCK 64

/**
 * acc[o] += sum_i (x[i] + off) * w[o * w_stride + i] for o in [0, rows), i in [0, n).
 * Four weight rows share each x load; the inner loops are plain C the compiler vectorizes.
 * Overflow: each product |x + off| * |w| <= 255 * 128 < 2^15; the callers' bounds on n
 * (taps * channels < 2^16) keep every int32 sum exact, as in TFLite.
 */
static inline void ef_nn_matvec_s8(const int8_t *x, const int8_t *w, int32_t w_stride,
                                   int32_t rows, int32_t n, int32_t off, int32_t *acc)
{
    int32_t o = 0;
    for (; o + 4 <= rows; o += 4) {
        const int8_t *w0 = w + o * w_stride, *w1 = w0 + w_stride;
        const int8_t *w2 = w1 + w_stride, *w3 = w2 + w_stride;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (int32_t i = 0; i < n; ++i) {
            /* x + off fits int16 ([-255, 255]): int16 x int16 -> int32 dot products map
             * onto multiply-add instructions (pmaddwd, SMLAD) */
            const int16_t xv = (int16_t)(x[i] + off);
            a0 += (int32_t)xv * (int16_t)w0[i];
            a1 += (int32_t)xv * (int16_t)w1[i];
            a2 += (int32_t)xv * (int16_t)w2[i];
            a3 += (int32_t)xv * (int16_t)w3[i];
        }
        acc[o] += a0;
        acc[o + 1] += a1;
        acc[o + 2] += a2;
        acc[o + 3] += a3;
    }
    for (; o < rows; ++o) {
        const int8_t *wo = w + o * w_stride;
        int32_t a = 0;
        for (int32_t i = 0; i < n; ++i) {
            a += (int32_t)(int16_t)(x[i] + off) * (int16_t)wo[i];
        }
        acc[o] += a;
    }
}

/**
 * Store a block of n output channels: y[o] = clamp(requantize(acc[o], mult[o], shift[o])
 * + out_off, [amin, amax]) for o in [0, n); mult, shift and y point at the block's first
 * channel, and `single` is the op's EF_<OP>_SINGLE_ROUNDING.
 */
static inline void ef_nn_requant_store_s8(const int32_t *acc, int32_t n, const int32_t *mult,
                                          const int32_t *shift, int32_t out_off, int32_t amin,
                                          int32_t amax, int single, int8_t *y)
{
    for (int32_t o = 0; o < n; ++o) {
        const int32_t v = EF_REQUANTIZE_AS(single, acc[o], mult[o], shift[o]);
        y[o] = (int8_t)ef_nn_clamp(v + out_off, amin, amax);
    }
}

/**
 * Every output channel of one pixel (1x1 CONV2D) or row (FULLY_CONNECTED):
 * y[o] = clamp(requantize(bias[o] + sum_i (x[i] + in_off) * w[o * n + i]) + out_off, act)
 * for o in [0, oc), rounding as `single` (the op's EF_<OP>_SINGLE_ROUNDING). Accumulators in
 * blocks of EF_NN_ACC_BLOCK on the stack; products < 2^15, so exact for n < 2^16 (C_IN).
 */
static inline void ef_nn_dense_s8(const int8_t *x, int32_t n, const int8_t *w,
                                  const int32_t *bias, int32_t oc, int32_t in_off,
                                  int32_t out_off, const ef_quant *q, ef_act act, int single,
                                  int8_t *y)
{
    int32_t acc[EF_NN_ACC_BLOCK];
    for (int32_t o0 = 0; o0 < oc; o0 += EF_NN_ACC_BLOCK) {
        const int32_t no = oc - o0 < EF_NN_ACC_BLOCK ? oc - o0 : EF_NN_ACC_BLOCK;
        for (int32_t o = 0; o < no; ++o) {
            acc[o] = bias ? bias[o0 + o] : 0;
        }
        ef_nn_matvec_s8(x, w + o0 * n, n, no, n, in_off, acc);
        ef_nn_requant_store_s8(acc, no, q->mult + o0, q->shift + o0, out_off, act.min, act.max,
                               single, y + o0);
    }
}

#endif /* EF_NN_SUPPORT_H */
