/* DEPTHWISE_CONV_2D 3x3, ch_mult 1, dilation 1, Armv7E-M DSP version: same symbol and bytes as
 * ref/dwconv2d_3x3_s8.c. Four channels per step: SXTAB16 adds the input offset to two
 * channels at once, SMLABB/SMLATT multiply-accumulate each int16 lane. Pixels go in raster
 * order and each writes only its own bytes after reading its window (in-place contract). */
#include "ef_dsp.h"

static inline int8_t dw_out(const ef_dw_params *p, const ef_quant *q, int32_t c, int32_t acc)
{
    acc = ef_dsp_requantize(EF_DWCONV2D_SINGLE_ROUNDING, acc, q->mult[c], q->shift[c]);
    return (int8_t)ef_nn_clamp(acc + p->out_offset, p->act.min, p->act.max);
}

ef_status ef_dwconv2d_3x3_s8(const ef_dw_params *p, const ef_quant *q,
                             const ef_dims *in, const int8_t *x,
                             const ef_dims *wd, const int8_t *w, const int32_t *bias,
                             const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (p->ch_mult != 1 || wd->h != 3 || wd->w != 3 || wd->c != in->c || out->c != in->c
        || p->dilation.h != 1 || p->dilation.w != 1 || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset;
    const uint32_t off2 = ef_dsp_dup16(in_off);
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->pad.h, pw = p->pad.w;
    const int32_t ih = in->h, iw = in->w, ch = in->c, ch4 = ch & ~3;
    const int32_t oh = out->h, ow = out->w;

    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - ph;
            const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
            const int32_t ky1 = iy0 + 3 > ih ? ih - iy0 : 3;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - pw;
                const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t kx1 = ix0 + 3 > iw ? iw - ix0 : 3;
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * ch;
                const int8_t *xb = x + ((b * ih + iy0) * iw + ix0) * ch;
                int32_t c = 0;
                for (; c < ch4; c += 4) {
                    int32_t a0 = bias ? bias[c] : 0, a1 = bias ? bias[c + 1] : 0;
                    int32_t a2 = bias ? bias[c + 2] : 0, a3 = bias ? bias[c + 3] : 0;
                    /* at most 9 products < 2^15 plus the bias: exact, as in the reference */
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const uint32_t xv = ef_dsp_ld32(xb + (ky * iw + kx) * ch + c);
                            const uint32_t wv = ef_dsp_ld32(w + (ky * 3 + kx) * ch + c);
                            const uint32_t xe = ef_dsp_sxtab16(off2, xv);
                            const uint32_t xo = ef_dsp_sxtab16_ror8(off2, xv);
                            const uint32_t we = ef_dsp_sxtb16(wv);
                            const uint32_t wo = ef_dsp_sxtb16_ror8(wv);
                            a0 = ef_dsp_smlabb(xe, we, a0);
                            a2 = ef_dsp_smlatt(xe, we, a2);
                            a1 = ef_dsp_smlabb(xo, wo, a1);
                            a3 = ef_dsp_smlatt(xo, wo, a3);
                        }
                    }
                    yp[c] = dw_out(p, q, c, a0);
                    yp[c + 1] = dw_out(p, q, c + 1, a1);
                    yp[c + 2] = dw_out(p, q, c + 2, a2);
                    yp[c + 3] = dw_out(p, q, c + 3, a3);
                }
                for (; c < ch; ++c) {
                    int32_t acc = bias ? bias[c] : 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            acc += ((int32_t)xb[(ky * iw + kx) * ch + c] + in_off)
                                   * (int32_t)w[(ky * 3 + kx) * ch + c];
                        }
                    }
                    yp[c] = dw_out(p, q, c, acc);
                }
            }
        }
    }
    return EF_OK;
}
