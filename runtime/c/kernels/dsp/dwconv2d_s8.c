/* DEPTHWISE_CONV_2D, any filter size, stride and dilation, Armv7E-M DSP version: same symbol
 * and bytes as ref/dwconv2d_s8.c. depth_multiplier 1 with C a multiple of 4 (MobileNet /
 * MCUNet 5x5 and 7x7 layers, which codegen sends here) goes four channels at a time: per
 * tap one input LDR, two SXTAB16 (offset added), one filter LDR, two SXTB16 and four
 * SMLAxy; out-of-range taps are skipped as in the reference. Each pixel's four sums are
 * requantized at once, so no scratch. Other shapes take the reference loops. Sums are exact
 * int32 (< 2^16 products < 2^15 plus the bias): the bytes equal the reference kernel's. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/dwconv2d_s8.c"   /* no DSP extension: exactly the reference kernel */
#else

/* the reference fallback: rarely run, optimised for size */
ef_status ef_dwconv2d_ref_s8(const ef_dw_params *p, const ef_quant *q,
                             const ef_dims *in, const int8_t *x,
                             const ef_dims *wd, const int8_t *w, const int32_t *bias,
                             const ef_dims *out, int8_t *y) __attribute__((cold));
#define ef_dwconv2d_s8 ef_dwconv2d_ref_s8
#include "../ref/dwconv2d_s8.c"
#undef ef_dwconv2d_s8

/* the four sums of channels c..c+3 of one output pixel; taps ky in [ky0, ky1), kx in
 * [kx0, kx1) are inside the input */
static inline void
ef_dsp_dwk_group(const int8_t *xc, int32_t xoff, const int8_t *wc, int32_t ky0, int32_t ky1,
                 int32_t kx0, int32_t kx1, int32_t xrow, int32_t xcol, int32_t wrow,
                 int32_t ch, uint32_t off2, int32_t a[4])
{
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    for (int32_t ky = ky0; ky < ky1; ++ky) {
        const int8_t *xp = xc + (xoff + ky * xrow + kx0 * xcol);   /* offset >= 0 */
        const int8_t *wp = wc + ky * wrow + kx0 * ch;
        for (int32_t kx = kx0; kx < kx1; ++kx, xp += xcol, wp += ch) {
            const uint32_t xv = ef_dsp_ld32(xp), wv = ef_dsp_ld32(wp);
            const uint32_t xe = ef_dsp_sxtab16(off2, xv), xo = ef_dsp_sxtab16_ror8(off2, xv);
            const uint32_t we = ef_dsp_sxtb16(wv), wo = ef_dsp_sxtb16_ror8(wv);
            a0 = ef_dsp_smlabb(xe, we, a0);
            a2 = ef_dsp_smlatt(xe, we, a2);
            a1 = ef_dsp_smlabb(xo, wo, a1);
            a3 = ef_dsp_smlatt(xo, wo, a3);
        }
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

ef_status ef_dwconv2d_s8(const ef_dw_params *p, const ef_quant *q,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *wd, const int8_t *w, const int32_t *bias,
                         const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y || p->depth_multiplier != 1
        || (in->c & 3) != 0 || wd->c != in->c || out->c != in->c || in->n != out->n
        || p->dilation.h < 1 || p->dilation.w < 1 || wd->h * wd->w >= (1 << 14)) {
        return ef_dwconv2d_ref_s8(p, q, in, x, wd, w, bias, out, y);
    }
    const int32_t ih = in->h, iw = in->w, ch = in->c, kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, dh = p->dilation.h, dw = p->dilation.w;
    const uint32_t off2 = ef_dsp_dup16(p->in_offset);
    const ef_dsp_outq s = ef_dsp_outq_init(q, ch, p->out_offset, p->act, bias, kh * kw);
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *xb = x + b * ih * iw * ch;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * p->stride.h - p->pad.h;
            /* taps inside the input: ky0 <= ky < ky1 (ceil / floor of the dilated bounds) */
            const int32_t ky0 = iy0 < 0 ? (-iy0 + dh - 1) / dh : 0;
            const int32_t ky1t = ih - iy0 > 0 ? (ih - iy0 + dh - 1) / dh : 0;
            const int32_t ky1 = ky1t < kh ? ky1t : kh;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                const int32_t kx0 = ix0 < 0 ? (-ix0 + dw - 1) / dw : 0;
                const int32_t kx1t = iw - ix0 > 0 ? (iw - ix0 + dw - 1) / dw : 0;
                const int32_t kx1 = kx1t < kw ? kx1t : kw;
                const int32_t xoff = (iy0 * iw + ix0) * ch;    /* of tap (0, 0): may be < 0 */
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                for (int32_t c = 0; c < ch; c += 4) {
                    int32_t a[4] = {0, 0, 0, 0};
                    if (bias) {
                        memcpy(a, bias + c, sizeof a);
                    }
                    if (ky0 < ky1 && kx0 < kx1) {
                        ef_dsp_dwk_group(xb + c, xoff, w + c, ky0, ky1, kx0, kx1,
                                         dh * iw * ch, dw * ch, kw * ch, ch, off2, a);
                    }
                    for (int32_t j = 0; j < 4; ++j) {
                        yp[c + j] = ef_dsp_out(&s, EF_DWCONV2D_SINGLE_ROUNDING, c + j, a[j]);
                    }
                }
            }
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
