/* The DSP convolution engine (see ef_dsp_conv.h): one copy shared by ef_conv2d_s8,
 * ef_conv2d_1x1_s8 and ef_conv2d_1x1_inplace_s8. */
#include "ef_dsp_conv.h"

/* Build the column of output pixel `pix` (flat n, y, x index) into col[0..K). */
static void ef_dsp_im2col(const ef_conv_params *p, const ef_dims *in, const int8_t *x,
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

/*
 * The 2x2 engine's column pair: group g (four taps) of pixel p is stored at words
 * [4g + 2p, 4g + 2p + 1] as (x0, x2), (x1, x3), so one LDM fetches both pixels' group; the
 * K % 4 tail taps of pixel p sit in natural order at tail[4p..4p+3].
 */
static inline void ef_dsp_interleave(const int16_t *col, int32_t k4, int32_t k, int32_t p,
                                     uint32_t *pair, int16_t *tail)
{
    for (int32_t i = 0; i < k4; i += 4) {
        pair[i + 2 * p] = ef_dsp_ld32(col + i);
        pair[i + 2 * p + 1] = ef_dsp_ld32(col + i + 2);
    }
    for (int32_t i = k4; i < k; ++i) {
        tail[4 * p + i - k4] = col[i];
    }
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
    if (k > EF_DSP_COL_MAX) {
        return ef_dsp_conv_plain(p, q, in, x, wd, w, bias, out, y);
    }
    int16_t col[EF_DSP_COL_MAX];
    uint32_t pair[EF_DSP_COL_MAX];         /* two pixels' columns, interleaved by group */
    int16_t tail[8];
    const ef_dsp_outq s = {q->mult, q->shift, p->out_offset, p->act.min, p->act.max,
                           ef_dsp_acc_small(bias, oc, k)};
    const int32_t npix = out->n * oh * ow;
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int two = pix + 1 < npix;
        /* both columns are built before either pixel is written (in-place contract); a
         * lone last pixel runs as its own twin */
        ef_dsp_im2col(p, in, x, kh, kw, oh, ow, pix, col);
        ef_dsp_interleave(col, k4, k, 0, pair, tail);
        if (two) {
            ef_dsp_im2col(p, in, x, kh, kw, oh, ow, pix + 1, col);
        }
        ef_dsp_interleave(col, k4, k, 1, pair, tail);
        int8_t *y0 = y + pix * oc, *y1 = y0 + oc;
        for (int32_t o = 0; o < oc; o += 2) {
            const int32_t o1 = o + 1 < oc ? o + 1 : o;
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
            y0[o] = ef_dsp_out(&s, EF_CONV2D_SINGLE_ROUNDING, o, a[0]);
            if (two) {
                y1[o] = ef_dsp_out(&s, EF_CONV2D_SINGLE_ROUNDING, o, a[2]);
            }
            if (o1 != o) {
                y0[o1] = ef_dsp_out(&s, EF_CONV2D_SINGLE_ROUNDING, o1, a[1]);
                if (two) {
                    y1[o1] = ef_dsp_out(&s, EF_CONV2D_SINGLE_ROUNDING, o1, a[3]);
                }
            }
        }
    }
    return EF_OK;
}
