/* AVERAGE_POOL_2D int8, Armv7E-M DSP version: same symbol and bytes as ref/avgpool2d_s8.c.
 * Four channels per step: SXTAB16 adds two sign-extended bytes into two int16 lanes, so a tap
 * of four channels costs one load and two instructions. Lanes hold |sum| <= taps * 128, exact
 * in int16 for at most 255 taps; bigger windows take the reference loop. Pixels go in raster
 * order and each writes only its own bytes after reading its window (in-place contract). */
#include "ef_dsp.h"

#define EF_DSP_POOL_TAPS_MAX 255

static inline int8_t pool_out(int32_t acc, int32_t count, int32_t amin, int32_t amax)
{
    /* round half away from zero, C division truncating toward zero (as the reference) */
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return (int8_t)ef_nn_clamp(acc, amin, amax);
}

ef_status ef_avgpool2d_s8(const ef_pool_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || in->c != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->pad.h, pw = p->pad.w;
    const int32_t fh = p->kernel.h, fw = p->kernel.w;
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t ih = in->h, iw = in->w, ch = in->c, oh = out->h, ow = out->w;
    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = fh < ih - iy0 ? fh : ih - iy0;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = fw < iw - ix0 ? fw : iw - ix0;
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return EF_ERR_ARG;
                }
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                const int8_t *xw = x + ((b * ih + iy0) * iw + ix0) * ch;   /* window origin */
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                int32_t c = 0;
                if (count <= EF_DSP_POOL_TAPS_MAX) {
                    for (; c + 4 <= ch; c += 4) {
                        uint32_t even = 0, odd = 0;          /* lanes: channels c, c+2 / c+1, c+3 */
                        for (int32_t fy = fy0; fy < fy1; ++fy) {
                            const int8_t *xp = xw + (fy * iw + fx0) * ch + c;
                            for (int32_t fx = fx0; fx < fx1; ++fx, xp += ch) {
                                const uint32_t v = ef_dsp_ld32(xp);
                                even = ef_dsp_sxtab16(even, v);
                                odd = ef_dsp_sxtab16_ror8(odd, v);
                            }
                        }
                        yp[c] = pool_out((int16_t)(even & 0xFFFFu), count, amin, amax);
                        yp[c + 1] = pool_out((int16_t)(odd & 0xFFFFu), count, amin, amax);
                        yp[c + 2] = pool_out((int16_t)(even >> 16), count, amin, amax);
                        yp[c + 3] = pool_out((int16_t)(odd >> 16), count, amin, amax);
                    }
                }
                for (; c < ch; ++c) {
                    /* |x| <= 128 per tap: exact for fewer than 2^24 taps */
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *xp = xw + (fy * iw + fx0) * ch + c;
                        for (int32_t fx = fx0; fx < fx1; ++fx, xp += ch) {
                            acc += *xp;
                        }
                    }
                    yp[c] = pool_out(acc, count, amin, amax);
                }
            }
        }
    }
    return EF_OK;
}
