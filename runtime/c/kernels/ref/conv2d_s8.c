/* CONV2D int8 per-channel (TFLite reference ConvPerChannel semantics).
 * Loop order: output pixel, block of output channels, kernel row; with dilation.w == 1 the
 * taps of one kernel row are contiguous in both the NHWC input and the OHWI filter, so each
 * row is one dot product of (valid KW) * C_IN elements (ef_nn_matvec_s8). Taps outside the
 * input are skipped, as TFLite skips them. Filters whose rows are short (few input channels,
 * e.g. a first layer) but whose window is small gather the window into a stack buffer first
 * (im2col), padding with the input zero point so padded taps add (zp + in_offset) * w = 0. */
#include <string.h>

#include "ef_nn_support.h"

/* the reference keeps its small working set on the stack: no ctx scratch */
int32_t ef_conv2d_s8_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out)
{
    (void)in;
    (void)wd;
    (void)out;
    return 0;
}

ef_status ef_conv2d_s8(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *wd, const int8_t *w, const int32_t *bias,
                       const ef_dims *out, int8_t *y)
{
    (void)ctx;
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const int32_t sh = p->stride.h, sw = p->stride.w;
    const int32_t ph = p->pad.h, pw = p->pad.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w;
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t batches = in->n, ih = in->h, iw = in->w, ic = in->c;
    const int32_t kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, oc = out->c;
    const int32_t w_stride = kh * kw * ic;          /* one output channel's filter */
    const int32_t *mult = q->mult, *shift = q->shift;
    /* |x + in_off| <= 255, |w| <= 128: each product < 2^15, so the int32 accumulator is
     * exact for KH*KW*C_IN < 2^16 taps (TFLite's bound). */
    int32_t acc[EF_NN_ACC_BLOCK];
    int8_t col[EF_NN_COL_MAX];
    const int32_t use_col = w_stride <= EF_NN_COL_MAX && kw * ic < 32;

    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                /* valid kx range when taps are contiguous (dilation.w == 1) */
                const int32_t kx0 = ef_nn_tap_lo(ix0), kx1 = ef_nn_tap_hi(ix0, kw, iw);
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                if (use_col) {
                    int8_t *cp = col;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + dh * ky;
                        for (int32_t kx = 0; kx < kw; ++kx, cp += ic) {
                            const int32_t ix = ix0 + dw * kx;
                            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
                                memset(cp, (int8_t)(-in_off), (size_t)ic);
                            } else {
                                memcpy(cp, x + ((b * ih + iy) * iw + ix) * ic, (size_t)ic);
                            }
                        }
                    }
                }
                for (int32_t o0 = 0; o0 < oc; o0 += EF_NN_ACC_BLOCK) {
                    const int32_t no = oc - o0 < EF_NN_ACC_BLOCK ? oc - o0 : EF_NN_ACC_BLOCK;
                    const int8_t *wb = w + o0 * w_stride;
                    for (int32_t o = 0; o < no; ++o) {
                        acc[o] = bias ? bias[o0 + o] : 0;
                    }
                    if (use_col) {
                        ef_nn_matvec_s8(col, wb, w_stride, no, w_stride, in_off, acc);
                    }
                    for (int32_t ky = 0; ky < kh && !use_col; ++ky) {
                        const int32_t iy = iy0 + dh * ky;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        const int8_t *xrow = x + (b * ih + iy) * iw * ic;
                        const int8_t *wrow = wb + ky * kw * ic;
                        if (dw == 1) {
                            if (kx1 > kx0) {
                                ef_nn_matvec_s8(xrow + (ix0 + kx0) * ic, wrow + kx0 * ic,
                                                w_stride, no, (kx1 - kx0) * ic, in_off, acc);
                            }
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ix0 + dw * kx;
                            if (ix >= 0 && ix < iw) {
                                ef_nn_matvec_s8(xrow + ix * ic, wrow + kx * ic, w_stride, no,
                                                ic, in_off, acc);
                            }
                        }
                    }
                    ef_nn_requant_store_s8(acc, no, mult + o0, shift + o0, out_off, amin, amax,
                                           EF_CONV2D_SINGLE_ROUNDING, yp + o0);
                }
            }
        }
    }
    return EF_OK;
}
