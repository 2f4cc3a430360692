/**
 * @file ef_dsp_dw.h
 * @brief The DSP depthwise 3x3 row engine behind ef_dwconv2d_3x3_s8 and
 * ef_dwconv2d_inplace_s8 (this dir): ch_mult 1, dilation 1, C a multiple of 4.
 *
 * The filter is sign-extended once per call into int16 pairs, (w_c0, w_c2) and (w_c1, w_c3)
 * per tap and group of four channels, so each tap of a pixel costs one input load, two
 * SXTAB16 (input offset added to two channels at once), one weight pair load and four
 * SMLABB/SMLATT. Padding taps are skipped, as in the reference. Sums are exact int32
 * (at most 9 products < 2^15 plus the bias), so the bytes equal the reference kernel's.
 */
#ifndef EF_DSP_DW_H
#define EF_DSP_DW_H

#include "ef_dsp.h"

/** Widest C the fast path takes: the expanded filter (9 * C * 2 bytes) lives on the stack. */
#ifndef EF_DSP_DW_CH_MAX
#define EF_DSP_DW_CH_MAX 256
#endif

/** Bytes of the three zero-point padded input rows a row may use (else the edge loops). */
#ifndef EF_DSP_DW_PAD_BYTES
#define EF_DSP_DW_PAD_BYTES 3072
#endif

/** wexp[(t * C / 4 + g) * 2 + {0, 1}] = the int16 pairs of tap t, channel group g. */
static inline void ef_dsp_dw_expand(const int8_t *w, int32_t ch, uint32_t *wexp)
{
    for (int32_t i = 0; i < 9 * ch; i += 4) {
        const uint32_t v = ef_dsp_ld32(w + i);
        wexp[i >> 1] = ef_dsp_sxtb16(v);
        wexp[(i >> 1) + 1] = ef_dsp_sxtb16_ror8(v);
    }
}

/* one tap of four channels: input word at xp, weight pairs at wp[0], wp[1] */
#define EF_DSP_DW_TAP(xp, wp)                                   \
    do {                                                        \
        const uint32_t xv_ = ef_dsp_ld32(xp);                   \
        const uint32_t xe_ = ef_dsp_sxtab16(off2, xv_);         \
        const uint32_t xo_ = ef_dsp_sxtab16_ror8(off2, xv_);    \
        const uint32_t we_ = (wp)[0], wo_ = (wp)[1];            \
        a0 = ef_dsp_smlabb(xe_, we_, a0);                       \
        a2 = ef_dsp_smlatt(xe_, we_, a2);                       \
        a1 = ef_dsp_smlabb(xo_, wo_, a1);                       \
        a3 = ef_dsp_smlatt(xo_, wo_, a3);                       \
    } while (0)

/**
 * One output row: rows[ky] is input row (oy * stride.h - pad.h + ky), or NULL outside the
 * input. Output pixel ox is written after all of its taps were read. Pixels whose 3x3
 * window lies inside the input run nine straight-line taps per group of four channels.
 */
static inline void ef_dsp_dw3x3_row(const ef_dw_params *p, const ef_dsp_outq *s,
                                    const int8_t *const rows[3], int32_t iw, int32_t ch,
                                    int32_t ow, const uint32_t *wexp, const int32_t *bias,
                                    int8_t *yrow)
{
    const uint32_t off2 = ef_dsp_dup16(p->in_offset);
    const int32_t sw = p->stride.w, pw = p->pad.w, ch2 = ch / 2;
    int32_t acc[EF_DSP_DW_CH_MAX];
    /* the three rows, padded left/right with the input zero point (whose taps add exactly
     * 0, as skipping them does), so every pixel runs the straight-line taps */
    const int32_t rpad = (ow - 1) * sw - pw + 3 - iw > 0 ? (ow - 1) * sw - pw + 3 - iw : 0;
    const int32_t pw_ = pw > 0 ? pw : 0, width = (pw_ + iw + rpad) * ch;
    if (pw >= 0 && 3 * width <= EF_DSP_DW_PAD_BYTES) {
        int8_t padded[EF_DSP_DW_PAD_BYTES];
        const int zp = (int8_t)(-p->in_offset);
        for (int32_t ky = 0; ky < 3; ++ky) {
            int8_t *d = padded + ky * width;
            if (!rows[ky]) {
                memset(d, zp, (size_t)width);
                continue;
            }
            memset(d, zp, (size_t)(pw_ * ch));
            memcpy(d + pw_ * ch, rows[ky], (size_t)(iw * ch));
            memset(d + (pw_ + iw) * ch, zp, (size_t)(rpad * ch));
        }
        for (int32_t ox = 0; ox < ow; ++ox) {
            const int8_t *x0 = padded + ox * sw * ch, *x1 = x0 + width, *x2 = x1 + width;
            for (int32_t c = 0; c < ch; c += 4) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                if (bias) {
                    a0 = bias[c];
                    a1 = bias[c + 1];
                    a2 = bias[c + 2];
                    a3 = bias[c + 3];
                }
                const uint32_t *wc = wexp + c / 2;
                EF_DSP_DW_TAP(x0 + c, wc);
                EF_DSP_DW_TAP(x0 + ch + c, wc + ch2);
                EF_DSP_DW_TAP(x0 + 2 * ch + c, wc + 2 * ch2);
                EF_DSP_DW_TAP(x1 + c, wc + 3 * ch2);
                EF_DSP_DW_TAP(x1 + ch + c, wc + 4 * ch2);
                EF_DSP_DW_TAP(x1 + 2 * ch + c, wc + 5 * ch2);
                EF_DSP_DW_TAP(x2 + c, wc + 6 * ch2);
                EF_DSP_DW_TAP(x2 + ch + c, wc + 7 * ch2);
                EF_DSP_DW_TAP(x2 + 2 * ch + c, wc + 8 * ch2);
                acc[c] = a0;
                acc[c + 1] = a1;
                acc[c + 2] = a2;
                acc[c + 3] = a3;
            }
            ef_dsp_out_row(s, EF_DWCONV2D_SINGLE_ROUNDING, acc, ch, 0, yrow + ox * ch);
        }
        return;
    }
    const int full_rows = rows[0] && rows[1] && rows[2];
    for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t ix0 = ox * sw - pw;
        const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t kx1 = ix0 + 3 > iw ? iw - ix0 : 3;
        int8_t *yp = yrow + ox * ch;
        const int inner = full_rows && kx0 == 0 && kx1 == 3;
        for (int32_t c = 0; c < ch; c += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (bias) {
                a0 = bias[c];
                a1 = bias[c + 1];
                a2 = bias[c + 2];
                a3 = bias[c + 3];
            }
            const uint32_t *wc = wexp + c / 2;
            if (inner) {
                const int8_t *x0 = rows[0] + ix0 * ch + c, *x1 = rows[1] + ix0 * ch + c;
                const int8_t *x2 = rows[2] + ix0 * ch + c;
                EF_DSP_DW_TAP(x0, wc);
                EF_DSP_DW_TAP(x0 + ch, wc + ch2);
                EF_DSP_DW_TAP(x0 + 2 * ch, wc + 2 * ch2);
                EF_DSP_DW_TAP(x1, wc + 3 * ch2);
                EF_DSP_DW_TAP(x1 + ch, wc + 4 * ch2);
                EF_DSP_DW_TAP(x1 + 2 * ch, wc + 5 * ch2);
                EF_DSP_DW_TAP(x2, wc + 6 * ch2);
                EF_DSP_DW_TAP(x2 + ch, wc + 7 * ch2);
                EF_DSP_DW_TAP(x2 + 2 * ch, wc + 8 * ch2);
            } else {
                for (int32_t ky = 0; ky < 3; ++ky) {
                    if (!rows[ky]) {
                        continue;
                    }
                    const int8_t *xp = rows[ky] + ix0 * ch + c;
                    const uint32_t *wp = wc + ky * 3 * ch2;
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        EF_DSP_DW_TAP(xp + kx * ch, wp + kx * ch2);
                    }
                }
            }
            acc[c] = a0;
            acc[c + 1] = a1;
            acc[c + 2] = a2;
            acc[c + 3] = a3;
        }
        ef_dsp_out_row(s, EF_DWCONV2D_SINGLE_ROUNDING, acc, ch, 0, yp);
    }
}

/** The output stage of a depthwise call (accumulators: the bias plus at most 9 taps). */
static inline ef_dsp_outq ef_dsp_dw_outq(const ef_dw_params *p, const ef_quant *q,
                                         const int32_t *bias, int32_t ch)
{
    return ef_dsp_outq_init(q, ch, p->out_offset, p->act, bias, 9);
}

#endif /* EF_DSP_DW_H */
