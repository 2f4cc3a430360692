/* 16x8 kernels, Armv7E-M DSP version: same symbols and bytes as ref/nn_s16.c.
 * CONV_2D and FULLY_CONNECTED (the 16x8 layers that carry the MACs) run two output
 * channels per pass: SXTB16 widens four int8 weights into two int16 pairs, the int16
 * activations are regrouped (even, odd) to match, and SMLALD adds two products into an
 * int64 accumulator, exactly the reference's int64 sum (acc32 layers truncate it the same
 * way). Every other 16x8 kernel is the reference, compiled from ref/nn_s16.c. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/nn_s16.c"   /* no DSP extension: exactly the reference kernels */
#else
#include "ef_kernels_s16.h"

/* the reference's conv/FC stay as fallbacks under their own (internal) names */
#define ef_conv2d_s16 ef_ref_conv2d_s16
#define ef_fc_s16 ef_ref_fc_s16
ef_status ef_ref_conv2d_s16(const ef_conv_s16_params *p, const ef_quant *q,
                            const ef_dims *in, const int16_t *x,
                            const ef_dims *wd, const int8_t *w, const int64_t *bias,
                            const ef_dims *out, int16_t *y);
ef_status ef_ref_fc_s16(const ef_fc_s16_params *p, const ef_quant *q,
                        const ef_dims *in, const int16_t *x,
                        const ef_dims *wd, const int8_t *w, const int64_t *bias,
                        const ef_dims *out, int16_t *y);
#include "../ref/nn_s16.c"
#undef ef_conv2d_s16
#undef ef_fc_s16

#if defined(__ARM_FEATURE_DSP) && !defined(EF_DSP_EMULATE)
static inline int64_t s16_smlald(uint32_t a, uint32_t b, int64_t acc)
{
    return __smlald((int16x2_t)a, (int16x2_t)b, acc);
}
/* (lo(a), lo(b)) and (hi(a), hi(b)): one PKHBT / PKHTB each (plain C takes two ops) */
static inline uint32_t s16_lo2(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t s16_hi2(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
static inline uint32_t s16_lo2(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
static inline uint32_t s16_hi2(uint32_t a, uint32_t b) { return (a >> 16) | (b & 0xFFFF0000u); }
static inline int64_t s16_smlald(uint32_t a, uint32_t b, int64_t acc)
{
    return acc + (int32_t)(int16_t)(uint16_t)(a & 0xFFFFu) * (int16_t)(uint16_t)(b & 0xFFFFu)
           + (int32_t)(int16_t)(uint16_t)(a >> 16) * (int16_t)(uint16_t)(b >> 16);
}
#endif

/* s0 += x . w0, s1 += x . w1 over n int16 x int8 terms (w1 may equal w0) */
static inline void s16_dot2(const int16_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                            int64_t *a0, int64_t *a1)
{
    int64_t s0 = *a0, s1 = *a1;
    const int32_t n4 = n & ~3;
    int32_t i = 0;
    for (; i < n4; i += 4) {
        const uint32_t x01 = ef_dsp_ld32(x + i), x23 = ef_dsp_ld32(x + i + 2);
        /* (x0, x2) and (x1, x3): the lanes SXTB16 / SXTB16 ROR 8 give the weights */
        const uint32_t xe = s16_lo2(x01, x23), xo = s16_hi2(x01, x23);
        const uint32_t v0 = ef_dsp_ld32(w0 + i), v1 = ef_dsp_ld32(w1 + i);
        s0 = s16_smlald(xe, ef_dsp_sxtb16(v0), s0);
        s0 = s16_smlald(xo, ef_dsp_sxtb16_ror8(v0), s0);
        s1 = s16_smlald(xe, ef_dsp_sxtb16(v1), s1);
        s1 = s16_smlald(xo, ef_dsp_sxtb16_ror8(v1), s1);
    }
    for (; i < n; ++i) {
        s0 += (int32_t)x[i] * w0[i];
        s1 += (int32_t)x[i] * w1[i];
    }
    *a0 = s0;
    *a1 = s1;
}

static inline int16_t s16_out(int64_t acc, int32_t acc32, int32_t single, const ef_quant *q,
                              int32_t o, const ef_act *act)
{
    const int32_t v = rq_acc(acc, acc32, single, q->mult[o], q->shift[o]);
    return (int16_t)ef_nn_clamp(v, act->min, act->max);
}

/* y[r][o] = requant(bias[o] + x[r] . w[o]): FC, and 1x1 stride-1 unpadded conv by pixel */
static void s16_gemm(const int16_t *x, const int8_t *w, const int64_t *bias, int32_t rows,
                     int32_t cin, int32_t cout, int32_t acc32, int32_t single,
                     const ef_quant *q, const ef_act *act, int16_t *y)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int16_t *xr = x + r * cin;
        int16_t *yr = y + r * cout;
        for (int32_t o = 0; o < cout; o += 2) {
            const int pair = o + 1 < cout;
            const int8_t *w0 = w + o * cin;
            int64_t s0 = bias ? bias[o] : 0;
            int64_t s1 = bias && pair ? bias[o + 1] : 0;
            s16_dot2(xr, w0, pair ? w0 + cin : w0, cin, &s0, &s1);
            yr[o] = s16_out(s0, acc32, single, q, o, act);
            if (pair) {
                yr[o + 1] = s16_out(s1, acc32, single, q, o + 1, act);
            }
        }
    }
}

ef_status ef_conv2d_s16(const ef_conv_s16_params *p, const ef_quant *q,
                        const ef_dims *in, const int16_t *x,
                        const ef_dims *wd, const int8_t *w, const int64_t *bias,
                        const ef_dims *out, int16_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, ic = in->c, kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, oc = out->c;
    const int32_t single = EF_CONV2D_SINGLE_ROUNDING;
    if (kh == 1 && kw == 1 && p->stride.h == 1 && p->stride.w == 1 && p->pad.h == 0
        && p->pad.w == 0 && oh == ih && ow == iw) {
        s16_gemm(x, w, bias, in->n * ih * iw, ic, oc, p->acc32, single, q, &p->act, y);
        return EF_OK;
    }
    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t iy0 = oy * p->stride.h - p->pad.h;
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                int16_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                for (int32_t o = 0; o < oc; o += 2) {
                    const int pair = o + 1 < oc;
                    int64_t s0 = bias ? bias[o] : 0;
                    int64_t s1 = bias && pair ? bias[o + 1] : 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + p->dilation.h * ky;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ix0 + p->dilation.w * kx;
                            if (ix < 0 || ix >= iw) {
                                continue;
                            }
                            const int8_t *w0 = w + ((o * kh + ky) * kw + kx) * ic;
                            s16_dot2(x + ((b * ih + iy) * iw + ix) * ic, w0,
                                     pair ? w0 + kh * kw * ic : w0, ic, &s0, &s1);
                        }
                    }
                    yp[o] = s16_out(s0, p->acc32, single, q, o, &p->act);
                    if (pair) {
                        yp[o + 1] = s16_out(s1, p->acc32, single, q, o + 1, &p->act);
                    }
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_fc_s16(const ef_fc_s16_params *p, const ef_quant *q,
                    const ef_dims *in, const int16_t *x,
                    const ef_dims *wd, const int8_t *w, const int64_t *bias,
                    const ef_dims *out, int16_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t cin = wd->c, cout = wd->n;
    if (cin <= 0 || out->c != cout || ef_nn_numel(in) % cin != 0
        || ef_nn_numel(in) / cin * cout != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    s16_gemm(x, w, bias, ef_nn_numel(in) / cin, cin, cout, p->acc32, EF_FC_SINGLE_ROUNDING,
             q, &p->act, y);
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
