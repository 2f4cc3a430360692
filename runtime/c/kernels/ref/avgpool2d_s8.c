/* AVERAGE_POOL_2D int8 (TFLite reference_integer_ops::AveragePool semantics). */
#include "ef_nn_support.h"

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
    const int32_t batches = in->n, ih = in->h, iw = in->w, ch = in->c;
    const int32_t oh = out->h, ow = out->w;
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            const int32_t fy0 = ef_nn_tap_lo(iy0), fy1 = ef_nn_tap_hi(iy0, fh, ih);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                const int32_t fx0 = ef_nn_tap_lo(ix0), fx1 = ef_nn_tap_hi(ix0, fw, iw);
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return EF_ERR_ARG;
                }
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                for (int32_t c = 0; c < ch; ++c) {
                    /* |x| <= 128 per tap: exact for fewer than 2^24 taps */
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *xp = x + ((b * ih + iy0 + fy) * iw + ix0) * ch + c;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            acc += xp[fx * ch];
                        }
                    }
                    /* round half away from zero, C division truncating toward zero */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    yp[c] = (int8_t)ef_nn_clamp(acc, amin, amax);
                }
            }
        }
    }
    return EF_OK;
}
