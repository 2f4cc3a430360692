/* CONV2D for shallow inputs (few input channels, e.g. a first layer on an image or a
 * spectrogram): the filter is stored transposed, [KH, KW, C_IN, C_OUT], so every input value
 * of the window multiplies a contiguous vector of output-channel weights. Same sums as
 * ef_conv2d_s8 in another order (exact int32 arithmetic: the same results). */
#include "ef_nn_support.h"

/* the reference keeps its small working set on the stack: no ctx scratch */
int32_t ef_conv2d_shallow_s8_scratch_size(const ef_dims *in, const ef_dims *wd,
                                          const ef_dims *out)
{
    (void)in;
    (void)wd;
    (void)out;
    return 0;
}

ef_status ef_conv2d_shallow_s8(const ef_ctx *ctx, const ef_conv_params *p,
                               const ef_quant *q,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *wd, const int8_t *w_t, const int32_t *bias,
                               const ef_dims *out, int8_t *y)
{
    (void)ctx;
    if (!p || !q || !in || !x || !wd || !w_t || !out || !y) {
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
    /* products < 2^15: exact for KH*KW*C_IN < 2^16 taps (TFLite's bound) */
    int32_t acc[EF_NN_ACC_BLOCK];

    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                for (int32_t o0 = 0; o0 < oc; o0 += EF_NN_ACC_BLOCK) {
                    const int32_t no = oc - o0 < EF_NN_ACC_BLOCK ? oc - o0 : EF_NN_ACC_BLOCK;
                    for (int32_t o = 0; o < no; ++o) {
                        acc[o] = bias ? bias[o0 + o] : 0;
                    }
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
                            const int8_t *wp = w_t + ((ky * kw + kx) * ic) * oc + o0;
                            for (int32_t i = 0; i < ic; ++i, wp += oc) {
                                const int16_t xv = (int16_t)(xp[i] + in_off);
                                for (int32_t o = 0; o < no; ++o) {
                                    acc[o] += (int32_t)xv * (int16_t)wp[o];
                                }
                            }
                        }
                    }
                    ef_nn_requant_store_s8(acc, no, mult + o0, shift + o0, out_off, amin, amax,
                                           EF_CONV2D_SINGLE_ROUNDING, yp + o0);
                }
            }
        }
    }
    return EF_OK;
}
