/**
 * @file ef_dsp_dw.h
 * @brief The DSP depthwise 3x3 row engine behind ef_dwconv2d_3x3_s8 and
 * ef_dwconv2d_inplace_s8 (this dir): depth_multiplier 1, dilation 1, C a multiple of 4.
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
#define EF_DSP_DW_PAD_BYTES 4096
#endif

/**
 * wexp[(g * 9 + t) * 2 + {0, 1}] = the int16 pairs (w_c0, w_c2), (w_c1, w_c3) of tap t of
 * channel group g: a group's nine taps are 18 consecutive words.
 */
static inline void ef_dsp_dw_expand(const int8_t *w, int32_t ch, uint32_t *wexp)
{
    for (int32_t c = 0; c < ch; c += 4) {
        for (int32_t t = 0; t < 9; ++t, wexp += 2) {
            const uint32_t v = ef_dsp_ld32(w + t * ch + c);
            wexp[0] = ef_dsp_sxtb16(v);
            wexp[1] = ef_dsp_sxtb16_ror8(v);
        }
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
 * Bytes of one zero-point padded input row for an output row of `ow` pixels, or 0 if three
 * of them do not fit EF_DSP_DW_PAD_BYTES: pad.w zero points on the left, the iw input
 * pixels, and as many on the right as the last window needs.
 */
static inline int32_t ef_dsp_dw_width(const ef_dw_params *p, int32_t iw, int32_t ch,
                                      int32_t ow)
{
    const int32_t pw = p->pad.w, need = (ow - 1) * p->stride.w - pw + 3 - iw;
    const int32_t width = (pw + iw + (need > 0 ? need : 0)) * ch;
    return pw >= 0 && 3 * width <= EF_DSP_DW_PAD_BYTES ? width : 0;
}

/** padded[ky * width ..] = rows[ky] (NULL: outside the input) between zero-point pads. */
static inline void ef_dsp_dw_pad_rows(const ef_dw_params *p, const int8_t *const rows[3],
                                      int32_t iw, int32_t ch, int32_t width, int8_t *padded)
{
    const int zp = (int8_t)(-p->in_offset);       /* (zp + in_offset) * w == 0 */
    const int32_t left = p->pad.w * ch, right = width - left - iw * ch;
    for (int32_t ky = 0; ky < 3; ++ky) {
        int8_t *d = padded + ky * width;
        if (!rows[ky]) {
            memset(d, zp, (size_t)width);
            continue;
        }
        memset(d, zp, (size_t)left);
        memcpy(d + left, rows[ky], (size_t)(iw * ch));
        memset(d + left + iw * ch, zp, (size_t)right);
    }
}

/**
 * acc[c] = bias[c] + the nine taps of channel c of one pixel whose window starts at x0 in
 * three rows `step` bytes apart. On the DSP one asm loop over the groups of four channels:
 * LDM of the four biases, per tap one LDR, two SXTAB16 (offset added), two weight LDR and
 * four SMLAxy, then STM of the sums: 90 instructions per 36 MACs. 14 register operands
 * (the accumulators pinned to r0-r3 for LDM/STM), so never inlined. No bias: acc is zeroed
 * and read as the bias.
 */
static __attribute__((noinline)) void
ef_dsp_dw_pixel(const int8_t *x0, int32_t step, int32_t ch, uint32_t off2,
                const uint32_t *wexp, const int32_t *bias, int32_t *acc)
{
    if (!bias) {
        memset(acc, 0, (size_t)ch * sizeof(int32_t));
        bias = acc;
    }
#if EF_DSP_ASM
    register int32_t a0 __asm__("r0");
    register int32_t a1 __asm__("r1");
    register int32_t a2 __asm__("r2");
    register int32_t a3 __asm__("r3");
    const int32_t *end = acc + ch;     /* in memory: every register is taken */
    uint32_t xv, xo, wv;
#define EF_DSP_DW_ASM_TAP(addr)                          \
    "ldr %[xv], " addr "\n\t"                             \
    "sxtab16 %[xo], %[off2], %[xv], ror #8\n\t"            \
    "sxtab16 %[xv], %[off2], %[xv]\n\t"                    \
    "ldr %[wv], [%[wp]], #4\n\t"                          \
    "smlabb %[a0], %[xv], %[wv], %[a0]\n\t"               \
    "smlatt %[a2], %[xv], %[wv], %[a2]\n\t"               \
    "ldr %[wv], [%[wp]], #4\n\t"                          \
    "smlabb %[a1], %[xo], %[wv], %[a1]\n\t"               \
    "smlatt %[a3], %[xo], %[wv], %[a3]\n\t"
#define EF_DSP_DW_ASM_ROW                                   \
    EF_DSP_DW_ASM_TAP("[%[x]]")                             \
    EF_DSP_DW_ASM_TAP("[%[x], %[ch]]")                      \
    EF_DSP_DW_ASM_TAP("[%[x], %[ch], lsl #1]")
    __asm__ volatile(
        "1:\n\t"
        "ldmia %[b]!, {%[a0], %[a1], %[a2], %[a3]}\n\t"
        EF_DSP_DW_ASM_ROW
        "add %[x], %[x], %[st]\n\t"
        EF_DSP_DW_ASM_ROW
        "add %[x], %[x], %[st]\n\t"
        EF_DSP_DW_ASM_ROW
        "stmia %[y]!, {%[a0], %[a1], %[a2], %[a3]}\n\t"
        "sub %[x], %[x], %[st], lsl #1\n\t"
        "adds %[x], %[x], #4\n\t"
        "ldr %[xv], %[end]\n\t"
        "cmp %[y], %[xv]\n\t"
        "bne 1b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [wp] "+r"(wexp),
          [x] "+r"(x0), [b] "+r"(bias), [y] "+r"(acc), [xv] "=&r"(xv), [xo] "=&r"(xo),
          [wv] "=&r"(wv)
        : [ch] "r"(ch), [off2] "r"(off2), [st] "r"(step), [end] "m"(end)
        : "cc", "memory");
#undef EF_DSP_DW_ASM_ROW
#undef EF_DSP_DW_ASM_TAP
#else
    for (int32_t c = 0; c < ch; c += 4, wexp += 18) {
        int32_t a[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
        for (int32_t t = 0; t < 9; ++t) {
            const uint32_t xv = ef_dsp_ld32(x0 + (t / 3) * step + (t % 3) * ch + c);
            const uint32_t xe = ef_dsp_sxtab16(off2, xv), xo = ef_dsp_sxtab16_ror8(off2, xv);
            a[0] = ef_dsp_smlabb(xe, wexp[2 * t], a[0]);
            a[2] = ef_dsp_smlatt(xe, wexp[2 * t], a[2]);
            a[1] = ef_dsp_smlabb(xo, wexp[2 * t + 1], a[1]);
            a[3] = ef_dsp_smlatt(xo, wexp[2 * t + 1], a[3]);
        }
        memcpy(acc + c, a, sizeof a);
    }
#endif
}

/** One output row from three padded rows: nine straight-line taps per channel group;
 * acc: ch int32 of the call's scratch. */
static inline void ef_dsp_dw3x3_padded(const ef_dw_params *p, const ef_dsp_outq *s,
                                       const int8_t *padded, int32_t width, int32_t ch,
                                       int32_t ow, const uint32_t *wexp, const int32_t *bias,
                                       int8_t *yrow, int32_t *acc)
{
    const uint32_t off2 = ef_dsp_dup16(p->in_offset);
    const int32_t sw = p->stride.w;
    for (int32_t ox = 0; ox < ow; ++ox) {
        ef_dsp_dw_pixel(padded + ox * sw * ch, width, ch, off2, wexp, bias, acc);
        ef_dsp_out_row(s, EF_DWCONV2D_SINGLE_ROUNDING, acc, ch, 0, yrow + ox * ch);
    }
}

/**
 * One output row: rows[ky] is input row (oy * stride.h - pad.h + ky), or NULL outside the
 * input. Every input byte is read before the row is written when the padded copies fit;
 * otherwise output pixel ox is written after its own window was read (edge loops).
 */
static inline void ef_dsp_dw3x3_row(const ef_dw_params *p, const ef_dsp_outq *s,
                                    const int8_t *const rows[3], int32_t iw, int32_t ch,
                                    int32_t ow, const uint32_t *wexp, const int32_t *bias,
                                    int8_t *yrow, int32_t *acc, int8_t *padded)
{
    const uint32_t off2 = ef_dsp_dup16(p->in_offset);
    const int32_t sw = p->stride.w, pw = p->pad.w;
    const int32_t width = ef_dsp_dw_width(p, iw, ch, ow);
    if (width > 0) {
        ef_dsp_dw_pad_rows(p, rows, iw, ch, width, padded);
        ef_dsp_dw3x3_padded(p, s, padded, width, ch, ow, wexp, bias, yrow, acc);
        return;
    }
    for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t ix0 = ox * sw - pw;
        const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t kx1 = ix0 + 3 > iw ? iw - ix0 : 3;
        int8_t *yp = yrow + ox * ch;
        for (int32_t c = 0; c < ch; c += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (bias) {
                a0 = bias[c];
                a1 = bias[c + 1];
                a2 = bias[c + 2];
                a3 = bias[c + 3];
            }
            const uint32_t *wc = wexp + (c / 4) * 18;
            for (int32_t ky = 0; ky < 3; ++ky) {
                if (!rows[ky]) {
                    continue;
                }
                const int8_t *xp = rows[ky] + ix0 * ch + c;
                const uint32_t *wp = wc + ky * 6;
                for (int32_t kx = kx0; kx < kx1; ++kx) {
                    EF_DSP_DW_TAP(xp + kx * ch, wp + kx * 2);
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

/** Channels whose requantization triples (ef_dsp_rq_table) a depthwise call keeps. */
#ifndef EF_DSP_DW_RQ_MAX
#define EF_DSP_DW_RQ_MAX 256
#endif

/**
 * The output stage of a depthwise call (accumulators: the bias plus at most 9 taps), with
 * its triples in rq[3 * EF_DSP_DW_RQ_MAX] when they fit.
 */
static inline ef_dsp_outq ef_dsp_dw_outq(const ef_dw_params *p, const ef_quant *q,
                                         const int32_t *bias, int32_t ch, int32_t *rq)
{
    ef_dsp_outq s = ef_dsp_outq_init(q, ch, p->out_offset, p->act, bias, 9);
    if (s.tight && ch <= EF_DSP_DW_RQ_MAX) {
        ef_dsp_rq_table(&s, ch, rq);
        s.rq = rq;
    }
    return s;
}

/**
 * The working set of a 3x3 call for these dims, carved from its ctx (no stack arrays):
 * wexp (18 C bytes), acc (C int32), rq (3 C int32 when C <= EF_DSP_DW_RQ_MAX) and, when
 * ef_dsp_dw_width() > 0, the three padded rows. 0: the dims take the reference loops.
 */
static inline int32_t ef_dsp_dw_scratch(const ef_dw_params *p, int32_t iw, int32_t ch,
                                        int32_t ow)
{
    if ((ch & 3) != 0 || ch > EF_DSP_DW_CH_MAX) {
        return 0;
    }
    const int32_t width = ef_dsp_dw_width(p, iw, ch, ow);
    return 18 * ch + 4 * ch + (ch <= EF_DSP_DW_RQ_MAX ? 12 * ch : 0) + ((3 * width + 3) & ~3);
}

/** Pointers into a word-aligned scratch of ef_dsp_dw_scratch() bytes. */
typedef struct {
    uint32_t *wexp;
    int32_t *acc, *rq;
    int8_t *padded;
} ef_dsp_dw_ws;

static inline ef_dsp_dw_ws ef_dsp_dw_carve(void *buf, int32_t ch)
{
    ef_dsp_dw_ws ws;
    ws.wexp = (uint32_t *)buf;
    ws.acc = (int32_t *)(ws.wexp + 9 * ch / 2);
    ws.rq = ws.acc + ch;
    ws.padded = (int8_t *)(ws.rq + (ch <= EF_DSP_DW_RQ_MAX ? 3 * ch : 0));
    return ws;
}

#endif /* EF_DSP_DW_H */
