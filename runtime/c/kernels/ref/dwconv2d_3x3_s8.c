/* DEPTHWISE_CONV_2D 3x3, depth_multiplier 1, dilation 1: channels innermost, in blocks, so the
 * inner loops run over contiguous channel vectors (same results as ef_dwconv2d_s8). */
#include "ef_nn_support.h"

#define EF_DW_BLOCK 64  /* int32 accumulators on the stack: 256 bytes */

/* the reference keeps its 256 bytes of accumulators on the stack: no ctx scratch */
int32_t ef_dwconv2d_3x3_s8_scratch_size(const ef_dw_params *p, const ef_dims *in,
                                        const ef_dims *out)
{
    (void)p;
    (void)in;
    (void)out;
    return 0;
}

ef_status ef_dwconv2d_3x3_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
                             const ef_dims *in, const int8_t *x,
                             const ef_dims *wd, const int8_t *w, const int32_t *bias,
                             const ef_dims *out, int8_t *y)
{
    (void)ctx;
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (p->depth_multiplier != 1 || wd->h != 3 || wd->w != 3 || wd->c != in->c || out->c != in->c
        || p->dilation.h != 1 || p->dilation.w != 1 || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const int32_t sh = p->stride.h, sw = p->stride.w;
    const int32_t ph = p->pad.h, pw = p->pad.w;
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t batches = in->n, ih = in->h, iw = in->w, ch = in->c;
    const int32_t oh = out->h, ow = out->w;
    const int32_t *mult = q->mult, *shift = q->shift;
    int32_t acc[EF_DW_BLOCK];

    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            const int32_t ky0 = ef_nn_tap_lo(iy0), ky1 = ef_nn_tap_hi(iy0, 3, ih);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                const int32_t kx0 = ef_nn_tap_lo(ix0), kx1 = ef_nn_tap_hi(ix0, 3, iw);
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                for (int32_t c0 = 0; c0 < ch; c0 += EF_DW_BLOCK) {
                    const int32_t nc = ch - c0 < EF_DW_BLOCK ? ch - c0 : EF_DW_BLOCK;
                    for (int32_t c = 0; c < nc; ++c) {
                        acc[c] = bias ? bias[c0 + c] : 0;
                    }
                    /* 9 products < 2^15 each plus the bias: cannot overflow int32 for any
                     * bias |b| < 2^31 - 2^19 (TFLite sums in the same order modulo 2^32). */
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const int8_t *xp = x + ((b * ih + iy0 + ky) * iw + ix0 + kx) * ch + c0;
                            const int8_t *wp = w + (ky * 3 + kx) * ch + c0;
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
