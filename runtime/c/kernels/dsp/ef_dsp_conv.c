/* The DSP convolution engine (see ef_dsp_conv.h): one copy shared by ef_conv2d_s8,
 * ef_conv2d_1x1_s8 and ef_conv2d_1x1_inplace_s8. */
#include "ef_dsp_conv.h"

/** Longest column with C_IN % 4 != 0 the fast path takes (first layers: 3x3x3, 10x4x1). */
#ifndef EF_DSP_TMP_MAX
#define EF_DSP_TMP_MAX 256
#endif

/* n groups of four int8 from src, offset added, to the pair slot at d (stride 4 words) */
static inline void ef_dsp_groups(const int8_t *src, int32_t n, uint32_t off2, uint32_t *d)
{
    for (; n >= 2; n -= 2) {
        const uint32_t v0 = ef_dsp_ld32(src), v1 = ef_dsp_ld32(src + 4);
        src += 8;
        d[0] = ef_dsp_sxtab16(off2, v0);
        d[1] = ef_dsp_sxtab16_ror8(off2, v0);
        d[4] = ef_dsp_sxtab16(off2, v1);
        d[5] = ef_dsp_sxtab16_ror8(off2, v1);
        d += 8;
    }
    if (n) {
        const uint32_t v = ef_dsp_ld32(src);
        d[0] = ef_dsp_sxtab16(off2, v);
        d[1] = ef_dsp_sxtab16_ror8(off2, v);
    }
}

static inline void ef_dsp_zero_groups(int32_t n, uint32_t *d)
{
    for (; n > 0; --n, d += 4) {
        d[0] = 0;             /* (x + in_off) == 0 for padding taps */
        d[1] = 0;
    }
}

/*
 * The im2col column of output pixel `pix` (flat n, y, x index) into slot `slot` of the
 * column pair: group g (four taps) at words [4g + 2 slot, 4g + 2 slot + 1] as (x0, x2),
 * (x1, x3), so one LDM fetches both pixels' group; the K % 4 tail taps in natural order at
 * tail[4 slot ..]. C_IN % 4 == 0 converts each tap (or each row run of taps, dilation 1)
 * straight into its slot; other widths go through tmp[K] in natural order first.
 */
static void ef_dsp_im2col(const ef_conv_params *p, const ef_dims *in, const int8_t *x,
                          int32_t kh, int32_t kw, int32_t oh, int32_t ow, int32_t pix,
                          int32_t slot, uint32_t *pair, int16_t *tail, int16_t *tmp)
{
    const int32_t ih = in->h, iw = in->w, ic = in->c;
    const int32_t b = pix / (oh * ow), r = pix % (oh * ow);
    const int32_t iy0 = (r / ow) * p->stride.h - p->pad.h;
    const int32_t ix0 = (r % ow) * p->stride.w - p->pad.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w, in_off = p->in_offset;
    const uint32_t off2 = ef_dsp_dup16(in_off);
    const int8_t *xb = x + b * ih * iw * ic;
    uint32_t *d = pair + 2 * slot;
    if ((ic & 3) == 0) {
        const int32_t g = ic >> 2;            /* groups per tap */
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = iy0 + dh * ky;
            uint32_t *dr = d + 4 * g * kw * ky;
            if (iy < 0 || iy >= ih) {
                ef_dsp_zero_groups(g * kw, dr);
                continue;
            }
            const int8_t *row = xb + iy * iw * ic;
            if (dw == 1) {                     /* taps kx0..kx1 are one contiguous run */
                const int32_t kx0 = ix0 < 0 ? (-ix0 < kw ? -ix0 : kw) : 0;
                const int32_t kx1 = ix0 + kw > iw ? (iw - ix0 > kx0 ? iw - ix0 : kx0) : kw;
                ef_dsp_zero_groups(g * kx0, dr);
                ef_dsp_groups(row + (ix0 + kx0) * ic, g * (kx1 - kx0), off2, dr + 4 * g * kx0);
                ef_dsp_zero_groups(g * (kw - kx1), dr + 4 * g * kx1);
                continue;
            }
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int32_t ix = ix0 + dw * kx;
                if (ix < 0 || ix >= iw) {
                    ef_dsp_zero_groups(g, dr + 4 * g * kx);
                } else {
                    ef_dsp_groups(row + ix * ic, g, off2, dr + 4 * g * kx);
                }
            }
        }
        return;
    }
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + dh * ky;
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + dw * kx;
            int16_t *t = tmp + (ky * kw + kx) * ic;
            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
                memset(t, 0, (size_t)ic * sizeof(int16_t));
                continue;
            }
            const int8_t *src = xb + (iy * iw + ix) * ic;
            for (int32_t i = 0; i < ic; ++i) {
                t[i] = (int16_t)((int32_t)src[i] + in_off);
            }
        }
    }
    const int32_t k = kh * kw * ic, k4 = k & ~3;
    for (int32_t i = 0; i < k4; i += 4, d += 4) {
        d[0] = (uint32_t)(uint16_t)tmp[i] | (uint32_t)(uint16_t)tmp[i + 2] << 16;
        d[1] = (uint32_t)(uint16_t)tmp[i + 1] | (uint32_t)(uint16_t)tmp[i + 3] << 16;
    }
    for (int32_t i = k4; i < k; ++i) {
        tail[4 * slot + i - k4] = tmp[i];
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

/*
 * a += the two weight rows (w, w + wstep) against the column pair over n groups of four:
 * a[0] = (pixel 0, row 0), a[1] = (0, 1), a[2] = (1, 0), a[3] = (1, 1). Per group: one LDM,
 * two LDR, four SXTB16, eight SMLAD (16 MACs), then SUBS/BNE.
 */
static inline void ef_dsp_mm_2x2(const int8_t *w, int32_t wstep, const uint32_t *pair,
                                 int32_t n, int32_t a[4])
{
    int32_t s00 = a[0], s01 = a[1], s10 = a[2], s11 = a[3];
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && !defined(EF_DSP_NO_ASM)
    if (n > 0) {
        /* LDM fills registers in ascending order: pin the four column words */
        register uint32_t x0e __asm__("r8");
        register uint32_t x0o __asm__("r9");
        register uint32_t x1e __asm__("r10");
        register uint32_t x1o __asm__("r11");
        uint32_t wv, t;
        __asm__ volatile(
            "1:\n\t"
            "ldmia %[c]!, {%[x0e], %[x0o], %[x1e], %[x1o]}\n\t"
            "ldr %[wv], [%[w], %[ws]]\n\t"
            "sxtb16 %[t], %[wv]\n\t"
            "sxtb16 %[wv], %[wv], ror #8\n\t"
            "smlad %[s01], %[x0e], %[t], %[s01]\n\t"
            "smlad %[s11], %[x1e], %[t], %[s11]\n\t"
            "smlad %[s01], %[x0o], %[wv], %[s01]\n\t"
            "smlad %[s11], %[x1o], %[wv], %[s11]\n\t"
            "ldr %[wv], [%[w]], #4\n\t"
            "sxtb16 %[t], %[wv]\n\t"
            "sxtb16 %[wv], %[wv], ror #8\n\t"
            "smlad %[s00], %[x0e], %[t], %[s00]\n\t"
            "smlad %[s10], %[x1e], %[t], %[s10]\n\t"
            "smlad %[s00], %[x0o], %[wv], %[s00]\n\t"
            "smlad %[s10], %[x1o], %[wv], %[s10]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11),
              [c] "+r"(pair), [w] "+r"(w), [n] "+r"(n),
              [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o),
              [wv] "=&r"(wv), [t] "=&r"(t)
            : [ws] "r"(wstep)
            : "cc", "memory");
    }
#else
    for (; n > 0; --n) {
        const uint32_t x0e = pair[0], x0o = pair[1], x1e = pair[2], x1o = pair[3];
        uint32_t v = ef_dsp_ld32(w + wstep);
        s01 = ef_dsp_smlad(x0e, ef_dsp_sxtb16(v), s01);
        s11 = ef_dsp_smlad(x1e, ef_dsp_sxtb16(v), s11);
        s01 = ef_dsp_smlad(x0o, ef_dsp_sxtb16_ror8(v), s01);
        s11 = ef_dsp_smlad(x1o, ef_dsp_sxtb16_ror8(v), s11);
        v = ef_dsp_ld32(w);
        s00 = ef_dsp_smlad(x0e, ef_dsp_sxtb16(v), s00);
        s10 = ef_dsp_smlad(x1e, ef_dsp_sxtb16(v), s10);
        s00 = ef_dsp_smlad(x0o, ef_dsp_sxtb16_ror8(v), s00);
        s10 = ef_dsp_smlad(x1o, ef_dsp_sxtb16_ror8(v), s10);
        w += 4;
        pair += 4;
    }
#endif
    a[0] = s00;
    a[1] = s01;
    a[2] = s10;
    a[3] = s11;
}

ef_status ef_dsp_conv(const ef_conv_params *p, const ef_quant *q,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *wd, const int8_t *w, const int32_t *bias,
                      const ef_dims *out, int8_t *y)
{
    const int32_t kh = wd->h, kw = wd->w, oh = out->h, ow = out->w, oc = out->c;
    const int32_t k = kh * kw * in->c, k4 = k & ~3;
    if (k > EF_DSP_COL_MAX || ((in->c & 3) && k > EF_DSP_TMP_MAX)) {
        return ef_dsp_conv_plain(p, q, in, x, wd, w, bias, out, y);
    }
    uint32_t pair[EF_DSP_COL_MAX];           /* two pixels' columns, interleaved by group */
    int16_t tmp[EF_DSP_TMP_MAX];             /* natural-order column when C_IN % 4 != 0 */
    int16_t tail[8] = {0};
    int32_t acc[2 * EF_DSP_OC_BLOCK];
    const ef_dsp_outq s = ef_dsp_outq_init(q, oc, p->out_offset, p->act, bias, k);
    const int32_t npix = out->n * oh * ow;
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int two = pix + 1 < npix;
        /* both columns are built before either pixel is written (in-place contract); a
         * lone last pixel runs as its own twin */
        ef_dsp_im2col(p, in, x, kh, kw, oh, ow, pix, 0, pair, tail, tmp);
        ef_dsp_im2col(p, in, x, kh, kw, oh, ow, two ? pix + 1 : pix, 1, pair, tail, tmp);
        int8_t *y0 = y + pix * oc, *y1 = y0 + oc;
        for (int32_t c0 = 0; c0 < oc; c0 += EF_DSP_OC_BLOCK) {
            const int32_t nc = oc - c0 < EF_DSP_OC_BLOCK ? oc - c0 : EF_DSP_OC_BLOCK;
            int32_t *acc0 = acc, *acc1 = acc + EF_DSP_OC_BLOCK;
            /* MACs first, two channels x two pixels at a time, into int32 accumulators */
            for (int32_t j = 0; j < nc; j += 2) {
                const int32_t o = c0 + j, o1 = j + 1 < nc ? o + 1 : o;
                const int8_t *w0 = w + o * k;
                const int32_t b0 = bias ? bias[o] : 0, b1 = bias ? bias[o1] : 0;
                int32_t a[4] = {b0, b1, b0, b1};
                ef_dsp_mm_2x2(w0, (o1 - o) * k, pair, k4 >> 2, a);
                for (int32_t i = k4; i < k; ++i) {
                    const int32_t t0 = tail[i - k4], t1 = tail[4 + i - k4];
                    const int32_t v0 = w0[i], v1 = w[o1 * k + i];
                    a[0] += t0 * v0;
                    a[1] += t0 * v1;
                    a[2] += t1 * v0;
                    a[3] += t1 * v1;
                }
                acc0[j] = a[0];
                acc0[j + 1] = a[1];      /* odd nc < EF_DSP_OC_BLOCK: index nc is spare */
                acc1[j] = a[2];
                acc1[j + 1] = a[3];
            }
            /* then one tight requantization pass per pixel */
            ef_dsp_out_row(&s, EF_CONV2D_SINGLE_ROUNDING, acc0, nc, c0, y0 + c0);
            if (two) {
                ef_dsp_out_row(&s, EF_CONV2D_SINGLE_ROUNDING, acc1, nc, c0, y1 + c0);
            }
        }
    }
    return EF_OK;
}
