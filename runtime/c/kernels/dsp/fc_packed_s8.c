/* FULLY_CONNECTED int8 on compiler-packed weights, Armv7E-M DSP version: same symbol and
 * bytes as ref/fc_packed_s8.c. Four output rows per pass, two rows per int16 lane (layout:
 * edgeforge.codegen.c.pack_fc): per weight word one SXTB16 and two SMLADs do four MACs, one
 * LDM brings four words, and the four inputs are sign-extended once for all four rows.
 * No input offset: the compiler folded it into the bias. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/fc_packed_s8.c"   /* no DSP extension: exactly the reference kernel */
#else

/* the fused block pass's arguments, in the order its asm reads them */
typedef struct {
    const int8_t *x, *w;
    int32_t n4;
    const int32_t *bias, *rq;
    int8_t *y;
    int32_t off, amin, amax;
} fc_job;

#if EF_DSP_ASM
/* one word W (rows ra, rb) against inputs X: D += X . sxtb16(W) (row ra), T += X . W
 * (ra + 256 rb); lr is the temporary */
#define EF_FC4_WORD(X, W, D, T) \
    "sxtb16 lr, " W "\n\t" "smlad " D ", " X ", lr, " D "\n\t" "smlad " T ", " X ", " W ", " T "\n\t"
#define EF_FC4_GROUP \
    "ldr r3, [r0], #4\n\t" "ldmia r1!, {r8-r11}\n\t" \
    "sxtb16 r12, r3, ror #8\n\t" "sxtb16 r3, r3\n\t" \
    EF_FC4_WORD("r3", "r8", "r4", "r5") EF_FC4_WORD("r12", "r9", "r4", "r5") \
    EF_FC4_WORD("r3", "r10", "r6", "r7") EF_FC4_WORD("r12", "r11", "r6", "r7")

/* s = {D0, T01, D2, T23} over n4 >= 1 groups of four inputs (x) and 16 weight bytes (w).
 * Naked: the 14 usable registers are all taken; 16 instructions per 16 MACs, unrolled. */
static __attribute__((naked, noinline, used)) void
fc_block4(const int8_t *x, const int8_t *w, int32_t n4, uint32_t *s)
{
    (void)x; (void)w; (void)n4; (void)s;
    __asm__ volatile(
        "push {r3-r11, lr}\n\t"
        "movs r4, #0\n\t" "movs r5, #0\n\t" "movs r6, #0\n\t" "movs r7, #0\n\t"
        "lsrs r2, r2, #1\n\t"           /* pairs of groups; C = one group left over */
        "bcc 1f\n\t"
        EF_FC4_GROUP
        "1:\n\t"
        "cmp r2, #0\n\t"
        "beq 3f\n\t"
        "2:\n\t"
        EF_FC4_GROUP
        EF_FC4_GROUP
        "subs r2, r2, #1\n\t"
        "bne 2b\n\t"
        "3:\n\t"
        "ldr r3, [sp]\n\t"
        "stm r3, {r4-r7}\n\t"
        "pop {r3-r11, pc}\n\t");
}
/* rows' accumulator A through the output stage: rq triple (r8, r9, r10), out offset r2,
 * clamp [lr, r3], store at r1 */
#define EF_FC4_OUT(A) \
    "ldmia r0!, {r8-r10}\n\t" "lsl r11, " A ", #1\n\t" "smmulr r11, r11, r8\n\t" \
    "add " A ", r11, r10\n\t" "sub " A ", " A ", r11, lsr #31\n\t" "asr " A ", " A ", r9\n\t" \
    "add " A ", " A ", r2\n\t" "cmp " A ", lr\n\t" "it lt\n\t" "movlt " A ", lr\n\t" \
    "cmp " A ", r3\n\t" "it gt\n\t" "movgt " A ", r3\n\t" "strb " A ", [r1], #1\n\t"

/* One block of four rows, start to finish (the fast case: no C_IN tail, an rq table):
 * sums, bias, requantization, clamp, four stores; advances j->w, bias, rq, y. */
static __attribute__((naked, noinline, used)) void fc_block4_out(fc_job *j)
{
    (void)j;
    __asm__ volatile(
        "push {r0, r4-r11, lr}\n\t"
        "ldm r0, {r0-r2}\n\t"
        "movs r4, #0\n\t" "movs r5, #0\n\t" "movs r6, #0\n\t" "movs r7, #0\n\t"
        "lsrs r2, r2, #1\n\t"
        "bcc 1f\n\t"
        EF_FC4_GROUP
        "1:\n\t"
        "cmp r2, #0\n\t"
        "beq 3f\n\t"
        "2:\n\t"
        EF_FC4_GROUP
        EF_FC4_GROUP
        "subs r2, r2, #1\n\t"
        "bne 2b\n\t"
        "3:\n\t"
        "ldr r3, [sp]\n\t"
        "str r1, [r3, #4]\n\t"              /* j->w */
        "sub r5, r5, r4\n\t" "asr r5, r5, #8\n\t"
        "sub r7, r7, r6\n\t" "asr r7, r7, #8\n\t"
        "ldr r8, [r3, #12]\n\t"             /* j->bias */
        "ldmia r8!, {r9-r12}\n\t"
        "str r8, [r3, #12]\n\t"
        "add r4, r4, r9\n\t" "add r5, r5, r10\n\t" "add r6, r6, r11\n\t" "add r7, r7, r12\n\t"
        "ldrd r0, r1, [r3, #16]\n\t"        /* j->rq, j->y */
        "ldr r2, [r3, #24]\n\t"             /* j->off */
        "ldr lr, [r3, #28]\n\t"             /* j->amin */
        "ldr r3, [r3, #32]\n\t"             /* j->amax */
        EF_FC4_OUT("r4") EF_FC4_OUT("r5") EF_FC4_OUT("r6") EF_FC4_OUT("r7")
        "ldr r12, [sp]\n\t"
        "strd r0, r1, [r12, #16]\n\t"
        "pop {r0, r4-r11, pc}\n\t");
}
#else
/* SMLAD as the M4 does it: modulo 2^32 (T may wrap; (T - D) / 256 is still exact) */
static inline uint32_t fc_smlad(uint32_t a, uint32_t b, uint32_t acc)
{
#if defined(__ARM_FEATURE_DSP) && !defined(EF_DSP_EMULATE)
    return (uint32_t)ef_dsp_smlad(a, b, (int32_t)acc);
#else
    return acc + (uint32_t)(ef_dsp_lo(a) * ef_dsp_lo(b)) + (uint32_t)(ef_dsp_hi(a) * ef_dsp_hi(b));
#endif
}

static void fc_block4(const int8_t *x, const int8_t *w, int32_t n4, uint32_t *s)
{
    uint32_t d0 = 0, t01 = 0, d2 = 0, t23 = 0;
    for (; n4 > 0; --n4, x += 4, w += 16) {
        const uint32_t xv = ef_dsp_ld32(x);
        const uint32_t xe = ef_dsp_sxtb16(xv), xo = ef_dsp_sxtb16_ror8(xv);
        const uint32_t v0 = ef_dsp_ld32(w), v1 = ef_dsp_ld32(w + 4);
        const uint32_t v2 = ef_dsp_ld32(w + 8), v3 = ef_dsp_ld32(w + 12);
        d0 = fc_smlad(xo, ef_dsp_sxtb16(v1), fc_smlad(xe, ef_dsp_sxtb16(v0), d0));
        t01 = fc_smlad(xo, v1, fc_smlad(xe, v0, t01));
        d2 = fc_smlad(xo, ef_dsp_sxtb16(v3), fc_smlad(xe, ef_dsp_sxtb16(v2), d2));
        t23 = fc_smlad(xo, v3, fc_smlad(xe, v2, t23));
    }
    s[0] = d0;
    s[1] = t01;
    s[2] = d2;
    s[3] = t23;
}

static void fc_block4_out(fc_job *j)
{
    uint32_t t[4];
    fc_block4(j->x, j->w, j->n4, t);
    j->w += 16 * j->n4;
    const int32_t a[4] = {(int32_t)t[0] + j->bias[0],
                          ((int32_t)(t[1] - t[0]) >> 8) + j->bias[1],
                          (int32_t)t[2] + j->bias[2],
                          ((int32_t)(t[3] - t[2]) >> 8) + j->bias[3]};
    for (int32_t k = 0; k < 4; ++k, j->rq += 3) {
        const int32_t v = ef_dsp_rq(a[k], j->rq[0], j->rq[1], j->rq[2]) + j->off;
        *j->y++ = (int8_t)ef_nn_clamp(v, j->amin, j->amax);
    }
    j->bias += 4;
}
#endif

typedef struct {
    const int32_t *mult, *shift;
    int32_t off, amin, amax, small;
} fc_outq;

/* y[j] for the n accumulators of channels c0.. (own function: the block loop keeps its
 * registers, and this one hoists the output stage into its own) */
static __attribute__((noinline)) void fc_out(const fc_outq *s, const int32_t *acc, int32_t n,
                                            int32_t c0, int8_t *y)
{
    const int32_t *mult = s->mult + c0, *shift = s->shift + c0;
    const int32_t off = s->off, amin = s->amin, amax = s->amax;
    if (s->small) {
        for (int32_t j = 0; j < n; ++j) {
            const int32_t v = ef_dsp_requantize_small(EF_FC_SINGLE_ROUNDING, acc[j], mult[j],
                                                      shift[j]);
            y[j] = (int8_t)ef_nn_clamp(v + off, amin, amax);
        }
    } else {
        for (int32_t j = 0; j < n; ++j) {
            const int32_t v = ef_dsp_requantize(EF_FC_SINGLE_ROUNDING, acc[j], mult[j],
                                                shift[j]);
            y[j] = (int8_t)ef_nn_clamp(v + off, amin, amax);
        }
    }
}

ef_status ef_fc_packed_s8(const ef_fc_packed_params *p, const ef_quant *q,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *wd, const int8_t *w, const int32_t *bias,
                          const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !bias || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n, rows = ef_nn_fc_rows(in, wd, out);
    if (rows < 0) {
        return EF_ERR_ARG;
    }
    const int32_t d4 = depth & ~3, tail = depth - d4, oc4 = oc & ~3;
    const fc_outq s = {q->mult, q->shift, p->out_offset, p->act.min, p->act.max, p->acc_small};
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + r * depth, *wp = w;
        int8_t *yp = y + r * oc;
        int32_t o = 0;
        if (p->rq && !tail && d4) {                 /* the fused pass */
            fc_job j = {xp, wp, d4 >> 2, bias, p->rq, yp, s.off, s.amin, s.amax};
            for (; o < oc4; o += 4) {
                fc_block4_out(&j);
            }
            wp = j.w;
        }
        for (; o < oc4; o += 4) {                   /* blocks of four rows */
            int32_t a[4] = {bias[o], bias[o + 1], bias[o + 2], bias[o + 3]};
            if (d4) {
                uint32_t t[4];
                fc_block4(xp, wp, d4 >> 2, t);
                wp += 4 * d4;
                a[0] += (int32_t)t[0];
                a[1] += (int32_t)(t[1] - t[0]) >> 8;
                a[2] += (int32_t)t[2];
                a[3] += (int32_t)(t[3] - t[2]) >> 8;
            }
            for (int32_t j = 0; tail && j < 4; ++j, wp += tail) {
                for (int32_t i = 0; i < tail; ++i) {
                    a[j] += (int32_t)xp[d4 + i] * wp[i];
                }
            }
            fc_out(&s, a, 4, o, yp + o);
        }
        for (int32_t o = oc4; o < oc; ++o, wp += depth) {   /* rows left over, row order */
            int32_t acc = bias[o], i = 0;
            for (; i < d4; i += 4) {
                const uint32_t xv = ef_dsp_ld32(xp + i), v = ef_dsp_ld32(wp + i);
                acc = ef_dsp_smlad(ef_dsp_sxtb16(xv), ef_dsp_sxtb16(v), acc);
                acc = ef_dsp_smlad(ef_dsp_sxtb16_ror8(xv), ef_dsp_sxtb16_ror8(v), acc);
            }
            for (; i < depth; ++i) {
                acc += (int32_t)xp[i] * wp[i];
            }
            fc_out(&s, &acc, 1, o, yp + o);
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
