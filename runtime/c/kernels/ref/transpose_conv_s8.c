/* TRANSPOSE_CONV int8 per-channel, in gather form: output pixel (oy, ox) reads the input
 * pixels iy = (oy + pad_top - ky) / stride_h (when divisible and in range); the sum is the
 * same integer TFLite's scatter into an int32 buffer computes. */
#include "ef_nn_support.h"

ef_status ef_transpose_conv_s8(const ef_conv_params *p, const ef_quant *q,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *wd, const int8_t *w, const int32_t *bias,
                               const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y || wd->c != in->c ||
        wd->n != out->c || in->n != out->n || p->stride.h < 1 || p->stride.w < 1) {
        return EF_ERR_ARG;
    }
    const int32_t cin = in->c, kh = wd->h, kw = wd->w;
    for (int32_t b = 0; b < out->n; ++b) {
        for (int32_t oy = 0; oy < out->h; ++oy) {
            for (int32_t ox = 0; ox < out->w; ++ox) {
                for (int32_t co = 0; co < out->c; ++co) {
                    int32_t acc = bias ? bias[co] : 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t ty = oy + p->pad.h - ky;
                        if (ty < 0 || ty % p->stride.h) {
                            continue;
                        }
                        const int32_t iy = ty / p->stride.h;
                        if (iy >= in->h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t tx = ox + p->pad.w - kx;
                            if (tx < 0 || tx % p->stride.w) {
                                continue;
                            }
                            const int32_t ix = tx / p->stride.w;
                            if (ix >= in->w) {
                                continue;
                            }
                            const int8_t *xp = x + ((b * in->h + iy) * in->w + ix) * cin;
                            const int8_t *wp = w + ((co * kh + ky) * kw + kx) * cin;
                            for (int32_t c = 0; c < cin; ++c) {
                                acc += ((int32_t)xp[c] + p->in_offset) * (int32_t)wp[c];
                            }
                        }
                    }
                    const int32_t v = EF_REQUANTIZE_AS(EF_TRANSPOSE_CONV_SINGLE_ROUNDING, acc,
                                                       q->mult[co], q->shift[co])
                                      + p->out_offset;
                    *y++ = (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}
