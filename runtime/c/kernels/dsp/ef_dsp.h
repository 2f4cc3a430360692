/**
 * @file ef_dsp.h
 * @brief Private helpers of the Armv7E-M DSP kernels (SXTB16 / SXTAB16 / SMLAD dual MACs).
 *
 * The kernels in this directory define the SAME symbols as kernels/ref/ and produce the SAME
 * bytes: the build compiles this directory instead of ref/ for a DSP core (TFLM
 * OPTIMIZED_KERNEL_DIR style). Without __ARM_FEATURE_DSP every file here is just its
 * reference kernel; the host tests define EF_DSP_EMULATE, which turns the intrinsics below
 * into plain C with identical results, so these exact loops run bit for bit against the
 * reference ones (tests/c/test_dsp_kernels*.py).
 *
 * Packed layout: an int16x2 word holds lanes (bottom, top). SXTB16 of bytes (b0 b1 b2 b3)
 * gives (b0, b2); of the word rotated by 8, (b1, b3). An im2col column is stored "reordered"
 * in groups of four as (x0, x2, x1, x3), so two 32-bit loads pair with those two words of
 * the weights and SMLAD does two MACs each.
 */
#ifndef EF_DSP_H
#define EF_DSP_H

#include <stdint.h>
#include <string.h>

#include "../ref/ef_nn_support.h"  /* the tree's, matching the ref kernels included below */

/**
 * 1 where the hand-scheduled inline-asm loops are used: a Thumb-2 core with the DSP extension,
 * optimizing (at -O0 the frame pointer leaves too few registers), unless EF_DSP_NO_ASM.
 * Elsewhere the same loops run as C on the intrinsics below.
 */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__OPTIMIZE__) \
    && !defined(EF_DSP_NO_ASM) && !defined(EF_DSP_EMULATE)
#define EF_DSP_ASM 1
#else
#define EF_DSP_ASM 0
#endif

/** Longest im2col column (KH * KW * C_IN) the fast path takes; two live on the stack. */
#ifndef EF_DSP_COL_MAX
#define EF_DSP_COL_MAX 1024
#endif

/** Output channels whose int32 accumulators (two pixels) are kept between MACs and requant. */
#ifndef EF_DSP_OC_BLOCK
#define EF_DSP_OC_BLOCK 64
#endif

/**
 * EF_DSP_KERNELS: 1 compiles the DSP kernels of this directory: on a core with the DSP
 * extension, or anywhere with EF_DSP_EMULATE (the host tests: the intrinsics below become
 * plain C with identical results, so the very same loops run). 0 (no DSP extension): every
 * kernel file here is exactly its reference kernel (ref/<same name>.c), nothing else.
 */
#if defined(__ARM_FEATURE_DSP) || defined(EF_DSP_EMULATE)
#define EF_DSP_KERNELS 1
#else
#define EF_DSP_KERNELS 0
#endif

#if defined(__ARM_FEATURE_DSP) && !defined(EF_DSP_EMULATE)
#include <arm_acle.h>
static inline uint32_t ef_dsp_sxtb16(uint32_t v) { return (uint32_t)__sxtb16((int8x4_t)v); }
static inline uint32_t ef_dsp_sxtab16(uint32_t a, uint32_t v)
{
    return (uint32_t)__sxtab16((int16x2_t)a, (int8x4_t)v);
}
static inline int32_t ef_dsp_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlad((int16x2_t)a, (int16x2_t)b, acc);
}
static inline int32_t ef_dsp_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabb((int32_t)a, (int32_t)b, acc);
}
static inline int32_t ef_dsp_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatt((int32_t)a, (int32_t)b, acc);
}
/* the rotate folds into the extend instruction (gcc does not fold it from C) */
static inline uint32_t ef_dsp_sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static inline uint32_t ef_dsp_sxtab16_ror8(uint32_t a, uint32_t v)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}
#else
static inline int32_t ef_dsp_lo(uint32_t v) { return (int16_t)(uint16_t)(v & 0xFFFFu); }
static inline int32_t ef_dsp_hi(uint32_t v) { return (int16_t)(uint16_t)(v >> 16); }
static inline uint32_t ef_dsp_pack(int32_t lo, int32_t hi)
{
    return ((uint32_t)(uint16_t)lo) | ((uint32_t)(uint16_t)hi << 16);
}
static inline uint32_t ef_dsp_sxtb16(uint32_t v)
{
    return ef_dsp_pack((int8_t)(v & 0xFFu), (int8_t)((v >> 16) & 0xFFu));
}
static inline uint32_t ef_dsp_sxtab16(uint32_t a, uint32_t v)
{
    return ef_dsp_pack(ef_dsp_lo(a) + (int8_t)(v & 0xFFu), ef_dsp_hi(a) + (int8_t)((v >> 16) & 0xFFu));
}
static inline int32_t ef_dsp_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + ef_dsp_lo(a) * ef_dsp_lo(b) + ef_dsp_hi(a) * ef_dsp_hi(b);
}
static inline int32_t ef_dsp_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + ef_dsp_lo(a) * ef_dsp_lo(b);
}
static inline int32_t ef_dsp_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + ef_dsp_hi(a) * ef_dsp_hi(b);
}
static inline uint32_t ef_dsp_sxtb16_ror8(uint32_t v) { return ef_dsp_sxtb16((v >> 8) | (v << 24)); }
static inline uint32_t ef_dsp_sxtab16_ror8(uint32_t a, uint32_t v)
{
    return ef_dsp_sxtab16(a, (v >> 8) | (v << 24));
}
#endif

/**
 * TFLite's MultiplyByQuantizedMultiplier with the rounding `single` (0/1, compile-time), in
 * the shape CMSIS-NN's arm_nn_requantize uses. Double rounding: (a*m + 2^30) >> 31 (floor)
 * equals gemmlowp's SaturatingRoundingDoublingHighMul (sign-dependent nudge, truncating
 * division) for every product, since ceil(t/2^31 - 1/2) = floor((t + 2^30 - 1)/2^31) for
 * t = -a*m > 0; its saturation case needs m == INT32_MIN, which no multiplier is. The right
 * shift then rounds half away from zero exactly like ef_rdbp. Same bytes as
 * ef_requantize_double / ef_requantize_single (checked in tests/c/test_dsp_kernels.py).
 */
static inline int32_t ef_dsp_requantize(int single, int32_t acc, int32_t mult, int32_t shift)
{
    if (single) {
        return ef_requantize_single(acc, mult, shift);
    }
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t a = (int32_t)((uint32_t)acc << left);
    const int32_t v = (int32_t)(((int64_t)a * mult + ((int64_t)1 << 30)) >> 31);
    const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u);
    const int32_t threshold = (mask >> 1) + (v < 0 ? 1 : 0);
    return (v >> right) + ((v & mask) > threshold ? 1 : 0);
}

/** SMMULR: the high word of a * b, rounded: (a * b + 2^31) >> 32. */
static inline int32_t ef_dsp_smmulr(int32_t a, int32_t b)
{
#if defined(__ARM_FEATURE_DSP) && !defined(EF_DSP_EMULATE)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
#endif
}

/**
 * ef_dsp_requantize for |acc| < 2^30 (callers check a bound on the accumulators once per
 * call): double rounding in five instructions for shift <= 0. SRDHM(acc, m) =
 * (acc * m + 2^30) >> 31 = SMMULR(2 * acc, m) (2 * acc fits), and |SRDHM| < 2^30, so the
 * rounding right shift (v + 2^(r-1) - (v < 0)) >> r cannot overflow; it rounds half away
 * from zero exactly as ef_rdbp does.
 */
static inline int32_t ef_dsp_requantize_small(int single, int32_t acc, int32_t mult,
                                              int32_t shift)
{
    if (single || shift > 0) {
        return ef_dsp_requantize(single, acc, mult, shift);
    }
    const int32_t v = ef_dsp_smmulr(acc * 2, mult);
    if (shift == 0) {
        return v;
    }
    const int32_t r = -shift;
    return (int32_t)(v + ((int32_t)1 << (r - 1)) - (int32_t)((uint32_t)v >> 31)) >> r;
}

/** 1 if every |bias| < 2^29 (or no bias) and taps < 2^14: then |acc| < 2^30. */
static inline int ef_dsp_acc_small(const int32_t *bias, int32_t n, int32_t taps)
{
    if (taps >= (1 << 14)) {
        return 0;
    }
    for (int32_t i = 0; bias && i < n; ++i) {
        if (bias[i] >= (1 << 29) || bias[i] <= -(1 << 29)) {
            return 0;
        }
    }
    return 1;
}

/** 1 if every channel has shift <= -2 or mult 0: the no-table passes are exact for it. */
static inline int ef_dsp_mq_ok(const ef_quant *q, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        if (q->shift[i] > -2 && q->mult[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/** The output stage of a conv-like kernel, hoisted out of its loops. */
typedef struct {
    const int32_t *mult, *shift;
    int32_t out_offset, amin, amax;
    int small;      /* ef_dsp_acc_small() held: the fast requantization is exact */
    int tight;      /* small, and every shift < 0 or mult 0 (a dead channel: the output is
                     * the offset whatever the shift): the table passes (ef_dsp_rq_table) */
    const int32_t *rq;  /* tight: (mult, -shift, rounding) per channel (ef_dsp_rq_table), or 0 */
} ef_dsp_outq;

/** The output stage for n channels whose accumulators are a bias plus `taps` products. */
static inline ef_dsp_outq ef_dsp_outq_init(const ef_quant *q, int32_t n, int32_t out_offset,
                                           ef_act act, const int32_t *bias, int32_t taps)
{
    ef_dsp_outq s = {q->mult, q->shift, out_offset, act.min, act.max,
                     ef_dsp_acc_small(bias, n, taps), 0, 0};
    s.tight = s.small;
    for (int32_t i = 0; i < n && s.tight; ++i) {
        s.tight = q->shift[i] < 0 || q->mult[i] == 0;
    }
    return s;
}

/** requantize (rounding `single`), add the output offset, clamp, narrow. */
static inline int8_t ef_dsp_out(const ef_dsp_outq *s, int single, int32_t c, int32_t acc)
{
    const int32_t v = s->small ? ef_dsp_requantize_small(single, acc, s->mult[c], s->shift[c])
                               : ef_dsp_requantize(single, acc, s->mult[c], s->shift[c]);
    return (int8_t)ef_nn_clamp(v + s->out_offset, s->amin, s->amax);
}

/** SSAT #8: clamp to [-128, 127]. */
static inline int32_t ef_dsp_sat8(int32_t v)
{
#if defined(__ARM_FEATURE_DSP) && !defined(EF_DSP_EMULATE)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* shift < 0, |acc| < 2^30: ef_dsp_requantize_small with r = -shift, rnd = 2^(r-1) */
static inline int32_t ef_dsp_rq(int32_t acc, int32_t m, int32_t r, int32_t rnd)
{
    const int32_t v = ef_dsp_smmulr(acc * 2, m);
    return (int32_t)(v + rnd - (int32_t)((uint32_t)v >> 31)) >> r;
}

/* the clamp, specialised (full = the whole int8 range: one SSAT) */
static inline int8_t ef_dsp_clamp8(int full, int32_t v, int32_t amin, int32_t amax)
{
    return (int8_t)(full ? ef_dsp_sat8(v) : ef_nn_clamp(v, amin, amax));
}

static inline int ef_dsp_full8(const ef_dsp_outq *s)
{
    return s->amin == -128 && s->amax == 127;
}

/** Per-channel (mult, right shift, rounding) triples of a tight stage, for the asm passes. */
static inline void ef_dsp_rq_table(const ef_dsp_outq *s, int32_t n, int32_t *rq)
{
    for (int32_t c = 0; c < n; ++c, rq += 3) {
        rq[0] = s->mult[c];
        rq[1] = s->mult[c] ? -s->shift[c] : 1;  /* mult 0: any shift gives 0 */
        rq[2] = (int32_t)1 << (rq[1] - 1);
    }
}

/**
 * The tight, full-int8-clamp pass over n channels of one pixel: per channel one LDM of its
 * (mult, shift, rounding), then 9 instructions. Never inlined (pinned registers).
 */
static __attribute__((noinline, unused)) void
ef_dsp_out_row_rq(const int32_t *acc, const int32_t *rq, int32_t n, int32_t off, int8_t *y)
{
#if EF_DSP_ASM
    register int32_t m __asm__("r4");
    register int32_t r __asm__("r5");
    register int32_t k __asm__("r6");
    int32_t a, t;
    __asm__ volatile(
        "1:\n\t"
        "ldmia %[rq]!, {%[m], %[r], %[k]}\n\t"
        "ldr %[a], [%[acc]], #4\n\t"
        "lsl %[t], %[a], #1\n\t"
        "smmulr %[t], %[t], %[m]\n\t"
        "add %[a], %[t], %[k]\n\t"
        "sub %[a], %[a], %[t], lsr #31\n\t"
        "asr %[a], %[a], %[r]\n\t"
        "add %[a], %[a], %[off]\n\t"
        "ssat %[a], #8, %[a]\n\t"
        "strb %[a], [%[y]], #1\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [m] "=&r"(m), [r] "=&r"(r), [k] "=&r"(k), [a] "=&r"(a), [t] "=&r"(t),
          [acc] "+r"(acc), [rq] "+r"(rq), [y] "+r"(y), [n] "+r"(n)
        : [off] "r"(off)
        : "cc", "memory");
#else
    for (int32_t j = 0; j < n; ++j, rq += 3) {
        y[j] = (int8_t)ef_dsp_sat8(ef_dsp_rq(acc[j], rq[0], rq[1], rq[2]) + off);
    }
#endif
}

/* one output of the no-table pass (ef_dsp_out_pairs_mq in ef_dsp_conv.c), any int32 acc:
 * SMULL gives acc * m exactly; doubling the 64-bit product puts floor(P / 2^31) in the high
 * word and bit 30 of P (the + 2^30 rounding) in the carry out of the low word, so v = SRDHM
 * in four instructions. Then with r = -shift >= 2 and t = v - (v < 0), the half-away rounding
 * (t + 2^(r-1)) >> r == ((t >> (r-1)) + 1) >> 1, the output offset riding along as
 * 2 * off + 1 (|t >> (r-1)| < 2^30: no overflow). `r` holds r - 1 (MVN of the shift). */
#define EF_DSP_MQ_ONE(a, y)                              \
    "smull %[t], " a ", " a ", %[m]\n\t"                 \
    "adds %[t], %[t], %[t]\n\t"                          \
    "adc " a ", " a ", " a "\n\t"                        \
    "add " a ", " a ", %[t], lsr #31\n\t"                \
    "sub " a ", " a ", " a ", lsr #31\n\t"               \
    "asr " a ", " a ", %[r]\n\t"                         \
    "add " a ", " a ", %[off]\n\t"                       \
    "asr " a ", " a ", #1\n\t"                           \
    "ssat " a ", #8, " a "\n\t"                          \
    "strb " a ", [" y "], #1\n\t"

/* the C twin of EF_DSP_MQ_ONE (same arithmetic), for the emulated builds */
static inline int8_t ef_dsp_mq(int32_t acc, int32_t m, int32_t shift, int32_t off)
{
    const int32_t v = (int32_t)(((int64_t)acc * m + ((int64_t)1 << 30)) >> 31);
    const int32_t t = v - (int32_t)((uint32_t)v >> 31);
    const int32_t rm1 = m ? -shift - 1 : 1;       /* mult 0: v == 0 whatever the shift */
    return (int8_t)ef_dsp_sat8(((t >> rm1) + 2 * off + 1) >> 1);
}

/**
 * The general output pass (any rounding, clamp, shift): y0[j] (and y1[j] if y1) from the
 * accumulators acc[j * stride] (and acc[j * stride + 2]), paired = blocks of two channels.
 * Cold and shared: the fixtures' layers take the asm passes.
 */
static __attribute__((noinline, cold, unused)) void
ef_dsp_out_slow(const ef_dsp_outq *s, int single, const int32_t *acc, int32_t n, int32_t c0,
                int paired, int8_t *y0, int8_t *y1)
{
    for (int32_t j = 0; j < n; ++j) {
        const int32_t *a = paired ? acc + 2 * (j & ~1) + (j & 1) : acc + j;
        y0[j] = ef_dsp_out(s, single, c0 + j, a[0]);
        if (y1) {
            y1[j] = ef_dsp_out(s, single, c0 + j, a[2]);
        }
    }
}

/** y[i] = output of channel c0 + i for accumulator acc[i], i < n. */
static inline void ef_dsp_out_row(const ef_dsp_outq *s, int single, const int32_t *acc,
                                  int32_t n, int32_t c0, int8_t *y)
{
    if (!single && s->rq && n > 0 && ef_dsp_full8(s)) {
        ef_dsp_out_row_rq(acc, s->rq + 3 * c0, n, s->out_offset, y);
    } else {
        ef_dsp_out_slow(s, single, acc, n, c0, 0, y, NULL);
    }
}

/**
 * The outputs of blocks of two channels x two pixels: for channel c0 + j, acc[2 * (j & ~1) +
 * (j & 1)] is pixel 0's accumulator and the entry two further pixel 1's; y1 may be NULL.
 */
static inline void ef_dsp_out_pairs(const ef_dsp_outq *s, int single, const int32_t *acc,
                                    int32_t n, int32_t c0, int8_t *y0, int8_t *y1)
{
    ef_dsp_out_slow(s, single, acc, n, c0, 1, y0, y1);
}

/** Unaligned 32-bit load/store (one LDR/STR on Cortex-M3/M4/M7). */
static inline uint32_t ef_dsp_ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void ef_dsp_st32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/** Both int16 lanes = off (the input offset, |off| <= 128). */
static inline uint32_t ef_dsp_dup16(int32_t off)
{
    return ((uint32_t)(uint16_t)off) | ((uint32_t)(uint16_t)off << 16);
}

/**
 * Two int8 weight rows against one int8 input row: *a0 += sum_i (x[i] + off) * w0[i] and
 * *a1 likewise with w1, i < n (off2 = ef_dsp_dup16(off)). Each input word feeds both rows:
 * SXTAB16 adds the offset, SMLAD does 2 MACs; products < 2^15, exact for n < 2^16.
 */
static inline void ef_dsp_dot2_s8(const int8_t *x, uint32_t off2, int32_t off, const int8_t *w0,
                                  const int8_t *w1, int32_t n, int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0, s1 = *a1, i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = ef_dsp_ld32(x + i);
        const uint32_t xe = ef_dsp_sxtab16(off2, xv);
        const uint32_t xo = ef_dsp_sxtab16_ror8(off2, xv);
        const uint32_t v0 = ef_dsp_ld32(w0 + i), v1 = ef_dsp_ld32(w1 + i);
        s0 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v0), s0);
        s0 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v0), s0);
        s1 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v1), s1);
        s1 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v1), s1);
    }
    for (; i < n; ++i) {
        const int32_t xv = (int32_t)x[i] + off;
        s0 += xv * (int32_t)w0[i];
        s1 += xv * (int32_t)w1[i];
    }
    *a0 = s0;
    *a1 = s1;
}

/**
 * dst[0..n) = src + off as int16, n a multiple of 4, in the reordered layout
 * (x0, x2, x1, x3) per group of four.
 */
static inline void ef_dsp_q7_to_q15_reordered(const int8_t *src, int16_t *dst, int32_t n,
                                              uint32_t off2)
{
    for (int32_t i = 0; i < n; i += 4) {
        const uint32_t v = ef_dsp_ld32(src + i);
        ef_dsp_st32(dst + i, ef_dsp_sxtab16(off2, v));
        ef_dsp_st32(dst + i + 2, ef_dsp_sxtab16_ror8(off2, v));
    }
}

/** Turn natural-order groups of four (x0 x1 x2 x3) into (x0 x2 x1 x3), in place. */
static inline void ef_dsp_reorder(int16_t *col, int32_t n4)
{
    for (int32_t i = 0; i < n4; i += 4) {
        const int16_t t = col[i + 1];
        col[i + 1] = col[i + 2];
        col[i + 2] = t;
    }
}

/**
 * Two weight rows against two reordered columns (CMSIS-NN's 2x2 kernel shape): each weight
 * word and each column word is loaded once for two MAC pairs. The second column sits
 * EF_DSP_COL_MAX elements after the first (one immediate offset, one register fewer).
 * a[2 * col + row].
 */
static inline void ef_dsp_dot_2x2(const int8_t *w0, const int8_t *w1, const int16_t *c0,
                                  int32_t k4, int32_t k, int32_t a[4])
{
    int32_t s00 = a[0], s01 = a[1], s10 = a[2], s11 = a[3];
    const int16_t *c = c0;
    for (int32_t n = k4 >> 2; n > 0; --n) {
        const uint32_t v0 = ef_dsp_ld32(w0), v1 = ef_dsp_ld32(w1);
        const uint32_t x0e = ef_dsp_ld32(c), x1e = ef_dsp_ld32(c + EF_DSP_COL_MAX);
        uint32_t we = ef_dsp_sxtb16(v0);
        s00 = ef_dsp_smlad(x0e, we, s00);
        s10 = ef_dsp_smlad(x1e, we, s10);
        we = ef_dsp_sxtb16(v1);
        s01 = ef_dsp_smlad(x0e, we, s01);
        s11 = ef_dsp_smlad(x1e, we, s11);
        const uint32_t x0o = ef_dsp_ld32(c + 2), x1o = ef_dsp_ld32(c + EF_DSP_COL_MAX + 2);
        uint32_t wo = ef_dsp_sxtb16_ror8(v0);
        s00 = ef_dsp_smlad(x0o, wo, s00);
        s10 = ef_dsp_smlad(x1o, wo, s10);
        wo = ef_dsp_sxtb16_ror8(v1);
        s01 = ef_dsp_smlad(x0o, wo, s01);
        s11 = ef_dsp_smlad(x1o, wo, s11);
        w0 += 4;
        w1 += 4;
        c += 4;
    }
    for (int32_t i = k4; i < k; ++i) {
        const int32_t x0 = c0[i], x1 = c0[EF_DSP_COL_MAX + i];
        s00 += x0 * (int32_t)w0[i - k4];
        s01 += x0 * (int32_t)w1[i - k4];
        s10 += x1 * (int32_t)w0[i - k4];
        s11 += x1 * (int32_t)w1[i - k4];
    }
    a[0] = s00;
    a[1] = s01;
    a[2] = s10;
    a[3] = s11;
}

/** One reordered column against one weight row: returns acc + col . w. */
static inline int32_t ef_dsp_dot_1col(const int8_t *w, const int16_t *c0, int32_t k4, int32_t k,
                                      int32_t acc)
{
    int32_t i = 0;
    for (; i < k4; i += 4) {
        const uint32_t wv = ef_dsp_ld32(w + i);
        acc = ef_dsp_smlad(ef_dsp_ld32(c0 + i), ef_dsp_sxtb16(wv), acc);
        acc = ef_dsp_smlad(ef_dsp_ld32(c0 + i + 2), ef_dsp_sxtb16_ror8(wv), acc);
    }
    for (; i < k; ++i) {
        acc += (int32_t)c0[i] * (int32_t)w[i];
    }
    return acc;
}

#endif /* EF_DSP_H */
