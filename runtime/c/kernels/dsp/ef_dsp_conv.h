/**
 * @file ef_dsp_conv.h
 * @brief The DSP convolution engine behind ef_conv2d_s8 and ef_conv2d_1x1_s8 (this dir).
 *
 * Output pixels go two at a time in raster order: both im2col columns (int16, input offset
 * added, padding taps = 0, reordered for SMLAD) are built BEFORE either pixel is written, and
 * a pixel writes only its own bytes, so the raster-order in-place contract of ef_kernels.h
 * (sdk/plan/inplace.py) still holds. Columns longer than EF_DSP_COL_MAX take a plain loop.
 * Sums are exact int32 in any order (products < 2^15, < 2^16 taps), so the bytes equal the
 * reference kernel's.
 */
#ifndef EF_DSP_CONV_H
#define EF_DSP_CONV_H

#include "ef_dsp.h"

/* Build the column of output pixel `pix` (flat n, y, x index) into col[0..K). */
static inline void ef_dsp_im2col(const ef_conv_params *p, const ef_dims *in, const int8_t *x,
                                 int32_t kh, int32_t kw, int32_t oh, int32_t ow, int32_t pix,
                                 int16_t *col)
{
    const int32_t ih = in->h, iw = in->w, ic = in->c;
    const int32_t b = pix / (oh * ow), r = pix % (oh * ow);
    const int32_t iy0 = (r / ow) * p->stride.h - p->pad.h;
    const int32_t ix0 = (r % ow) * p->stride.w - p->pad.w;
    const int32_t in_off = p->in_offset;
    const uint32_t off2 = ef_dsp_dup16(in_off);
    const int fast = (ic & 3) == 0;
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + p->dilation.h * ky;
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + p->dilation.w * kx;
            int16_t *dst = col + (ky * kw + kx) * ic;
            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
                memset(dst, 0, (size_t)ic * sizeof(int16_t));   /* (x + in_off) == 0 */
                continue;
            }
            const int8_t *src = x + ((b * ih + iy) * iw + ix) * ic;
            if (fast) {
                ef_dsp_q7_to_q15_reordered(src, dst, ic, off2);
            } else {
                for (int32_t i = 0; i < ic; ++i) {
                    dst[i] = (int16_t)((int32_t)src[i] + in_off);
                }
            }
        }
    }
    if (!fast) {
        ef_dsp_reorder(col, (kh * kw * ic) & ~3);
    }
}

static inline int8_t ef_dsp_conv_out(const ef_conv_params *p, const ef_quant *q, int32_t o,
                                     int32_t acc)
{
    acc = ef_dsp_requantize(EF_CONV2D_SINGLE_ROUNDING, acc, q->mult[o], q->shift[o]);
    return (int8_t)ef_nn_clamp(acc + p->out_offset, p->act.min, p->act.max);
}

/* Plain per-pixel loop (the reference's), for columns too long for the stack buffers. */
static ef_status ef_dsp_conv_plain(const ef_conv_params *p, const ef_quant *q,
                                   const ef_dims *in, const int8_t *x, const ef_dims *wd,
                                   const int8_t *w, const int32_t *bias, const ef_dims *out,
                                   int8_t *y)
{
    const int32_t ih = in->h, iw = in->w, ic = in->c, kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, oc = out->c, in_off = p->in_offset;
    for (int32_t pix = 0; pix < out->n * oh * ow; ++pix) {
        const int32_t b = pix / (oh * ow), r = pix % (oh * ow);
        const int32_t iy0 = (r / ow) * p->stride.h - p->pad.h;
        const int32_t ix0 = (r % ow) * p->stride.w - p->pad.w;
        for (int32_t o = 0; o < oc; ++o) {
            int32_t acc = bias ? bias[o] : 0;
            for (int32_t ky = 0; ky < kh; ++ky) {
                const int32_t iy = iy0 + p->dilation.h * ky;
                for (int32_t kx = 0; kx < kw; ++kx) {
                    const int32_t ix = ix0 + p->dilation.w * kx;
                    if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
                        continue;
                    }
                    const int8_t *xp = x + ((b * ih + iy) * iw + ix) * ic;
                    const int8_t *wp = w + ((o * kh + ky) * kw + kx) * ic;
                    for (int32_t i = 0; i < ic; ++i) {
                        acc += ((int32_t)xp[i] + in_off) * (int32_t)wp[i];
                    }
                }
            }
            y[pix * oc + o] = ef_dsp_conv_out(p, q, o, acc);
        }
    }
    return EF_OK;
}

static ef_status ef_dsp_conv(const ef_conv_params *p, const ef_quant *q,
                             const ef_dims *in, const int8_t *x,
                             const ef_dims *wd, const int8_t *w, const int32_t *bias,
                             const ef_dims *out, int8_t *y)
{
    const int32_t kh = wd->h, kw = wd->w, oh = out->h, ow = out->w, oc = out->c;
    const int32_t k = kh * kw * in->c, k4 = k & ~3;
    if (k > EF_DSP_COL_MAX) {
        return ef_dsp_conv_plain(p, q, in, x, wd, w, bias, out, y);
    }
    int16_t col[2 * EF_DSP_COL_MAX];
    int16_t *col0 = col, *col1 = col + EF_DSP_COL_MAX;
    const int32_t npix = out->n * oh * ow;
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int two = pix + 1 < npix;
        ef_dsp_im2col(p, in, x, kh, kw, oh, ow, pix, col0);
        if (two) {
            ef_dsp_im2col(p, in, x, kh, kw, oh, ow, pix + 1, col1);
        }
        /* every input byte these two pixels read is now in col0/col1: safe to write */
        int8_t *y0 = y + pix * oc, *y1 = y0 + oc;
        int32_t o = 0;
        if (two) {
            for (; o + 1 < oc; o += 2) {
                const int32_t b0 = bias ? bias[o] : 0, b1 = bias ? bias[o + 1] : 0;
                int32_t a[4] = {b0, b1, b0, b1};
                ef_dsp_dot_2x2(w + o * k, w + (o + 1) * k, col0, k4, k, a);
                y0[o] = ef_dsp_conv_out(p, q, o, a[0]);
                y0[o + 1] = ef_dsp_conv_out(p, q, o + 1, a[1]);
                y1[o] = ef_dsp_conv_out(p, q, o, a[2]);
                y1[o + 1] = ef_dsp_conv_out(p, q, o + 1, a[3]);
            }
        }
        for (; o < oc; ++o) {
            const int32_t b0 = bias ? bias[o] : 0;
            y0[o] = ef_dsp_conv_out(p, q, o, ef_dsp_dot_1col(w + o * k, col0, k4, k, b0));
            if (two) {
                y1[o] = ef_dsp_conv_out(p, q, o, ef_dsp_dot_1col(w + o * k, col1, k4, k, b0));
            }
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_CONV_H */
