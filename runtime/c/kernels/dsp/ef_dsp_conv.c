/* The DSP convolution engine (see ef_dsp_conv.h): one copy shared by ef_conv2d_s8,
 * ef_conv2d_1x1_s8 and ef_conv2d_1x1_inplace_s8. */
#include "ef_dsp_conv.h"

#if EF_DSP_KERNELS   /* else an empty engine: the kernels are the reference ones */

/** Longest column with C_IN % 4 != 0 the fast path takes (first layers: 3x3x3, 10x4x1). */
#ifndef EF_DSP_TMP_MAX
#define EF_DSP_TMP_MAX 256
#endif

/* n groups of four int8 from src, offset added, to the pair slot at d (stride 4 words) */
static inline void ef_dsp_groups(const int8_t *src, int32_t n, uint32_t off2, uint32_t *d)
{
#if EF_DSP_ASM
    /* 5 instructions per group: LDR (unaligned-safe), 2 SXTAB16, STRD (the pair buffer is
     * word aligned), plus SUBS/BGE per two groups */
    uint32_t v0, v1, lo, hi;
    __asm__ volatile(
        "subs %[n], %[n], #2\n\t"
        "blt 2f\n\t"
        "1:\n\t"
        "ldr %[v0], [%[s]], #4\n\t"
        "ldr %[v1], [%[s]], #4\n\t"
        "sxtab16 %[lo], %[off2], %[v0]\n\t"
        "sxtab16 %[hi], %[off2], %[v0], ror #8\n\t"
        "strd %[lo], %[hi], [%[d]], #16\n\t"
        "sxtab16 %[lo], %[off2], %[v1]\n\t"
        "sxtab16 %[hi], %[off2], %[v1], ror #8\n\t"
        "strd %[lo], %[hi], [%[d]], #16\n\t"
        "subs %[n], %[n], #2\n\t"
        "bge 1b\n\t"
        "2:\n\t"
        "adds %[n], %[n], #2\n\t"
        "beq 3f\n\t"
        "ldr %[v0], [%[s]]\n\t"
        "sxtab16 %[lo], %[off2], %[v0]\n\t"
        "sxtab16 %[hi], %[off2], %[v0], ror #8\n\t"
        "strd %[lo], %[hi], [%[d]]\n\t"
        "3:\n\t"
        : [s] "+r"(src), [n] "+r"(n), [d] "+r"(d), [v0] "=&r"(v0), [v1] "=&r"(v1),
          [lo] "=&r"(lo), [hi] "=&r"(hi)
        : [off2] "r"(off2)
        : "cc", "memory");
#else
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
#endif
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
 * straight into its slot; other widths go through an int8 tmp[K] in natural order first.
 */
static void ef_dsp_im2col(const ef_conv_params *p, const ef_dims *in, const int8_t *x,
                          int32_t kh, int32_t kw, int32_t oh, int32_t ow, int32_t pix,
                          int32_t slot, uint32_t *pair, int16_t *tail, int8_t *tmp,
                          int padded)
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
    /* the column in natural order as int8, padding = the input zero point (adds 0), then
     * the same group conversion; row runs are copied whole (dilation 1) */
    const int8_t zp = (int8_t)(-in_off);
    int8_t *t = tmp;
    for (int32_t ky = 0; ky < kh; ++ky, t += kw * ic) {
        const int32_t iy = iy0 + dh * ky;
        if (iy < 0 || iy >= ih) {
            memset(t, zp, (size_t)(kw * ic));
            continue;
        }
        const int8_t *row = xb + iy * iw * ic;
        if (dw == 1) {
            const int32_t kx0 = ix0 < 0 ? (-ix0 < kw ? -ix0 : kw) : 0;
            const int32_t kx1 = ix0 + kw > iw ? (iw - ix0 > kx0 ? iw - ix0 : kx0) : kw;
            const int8_t *src = row + (ix0 + kx0) * ic;
            for (int32_t i = 0; i < kx0 * ic; ++i) {
                t[i] = zp;
            }
            for (int32_t i = kx0 * ic; i < kx1 * ic; ++i) {
                t[i] = src[i - kx0 * ic];
            }
            for (int32_t i = kx1 * ic; i < kw * ic; ++i) {
                t[i] = zp;
            }
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + dw * kx;
            for (int32_t i = 0; i < ic; ++i) {
                t[kx * ic + i] = ix < 0 || ix >= iw ? zp : row[ix * ic + i];
            }
        }
    }
    const int32_t k = kh * kw * ic, k4 = k & ~3;
    if (padded) {            /* the tail as one more group, its missing taps adding 0 */
        for (int32_t i = k; i < ((k + 3) & ~3); ++i) {
            tmp[i] = zp;
        }
        ef_dsp_groups(tmp, (k + 3) >> 2, off2, d);
        return;
    }
    ef_dsp_groups(tmp, k4 >> 2, off2, d);
    for (int32_t i = k4; i < k; ++i) {
        tail[4 * slot + i - k4] = (int16_t)(tmp[i] + in_off);
    }
}

static inline int8_t ef_dsp_conv_out(const ef_conv_params *p, const ef_quant *q, int32_t o,
                                     int32_t acc)
{
    acc = ef_dsp_requantize(EF_CONV2D_SINGLE_ROUNDING, acc, q->mult[o], q->shift[o]);
    return (int8_t)ef_nn_clamp(acc + p->out_offset, p->act.min, p->act.max);
}

/* Plain per-pixel loop (the reference's), for columns too long for the stack buffers. */
static __attribute__((noinline, cold)) ef_status ef_dsp_conv_plain(const ef_conv_params *p, const ef_quant *q,
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

/* Cursor of ef_dsp_mm_blocks (kept in memory: the MAC loop needs every register). */
typedef struct {
    const uint32_t *pair;   /* 0: the column pair */
    int32_t n;              /* 4: groups of four taps (>= 1) */
    const int32_t *bias;    /* 8: bias pairs (b[o], b[o + 1]) per block, advanced */
    int32_t *acc;           /* 12: 4 accumulators per block, advanced */
    int32_t wadv;           /* 16: bytes from the end of row o to row o + 2 */
    int32_t blocks;         /* 20: blocks left */
} ef_dsp_mm_ctx;

/*
 * For each block (two weight rows w, w + wstep; the next block's rows start wadv bytes after
 * this block's first row ends): acc[0..3] = (pixel 0, row 0), (0, 1), (1, 0), (1, 1), each
 * its bias plus the column pair against the row. Per group of four taps: one LDM, two LDR,
 * four SXTB16, eight SMLAD (16 MACs) and SUBS/BNE; per block about twenty more.
 */
/* One group of four taps: the column words of two pixels (LDM), the same four taps of rows
 * o + 1 (at w + wstep) and o (post-incremented), 2 x SXTB16 each, 8 SMLAD = 16 MACs. */
#define EF_DSP_MM_GROUP \
    "ldmia %[c]!, {%[x0e], %[x0o], %[x1e], %[x1o]}\n\t" \
    "ldr %[wv], [%[w], %[ws]]\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad %[s01], %[x0e], %[t], %[s01]\n\t" \
    "smlad %[s11], %[x1e], %[t], %[s11]\n\t" \
    "smlad %[s01], %[x0o], %[wv], %[s01]\n\t" \
    "smlad %[s11], %[x1o], %[wv], %[s11]\n\t" \
    "ldr %[wv], [%[w]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad %[s00], %[x0e], %[t], %[s00]\n\t" \
    "smlad %[s10], %[x1e], %[t], %[s10]\n\t" \
    "smlad %[s00], %[x0o], %[wv], %[s00]\n\t" \
    "smlad %[s10], %[x1o], %[wv], %[s10]\n\t"

/* never inlined: the asm pins r0-r3 and r8-r11 and needs 14 free registers */
static __attribute__((noinline)) void ef_dsp_mm_blocks(ef_dsp_mm_ctx *cx, const int8_t *w,
                                                      int32_t wstep)
{
#if EF_DSP_ASM
    /* LDM/STM register lists are ascending: pin the accumulators and the column words */
    register int32_t s00 __asm__("r0");
    register int32_t s01 __asm__("r1");
    register int32_t s10 __asm__("r2");
    register int32_t s11 __asm__("r3");
    register uint32_t x0e __asm__("r8");
    register uint32_t x0o __asm__("r9");
    register uint32_t x1e __asm__("r10");
    register uint32_t x1o __asm__("r11");
    const uint32_t *c;
    int32_t n;
    uint32_t wv;
    ef_dsp_mm_ctx *t = cx;
    __asm__ volatile(
        "push {%[t]}\n\t"
        "2:\n\t"
        "ldr %[t], [sp]\n\t"
        "ldr %[c], [%[t], #0]\n\t"
        "ldr %[n], [%[t], #4]\n\t"
        "ldr %[wv], [%[t], #8]\n\t"
        "ldmia %[wv]!, {%[s00], %[s01]}\n\t"
        "str %[wv], [%[t], #8]\n\t"
        "mov %[s10], %[s00]\n\t"
        "mov %[s11], %[s01]\n\t"
        /* one group if n is odd, then two per iteration (one SUBS/BNE per 32 MACs) */
        "tst %[n], #1\n\t"
        "beq 3f\n\t"
        EF_DSP_MM_GROUP
        "3:\n\t"
        "lsrs %[n], %[n], #1\n\t"
        "beq 4f\n\t"
        "1:\n\t"
        EF_DSP_MM_GROUP
        EF_DSP_MM_GROUP
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "4:\n\t"
        "ldr %[t], [sp]\n\t"
        "ldr %[wv], [%[t], #12]\n\t"
        "stmia %[wv]!, {%[s00], %[s01], %[s10], %[s11]}\n\t"
        "str %[wv], [%[t], #12]\n\t"
        "ldr %[wv], [%[t], #16]\n\t"
        "add %[w], %[w], %[wv]\n\t"
        "ldr %[wv], [%[t], #20]\n\t"
        "subs %[wv], %[wv], #1\n\t"
        "str %[wv], [%[t], #20]\n\t"
        "bne 2b\n\t"
        "pop {%[t]}\n\t"
        : [s00] "=&r"(s00), [s01] "=&r"(s01), [s10] "=&r"(s10), [s11] "=&r"(s11),
          [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o),
          [c] "=&r"(c), [n] "=&r"(n), [wv] "=&r"(wv), [t] "+r"(t), [w] "+r"(w)
        : [ws] "r"(wstep)
        : "cc", "memory");
#else
    for (; cx->blocks > 0; --cx->blocks) {
        const uint32_t *c = cx->pair;
        int32_t s00 = cx->bias[0], s01 = cx->bias[1], s10 = s00, s11 = s01;
        cx->bias += 2;
        for (int32_t n = cx->n; n > 0; --n, c += 4, w += 4) {
            const uint32_t x0e = c[0], x0o = c[1], x1e = c[2], x1o = c[3];
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
        }
        cx->acc[0] = s00;
        cx->acc[1] = s01;
        cx->acc[2] = s10;
        cx->acc[3] = s11;
        cx->acc += 4;
        w += cx->wadv;
    }
#endif
}

/**
 * ef_dsp_out_pairs for a tight, full-int8-clamp stage, both pixels, n even: per block of two
 * channels one LDM of the four accumulators and one LDM of each channel's (mult, shift,
 * rounding) from rq (ef_dsp_rq_table), then 8 instructions per output. Never inlined.
 */
static __attribute__((noinline)) void
ef_dsp_out_pairs_rq(const int32_t *acc, const int32_t *rq, int32_t n, int32_t off,
                    int8_t *y0, int8_t *y1)
{
#if EF_DSP_ASM
    register int32_t a0 __asm__("r0");
    register int32_t a1 __asm__("r1");
    register int32_t a2 __asm__("r2");
    register int32_t a3 __asm__("r3");
    register int32_t m __asm__("r4");
    register int32_t r __asm__("r5");
    register int32_t k __asm__("r6");
    int32_t t, blocks = n >> 1;
#define EF_DSP_RQ_ONE(a, y)                              \
    "lsl %[t], " a ", #1\n\t"                             \
    "smmulr %[t], %[t], %[m]\n\t"                         \
    "add " a ", %[t], %[k]\n\t"                           \
    "sub " a ", " a ", %[t], lsr #31\n\t"                  \
    "asr " a ", " a ", %[r]\n\t"                           \
    "add " a ", " a ", %[off]\n\t"                         \
    "ssat " a ", #8, " a "\n\t"                            \
    "strb " a ", [" y "], #1\n\t"
    __asm__ volatile(
        "1:\n\t"
        "ldmia %[acc]!, {%[a0], %[a1], %[a2], %[a3]}\n\t"
        "ldmia %[rq]!, {%[m], %[r], %[k]}\n\t"
        EF_DSP_RQ_ONE("%[a0]", "%[y0]")
        EF_DSP_RQ_ONE("%[a2]", "%[y1]")
        "ldmia %[rq]!, {%[m], %[r], %[k]}\n\t"
        EF_DSP_RQ_ONE("%[a1]", "%[y0]")
        EF_DSP_RQ_ONE("%[a3]", "%[y1]")
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [m] "=&r"(m),
          [r] "=&r"(r), [k] "=&r"(k), [t] "=&r"(t), [acc] "+r"(acc), [rq] "+r"(rq),
          [y0] "+r"(y0), [y1] "+r"(y1), [n] "+r"(blocks)
        : [off] "r"(off)
        : "cc", "memory");
#undef EF_DSP_RQ_ONE
#else
    for (int32_t j = 0; j < n; j += 2, acc += 4, rq += 6) {
        y0[j] = (int8_t)ef_dsp_sat8(ef_dsp_rq(acc[0], rq[0], rq[1], rq[2]) + off);
        y1[j] = (int8_t)ef_dsp_sat8(ef_dsp_rq(acc[2], rq[0], rq[1], rq[2]) + off);
        y0[j + 1] = (int8_t)ef_dsp_sat8(ef_dsp_rq(acc[1], rq[3], rq[4], rq[5]) + off);
        y1[j + 1] = (int8_t)ef_dsp_sat8(ef_dsp_rq(acc[3], rq[3], rq[4], rq[5]) + off);
    }
#endif
}

/**
 * ef_dsp_out_pairs_rq without a table and without the |acc| < 2^30 bound (more than
 * EF_DSP_OC_BLOCK channels, or large biases): EF_DSP_MQ_ONE per output, each channel's
 * (mult, shift) loaded once for both pixels. Never inlined.
 */
static __attribute__((noinline)) void
ef_dsp_out_pairs_mq(const int32_t *acc, const int32_t *mult, const int32_t *shift, int32_t n,
                    int32_t off, int8_t *y0, int8_t *y1)
{
#if EF_DSP_ASM
    int32_t a, b, m, r, t, blocks = n >> 1;
    const int32_t off21 = 2 * off + 1;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[a], [%[acc]]\n\t"
        "ldr %[b], [%[acc], #8]\n\t"
        "ldr %[m], [%[mp]], #4\n\t"
        "ldr %[r], [%[sp]], #4\n\t"
        "mvn %[r], %[r]\n\t"
        EF_DSP_MQ_ONE("%[a]", "%[y0]")
        EF_DSP_MQ_ONE("%[b]", "%[y1]")
        "ldr %[a], [%[acc], #4]\n\t"
        "ldr %[b], [%[acc], #12]\n\t"
        "ldr %[m], [%[mp]], #4\n\t"
        "ldr %[r], [%[sp]], #4\n\t"
        "mvn %[r], %[r]\n\t"
        EF_DSP_MQ_ONE("%[a]", "%[y0]")
        EF_DSP_MQ_ONE("%[b]", "%[y1]")
        "adds %[acc], %[acc], #16\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a] "=&r"(a), [b] "=&r"(b), [m] "=&r"(m), [r] "=&r"(r), [t] "=&r"(t),
          [acc] "+r"(acc), [mp] "+r"(mult), [sp] "+r"(shift),
          [y0] "+r"(y0), [y1] "+r"(y1), [n] "+r"(blocks)
        : [off] "r"(off21)
        : "cc", "memory");
#else
    for (int32_t j = 0; j < n; ++j) {
        const int32_t *a = acc + 2 * (j & ~1) + (j & 1);
        y0[j] = ef_dsp_mq(a[0], mult[j], shift[j], off);
        y1[j] = ef_dsp_mq(a[2], mult[j], shift[j], off);
    }
#endif
}

/* bytes of the natural-order int8 column (C_IN % 4 != 0 only), word-rounded */
static inline int32_t ef_dsp_tmp_bytes(int32_t k, int32_t ic)
{
    return (ic & 3) ? (k + 3) & ~3 : 0;
}

int32_t ef_dsp_conv_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out)
{
    const int32_t k = wd->h * wd->w * in->c, k4 = k & ~3;
    if (k > EF_DSP_COL_MAX || ((in->c & 3) && k > EF_DSP_TMP_MAX)) {
        return 0;
    }
    const int32_t nb = out->c < EF_DSP_OC_BLOCK ? out->c : EF_DSP_OC_BLOCK;
    /* pair: K rounded up to 4 words (ef_dsp_conv_w4's extra group); tmp; acc: 2 nb + 2
     * int32; rq: 3 nb int32 */
    (void)k4;
    return 4 * ((k + 3) & ~3) + ef_dsp_tmp_bytes(k, in->c) + 4 * (2 * nb + 2) + 12 * nb;
}

/* ws: the filter's row stride, k, or (ef_dsp_conv_w4) k rounded up to 4 with zero taps */
static ef_status ef_dsp_conv_ws(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                                const ef_dims *in, const int8_t *x,
                                const ef_dims *wd, const int8_t *w, int32_t ws,
                                const int32_t *bias, const ef_dims *out, int8_t *y)
{
    const int32_t kh = wd->h, kw = wd->w, oh = out->h, ow = out->w, oc = out->c;
    const int32_t k = kh * kw * in->c, padded = ws != k, k4 = padded ? ws : k & ~3;
    const int32_t need = ef_dsp_conv_scratch_size(in, wd, out);
    if (need == 0 || !ctx || !ctx->buf || ctx->size < need || ((uintptr_t)ctx->buf & 3)) {
        return ef_dsp_conv_plain(p, q, in, x, wd, w, bias, out, y);
    }
    /* the working set lives in the planned arena (ctx), not on the stack */
    const int32_t nb = oc < EF_DSP_OC_BLOCK ? oc : EF_DSP_OC_BLOCK;
    uint32_t *pair = (uint32_t *)ctx->buf;   /* two pixels' columns, interleaved by group */
    int8_t *tmp = (int8_t *)(pair + ((k + 3) & ~3));   /* natural-order column, C_IN % 4 */
    int32_t *acc = (int32_t *)(tmp + ef_dsp_tmp_bytes(k, in->c));   /* 2 nb + 2 */
    int32_t *rq = acc + 2 * nb + 2;          /* 3 nb */
    int16_t tail[8] = {0};
    static const int32_t zeros[EF_DSP_OC_BLOCK] = {0};
    const ef_dsp_outq s = ef_dsp_outq_init(q, oc, p->out_offset, p->act, bias, k);
    /* the all-asm requantization: tight, full clamp, one channel block, even channels */
    const int fast_out = !EF_CONV2D_SINGLE_ROUNDING && s.tight && ef_dsp_full8(&s)
                         && oc <= EF_DSP_OC_BLOCK && (oc & 1) == 0;
    /* else the no-table pass: wider layers, large biases */
    const int wide_out = !EF_CONV2D_SINGLE_ROUNDING && !fast_out && ef_dsp_full8(&s)
                         && (oc & 1) == 0 && ef_dsp_mq_ok(q, oc);
    if (fast_out) {
        ef_dsp_rq_table(&s, oc, rq);
    }
    const int32_t npix = out->n * oh * ow;
    const int direct = kh == 1 && kw == 1 && (in->c & 3) == 0 && p->stride.h == 1
                       && p->stride.w == 1 && p->pad.h == 0 && p->pad.w == 0
                       && in->h == oh && in->w == ow;
    const uint32_t off2 = ef_dsp_dup16(p->in_offset);
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int two = pix + 1 < npix;
        /* both columns are built before either pixel is written (in-place contract); a
         * lone last pixel runs as its own twin */
        if (direct) {        /* pointwise, stride 1, no pad: the column is the pixel */
            ef_dsp_groups(x + pix * k, k >> 2, off2, pair);
            ef_dsp_groups(x + (two ? pix + 1 : pix) * k, k >> 2, off2, pair + 2);
        } else {
            ef_dsp_im2col(p, in, x, kh, kw, oh, ow, pix, 0, pair, tail, tmp, padded);
            ef_dsp_im2col(p, in, x, kh, kw, oh, ow, two ? pix + 1 : pix, 1, pair, tail, tmp,
                          padded);
        }
        int8_t *y0 = y + pix * oc, *y1 = y0 + oc;
        for (int32_t c0 = 0; c0 < oc; c0 += EF_DSP_OC_BLOCK) {
            const int32_t nc = oc - c0 < EF_DSP_OC_BLOCK ? oc - c0 : EF_DSP_OC_BLOCK;
            const int32_t *bp = bias ? bias + c0 : zeros;
            /* MACs first, two channels x two pixels per block, into acc[4 * block + i] */
            if (k4 > 0) {
                ef_dsp_mm_ctx cx = {pair, k4 >> 2, bp, acc, 2 * ws - k4, nc >> 1};
                if (cx.blocks > 0) {
                    ef_dsp_mm_blocks(&cx, w + c0 * ws, ws);
                }
                if (nc & 1) {               /* the last row alone (its own twin) */
                    const int32_t bl[2] = {bp[nc - 1], bp[nc - 1]};
                    ef_dsp_mm_ctx c1 = {pair, k4 >> 2, bl, acc + 2 * (nc - 1), 0, 1};
                    ef_dsp_mm_blocks(&c1, w + (c0 + nc - 1) * ws, 0);
                }
            } else {
                for (int32_t j = 0; j < nc; ++j) {
                    acc[2 * (j & ~1) + (j & 1)] = acc[2 * (j & ~1) + (j & 1) + 2] = bp[j];
                }
            }
            for (int32_t j = 0; j < nc && k4 < k; ++j) {     /* the K % 4 tail taps */
                const int8_t *wj = w + (c0 + j) * ws;
                int32_t *a = acc + 2 * (j & ~1) + (j & 1);
                for (int32_t i = k4; i < k; ++i) {
                    a[0] += tail[i - k4] * wj[i];
                    a[2] += tail[4 + i - k4] * wj[i];
                }
            }
            /* then one tight requantization pass */
            if (fast_out && two) {
                ef_dsp_out_pairs_rq(acc, rq, nc, s.out_offset, y0, y1);
            } else if (wide_out && two) {      /* nc is even: every block but the last is 64 */
                ef_dsp_out_pairs_mq(acc, q->mult + c0, q->shift + c0, nc, s.out_offset,
                                    y0 + c0, y1 + c0);
            } else {
                ef_dsp_out_pairs(&s, EF_CONV2D_SINGLE_ROUNDING, acc, nc, c0, y0 + c0,
                                 two ? y1 + c0 : NULL);
            }
        }
    }
    return EF_OK;
}

ef_status ef_dsp_conv(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                      const ef_dims *in, const int8_t *x,
                      const ef_dims *wd, const int8_t *w, const int32_t *bias,
                      const ef_dims *out, int8_t *y)
{
    return ef_dsp_conv_ws(ctx, p, q, in, x, wd, w, wd->h * wd->w * in->c, bias, out, y);
}

ef_status ef_dsp_conv_w4(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *wd, const int8_t *w4, const int32_t *bias,
                         const ef_dims *out, int8_t *y)
{
    return ef_dsp_conv_ws(ctx, p, q, in, x, wd, w4, (wd->h * wd->w * in->c + 3) & ~3, bias,
                          out, y);
}

#else
typedef int ef_dsp_conv_unused;   /* ISO C: no empty translation unit */
#endif /* EF_DSP_KERNELS */
