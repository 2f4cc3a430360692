/* CONV2D int8 per-channel (TFLite reference ConvPerChannel semantics). */
#include "ef_nn_support.h"

ef_status ef_conv2d_s8(const ef_conv_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *wd, const int8_t *w, const int32_t *bias,
                       const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const int32_t sh = p->stride.h, sw = p->stride.w;
    const int32_t ph = p->pad.h, pw = p->pad.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w;
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t batches = in->n, ih = in->h, iw = in->w, ic = in->c;
    const int32_t kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, oc = out->c;
    const int32_t *mult = q->mult, *shift = q->shift;

    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                for (int32_t o = 0; o < oc; ++o) {
                    const int8_t *wo = w + o * kh * kw * ic;
                    /* |x + in_off| <= 255, |w| <= 128: each product < 2^15, so the int32
                     * accumulator is exact for KH*KW*C_IN < 2^16 taps (TFLite's bound). */
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + dh * ky;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ix0 + dw * kx;
                            if (ix < 0 || ix >= iw) {
                                continue;
                            }
                            const int8_t *xp = x + ((b * ih + iy) * iw + ix) * ic;
                            const int8_t *wp = wo + (ky * kw + kx) * ic;
                            for (int32_t i = 0; i < ic; ++i) {
                                acc += ((int32_t)xp[i] + in_off) * (int32_t)wp[i];
                            }
                        }
                    }
                    if (bias) {
                        acc += bias[o];
                    }
                    acc = EF_REQUANTIZE_AS(EF_CONV2D_SINGLE_ROUNDING, acc, mult[o], shift[o]) + out_off;
                    yp[o] = (int8_t)ef_nn_clamp(acc, amin, amax);
                }
            }
        }
    }
    return EF_OK;
}
