/* DEPTHWISE_CONV_2D over its own input, with a ring of input pixels (see ef_inplace.h). */
#include <string.h>

#include "ef_inplace.h"
#include "ef_nn_support.h"

int32_t ef_dwconv2d_inplace_s8_scratch_size(const ef_dw_params *p, const ef_dims *in)
{
    const int32_t pixels = p->pad.h * in->w + p->pad.w + 1;
    return (pixels < in->h * in->w ? pixels : in->h * in->w) * in->c;
}

ef_status ef_dwconv2d_inplace_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
                                 const ef_dims *in, const int8_t *x,
                                 const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                 const ef_dims *out, int8_t *y)
{
    if (!ctx || !ctx->buf || !p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (p->depth_multiplier != 1 || p->stride.h != 1 || p->stride.w != 1
        || !ef_nn_same_dims(in, out) || wd->c != in->c || p->pad.h < 0 || p->pad.w < 0
        || ctx->size < ef_dwconv2d_inplace_s8_scratch_size(p, in)) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const int32_t ph = p->pad.h, pw = p->pad.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w;
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t batches = in->n, ih = in->h, iw = in->w, ch = in->c;
    const int32_t kh = wd->h, kw = wd->w;
    /* pixel p's window reaches back at most ph*W + pw pixels: those and p itself are kept */
    const int32_t ring = ef_dwconv2d_inplace_s8_scratch_size(p, in) / ch;
    const int32_t *mult = q->mult, *shift = q->shift;
    int8_t *buf = (int8_t *)ctx->buf;
    int32_t acc[EF_NN_ACC_BLOCK];

    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *xb = x + b * ih * iw * ch;
        int8_t *yb = y + b * ih * iw * ch;
        for (int32_t oy = 0; oy < ih; ++oy) {
            for (int32_t ox = 0; ox < iw; ++ox) {
                const int32_t px = oy * iw + ox;
                /* input pixel px is overwritten by output pixel px: save it first */
                memcpy(buf + (px % ring) * ch, xb + px * ch, (size_t)ch);
                int8_t *yp = yb + px * ch;
                /* channels innermost, in blocks: one contiguous vector per tap */
                for (int32_t c0 = 0; c0 < ch; c0 += EF_NN_ACC_BLOCK) {
                    const int32_t nc = ch - c0 < EF_NN_ACC_BLOCK ? ch - c0 : EF_NN_ACC_BLOCK;
                    for (int32_t c = 0; c < nc; ++c) {
                        acc[c] = bias ? bias[c0 + c] : 0;
                    }
                    /* at most KH*KW products < 2^15 each per channel: exact for
                     * KH*KW < 2^16 (TFLite sums the same terms, modulo 2^32 order) */
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = oy - ph + dh * ky;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ox - pw + dw * kx;
                            if (ix < 0 || ix >= iw) {
                                continue;
                            }
                            /* pixels up to px come from the ring, later ones are intact in x */
                            const int32_t qx = iy * iw + ix;
                            const int8_t *xp = (qx <= px ? buf + (qx % ring) * ch
                                                         : xb + qx * ch) + c0;
                            const int8_t *wp = w + (ky * kw + kx) * ch + c0;
                            for (int32_t c = 0; c < nc; ++c) {
                                acc[c] += (int32_t)(int16_t)(xp[c] + in_off) * (int16_t)wp[c];
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
