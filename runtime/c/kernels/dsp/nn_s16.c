/* 16x8 kernels, Armv7E-M DSP version: same symbols and bytes as ref/nn_s16.c.
 * CONV_2D and FULLY_CONNECTED (the 16x8 layers that carry the MACs) run two output
 * channels per pass: SXTB16 widens four int8 weights into two int16 pairs, the int16
 * activations are regrouped (even, odd) to match, and SMLALD adds two products into an
 * int64 accumulator, exactly the reference's int64 sum (acc32 layers truncate it the same
 * way). DEPTHWISE_CONV_2D (multiplier 1) runs four channels per pass with SMLAxy into int32
 * sums, exact below 512 taps, then adds the int64 bias. Every other 16x8 kernel is the
 * reference, compiled from ref/nn_s16.c. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/nn_s16.c"   /* no DSP extension: exactly the reference kernels */
#else
#include "ef_kernels_s16.h"

/* ref/nn_s16.c's conv, depthwise and FC compile here under file-local names (the depthwise
 * one is the fallback for shapes the DSP loop does not take); the public names, which
 * EF_NAMESPACE_KERNELS maps to ef_<profile>_*, come back for the DSP versions below */
#pragma push_macro("ef_conv2d_s16")
#pragma push_macro("ef_dwconv2d_s16")
#pragma push_macro("ef_fc_s16")
#undef ef_conv2d_s16
#undef ef_dwconv2d_s16
#undef ef_fc_s16
#define ef_conv2d_s16 ef_ref_conv2d_s16
#define ef_dwconv2d_s16 ef_ref_dwconv2d_s16
#define ef_fc_s16 ef_ref_fc_s16
static ef_status ef_ref_conv2d_s16(const ef_conv_s16_params *p, const ef_quant *q,
                                   const ef_dims *in, const int16_t *x,
                                   const ef_dims *wd, const int8_t *w, const int64_t *bias,
                                   const ef_dims *out, int16_t *y) __attribute__((unused));
static ef_status ef_ref_dwconv2d_s16(const ef_dw_s16_params *p, const ef_quant *q,
                                     const ef_dims *in, const int16_t *x,
                                     const ef_dims *wd, const int8_t *w, const int64_t *bias,
                                     const ef_dims *out, int16_t *y);
static ef_status ef_ref_fc_s16(const ef_fc_s16_params *p, const ef_quant *q,
                               const ef_dims *in, const int16_t *x,
                               const ef_dims *wd, const int8_t *w, const int64_t *bias,
                               const ef_dims *out, int16_t *y) __attribute__((unused));
#include "../ref/nn_s16.c"
#undef ef_conv2d_s16
#undef ef_dwconv2d_s16
#undef ef_fc_s16
#pragma pop_macro("ef_conv2d_s16")
#pragma pop_macro("ef_dwconv2d_s16")
#pragma pop_macro("ef_fc_s16")

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
/* bottom(a) * top(b) and top(a) * bottom(b) */
static inline int32_t s16_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabt((int32_t)a, (int32_t)b, acc);
}
static inline int32_t s16_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatb((int32_t)a, (int32_t)b, acc);
}
#else
static inline int32_t s16_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + (int16_t)(uint16_t)(a & 0xFFFFu) * (int16_t)(uint16_t)(b >> 16);
}
static inline int32_t s16_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + (int16_t)(uint16_t)(a >> 16) * (int16_t)(uint16_t)(b & 0xFFFFu);
}
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

/* taps [*lo, *hi) of k whose input index i0 + d * tap lies in [0, n) */
static inline void s16_taps(int32_t i0, int32_t d, int32_t k, int32_t n, int32_t *lo,
                            int32_t *hi)
{
    int32_t a = 0, b = k;
    while (a < b && i0 + d * a < 0) {
        ++a;
    }
    while (b > a && i0 + d * (b - 1) >= n) {
        --b;
    }
    *lo = a;
    *hi = b;
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
            yr[o] = ef_nn_s16_store(s0, o, acc32, single, q, act);
            if (pair) {
                yr[o + 1] = ef_nn_s16_store(s1, o + 1, acc32, single, q, act);
            }
        }
    }
}

ef_status ef_conv2d_s16(const ef_conv_s16_params *p, const ef_quant *q,
                        const ef_dims *in, const int16_t *x,
                        const ef_dims *wd, const int8_t *w, const int64_t *bias,
                        const ef_dims *out, int16_t *y)
{
    if (!ef_nn_s16_conv_ok(p, q, in, x, wd, w, out, y)) {
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
                int32_t kx0, kx1;
                s16_taps(ix0, p->dilation.w, kw, iw, &kx0, &kx1);
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
                        /* undilated: the row's taps inside the input are one run of
                         * (kx1 - kx0) * ic values in x and in w (one dot, SMLALD quads
                         * even for 3-channel first layers) */
                        const int32_t run = p->dilation.w == 1 ? kx1 - kx0 : 1;
                        for (int32_t kx = kx0; kx < kx1; kx += run) {
                            const int32_t ix = ix0 + p->dilation.w * kx;
                            const int8_t *w0 = w + ((o * kh + ky) * kw + kx) * ic;
                            s16_dot2(x + ((b * ih + iy) * iw + ix) * ic, w0,
                                     pair ? w0 + kh * kw * ic : w0, run * ic, &s0, &s1);
                        }
                    }
                    yp[o] = ef_nn_s16_store(s0, o, p->acc32, single, q, &p->act);
                    if (pair) {
                        yp[o + 1] = ef_nn_s16_store(s1, o + 1, p->acc32, single, q, &p->act);
                    }
                }
            }
        }
    }
    return EF_OK;
}

/* |x * w| <= 2^22: the int32 sum of one channel's taps is exact below 2^9 taps */
#define S16_DW_MAX_TAPS 511

/* ef_requantize64 of an int32 acc with 1 <= 15 - shift <= 31: one SMULL and a 32-bit
 * shift pair give the same low 32 bits as the int64 multiply and variable shift */
static inline int16_t s16_out32(int32_t acc, int32_t mult, int32_t shift, const ef_act *act)
{
    const int32_t reduced = mult < 0x7FFF0000 ? (mult + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total = 15 - shift;
    const uint64_t prod = (uint64_t)((int64_t)acc * reduced) + (1u << (total - 1));
    const int32_t v = (int32_t)(((uint32_t)prod >> total)
                                | ((uint32_t)(prod >> 32) << (32 - total)));
    return (int16_t)ef_nn_clamp(v, act->min, act->max);
}

/* 1 when every output of the layer can take s16_out32: int64 semantics, shifts in range,
 * and |bias| small enough that bias + (taps sum, |.| < taps * 2^22) stays in int32 */
static int s16_dw_out32_ok(const ef_dw_s16_params *p, const ef_quant *q, const int64_t *bias,
                           int32_t ch, int32_t taps)
{
    const int64_t room = INT32_MAX - ((int64_t)taps << 22);
    for (int32_t o = 0; o < ch && !p->acc32; ++o) {
        const int64_t b = bias ? bias[o] : 0;
        if (q->shift[o] < -16 || q->shift[o] > 14 || b > room || b < -room) {
            return 0;
        }
    }
    return !p->acc32;
}

/* one output pixel's taps inside the input, [ky0, ky1) x [kx0, kx1), and the steps
 * between taps: a filter row in x (ystep) and w (wstep), a tap in x (xstep) and w (ch) */
typedef struct {
    int32_t ky0, ky1, kx0, kx1, ystep, wstep, xstep, ch;
} s16_window;

/* the sums of channels c..c+n-1 (n <= 4; 4 takes the SMLAxy path) over the window */
static inline void s16_dw_sums(const s16_window *s, const int16_t *x, const int8_t *w,
                               int32_t n, int32_t a[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int32_t nx = s->kx1 - s->kx0;
    for (int32_t ky = s->ky0; ky < s->ky1; ++ky, x += s->ystep, w += s->wstep) {
        const int16_t *xp = x;
        const int8_t *wp = w;
        if (n == 4) {
            for (int32_t k = 0; k < nx; ++k, xp += s->xstep, wp += s->ch) {
                /* (w0, w2) and (w1, w3) against (x0, x1) and (x2, x3) */
                const uint32_t x01 = ef_dsp_ld32(xp), x23 = ef_dsp_ld32(xp + 2);
                const uint32_t v = ef_dsp_ld32(wp);
                const uint32_t we = ef_dsp_sxtb16(v), wo = ef_dsp_sxtb16_ror8(v);
                a0 = ef_dsp_smlabb(x01, we, a0);
                a1 = s16_smlatb(x01, wo, a1);
                a2 = s16_smlabt(x23, we, a2);
                a3 = ef_dsp_smlatt(x23, wo, a3);
            }
        } else {
            for (int32_t k = 0; k < nx; ++k, xp += s->xstep, wp += s->ch) {
                a0 += (int32_t)xp[0] * wp[0];
                a1 += n > 1 ? (int32_t)xp[1] * wp[1] : 0;
                a2 += n > 2 ? (int32_t)xp[2] * wp[2] : 0;
            }
        }
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

ef_status ef_dwconv2d_s16(const ef_dw_s16_params *p, const ef_quant *q,
                          const ef_dims *in, const int16_t *x,
                          const ef_dims *wd, const int8_t *w, const int64_t *bias,
                          const ef_dims *out, int16_t *y)
{
    if (!ef_nn_s16_dw_ok(p, q, in, x, wd, w, out, y)) {
        return EF_ERR_ARG;
    }
    if (p->depth_multiplier != 1 || wd->h * wd->w > S16_DW_MAX_TAPS) {
        return ef_ref_dwconv2d_s16(p, q, in, x, wd, w, bias, out, y);
    }
    const int32_t ih = in->h, iw = in->w, ch = in->c, kw = wd->w, oh = out->h, ow = out->w;
    const int32_t single = EF_DWCONV2D_SINGLE_ROUNDING;
    const int out32 = s16_dw_out32_ok(p, q, bias, ch, wd->h * kw);
    s16_window s = {0, 0, 0, 0, p->dilation.h * iw * ch, kw * ch, p->dilation.w * ch, ch};
    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * p->stride.h - p->pad.h;
            s16_taps(iy0, p->dilation.h, wd->h, ih, &s.ky0, &s.ky1);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                s16_taps(ix0, p->dilation.w, kw, iw, &s.kx0, &s.kx1);
                const int32_t xoff = ((b * ih + iy0 + p->dilation.h * s.ky0) * iw + ix0
                                      + p->dilation.w * s.kx0) * ch;
                const int32_t woff = (s.ky0 * kw + s.kx0) * ch;
                int16_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                for (int32_t c = 0; c < ch; c += 4) {
                    const int32_t n = ch - c < 4 ? ch - c : 4;
                    int32_t a[4];
                    s16_dw_sums(&s, x + xoff + c, w + woff + c, n, a);
                    for (int32_t k = 0; k < n && out32; ++k) {
                        const int32_t acc = (bias ? (int32_t)bias[c + k] : 0) + a[k];
                        yp[c + k] = s16_out32(acc, q->mult[c + k], q->shift[c + k], &p->act);
                    }
                    for (int32_t k = 0; k < n && !out32; ++k) {
                        yp[c + k] = ef_nn_s16_out(a[k], bias, c + k, p->acc32, single, q,
                                                  &p->act);
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
    const int32_t rows = ef_nn_s16_fc_rows(p, q, in, x, wd, w, out, y);
    if (rows < 0) {
        return EF_ERR_ARG;
    }
    s16_gemm(x, w, bias, rows, wd->c, wd->n, p->acc32, EF_FC_SINGLE_ROUNDING,
             q, &p->act, y);
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
