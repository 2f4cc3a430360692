/* AVERAGE_POOL_2D int8, Armv7E-M DSP version: same symbol and bytes as ref/avgpool2d_s8.c.
 * Four channels per step: SXTAB16 adds two sign-extended bytes into two int16 lanes, so a tap
 * of four channels costs one load and two instructions. Lanes hold |sum| <= taps * 128, exact
 * in int16 for at most 255 taps; bigger windows take the reference loop. Pixels go in raster
 * order and each writes only its own bytes after reading its window (in-place contract). */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/avgpool2d_s8.c"   /* no DSP extension: exactly the reference kernel */
#else

#define EF_DSP_POOL_TAPS_MAX 255

static int8_t pool_out(int32_t acc, int32_t count, const ef_pool_params *p)
{
    /* round half away from zero, C division truncating toward zero (as the reference) */
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return (int8_t)ef_nn_clamp(acc, p->act.min, p->act.max);
}

ef_status ef_avgpool2d_s8(const ef_pool_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || in->c != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, ch = in->c, oh = out->h, ow = out->w;
    for (int32_t pix = 0; pix < in->n * oh * ow; ++pix) {
        const int32_t b = pix / (oh * ow), oy = pix / ow % oh, ox = pix % ow;
        const int32_t iy0 = oy * p->stride.h - p->pad.h, ix0 = ox * p->stride.w - p->pad.w;
        const int32_t fy0 = iy0 < 0 ? -iy0 : 0, fx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t fy1 = p->kernel.h < ih - iy0 ? p->kernel.h : ih - iy0;
        const int32_t fx1 = p->kernel.w < iw - ix0 ? p->kernel.w : iw - ix0;
        if (fy1 <= fy0 || fx1 <= fx0) {
            return EF_ERR_ARG;
        }
        const int32_t count = (fy1 - fy0) * (fx1 - fx0);
        /* first tap of the window; the taps of one row are ch apart, rows iw * ch */
        const int8_t *xw = x + ((b * ih + iy0 + fy0) * iw + ix0 + fx0) * ch;
        int8_t *yp = y + pix * ch;
        const int32_t c4 = count <= EF_DSP_POOL_TAPS_MAX ? (ch & ~3) : 0;
        for (int32_t c = 0; c < ch; c += c < c4 ? 4 : 1) {
            uint32_t even = 0, odd = 0;     /* int16 lanes: channels c, c+2 / c+1, c+3 */
            int32_t acc = 0;                /* one channel, int32: exact below 2^24 taps */
            for (int32_t fy = fy0; fy < fy1; ++fy) {
                const int8_t *xp = xw + ((fy - fy0) * iw) * ch + c;
                for (int32_t fx = fx0; fx < fx1; ++fx, xp += ch) {
                    if (c < c4) {
                        const uint32_t v = ef_dsp_ld32(xp);
                        even = ef_dsp_sxtab16(even, v);
                        odd = ef_dsp_sxtab16_ror8(odd, v);
                    } else {
                        acc += *xp;
                    }
                }
            }
            if (c < c4) {
                yp[c] = pool_out((int16_t)(even & 0xFFFFu), count, p);
                yp[c + 1] = pool_out((int16_t)(odd & 0xFFFFu), count, p);
                yp[c + 2] = pool_out((int16_t)(even >> 16), count, p);
                yp[c + 3] = pool_out((int16_t)(odd >> 16), count, p);
            } else {
                yp[c] = pool_out(acc, count, p);
            }
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
