/* DEPTHWISE_CONV_2D int8 per-channel (TFLite reference DepthwiseConvPerChannel semantics). */
#include "ef_nn_support.h"

ef_status ef_dwconv2d_s8(const ef_dw_params *p, const ef_quant *q,
                         const ef_dims *in, const int8_t *x,
                         const ef_dims *wd, const int8_t *w, const int32_t *bias,
                         const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t cm = p->depth_multiplier;
    if (cm < 1 || wd->c != in->c * cm || out->c != wd->c || in->n != out->n) {
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

    if (cm == 1) {     /* channels innermost, in blocks: contiguous vectors per tap */
        int32_t acc[EF_NN_ACC_BLOCK];
        for (int32_t b = 0; b < batches; ++b) {
            for (int32_t oy = 0; oy < oh; ++oy) {
                const int32_t iy0 = oy * sh - ph;
                for (int32_t ox = 0; ox < ow; ++ox) {
                    const int32_t ix0 = ox * sw - pw;
                    int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                    for (int32_t c0 = 0; c0 < oc; c0 += EF_NN_ACC_BLOCK) {
                        const int32_t nc = oc - c0 < EF_NN_ACC_BLOCK ? oc - c0 : EF_NN_ACC_BLOCK;
                        for (int32_t c = 0; c < nc; ++c) {
                            acc[c] = bias ? bias[c0 + c] : 0;
                        }
                        /* KH*KW products < 2^15 each per channel: exact for KH*KW < 2^16 */
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
                                const int8_t *xp = x + ((b * ih + iy) * iw + ix) * ic + c0;
                                const int8_t *wp = w + (ky * kw + kx) * oc + c0;
                                for (int32_t c = 0; c < nc; ++c) {
                                    acc[c] += (int32_t)(int16_t)(xp[c] + in_off)
                                              * (int16_t)wp[c];
                                }
                            }
                        }
                        ef_nn_requant_store_s8(acc, nc, mult + c0, shift + c0, out_off, amin, amax,
                                               EF_DWCONV2D_SINGLE_ROUNDING, yp + c0);
                    }
                }
            }
        }
        return EF_OK;
    }
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                for (int32_t c = 0; c < ic; ++c) {
                    for (int32_t m = 0; m < cm; ++m) {
                        const int32_t o = c * cm + m;
                        /* at most KH*KW products < 2^15 each: exact for KH*KW < 2^16 */
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
                                const int32_t xv = x[((b * ih + iy) * iw + ix) * ic + c];
                                acc += (xv + in_off) * (int32_t)w[(ky * kw + kx) * oc + o];
                            }
                        }
                        if (bias) {
                            acc += bias[o];
                        }
                        acc = EF_REQUANTIZE_AS(EF_DWCONV2D_SINGLE_ROUNDING, acc, mult[o], shift[o])
                              + out_off;
                        yp[o] = (int8_t)ef_nn_clamp(acc, amin, amax);
                    }
                }
            }
        }
    }
    return EF_OK;
}
