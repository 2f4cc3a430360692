/* DEPTHWISE_CONV_2D 3x3, depth_multiplier 1, dilation 1, Armv7E-M DSP version: same symbol
 * and bytes as ref/dwconv2d_3x3_s8.c. Rows go through the engine of ef_dsp_dw.h (C a multiple of 4, at
 * most EF_DSP_DW_CH_MAX); other widths take the reference loops. Pixels go in raster order
 * and each writes only its own bytes after reading its window (in-place contract). */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/dwconv2d_3x3_s8.c"   /* no DSP extension: exactly the reference kernel */
#else
#include "ef_dsp_dw.h"

/* the reference fallback: rarely run, optimised for size */
ef_status ef_dwconv2d_3x3_ref_s8(const ef_dw_params *p, const ef_quant *q,
                                 const ef_dims *in, const int8_t *x,
                                 const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                 const ef_dims *out, int8_t *y) __attribute__((cold));
#define ef_dwconv2d_3x3_s8 ef_dwconv2d_3x3_ref_s8
#include "../ref/dwconv2d_3x3_s8.c"
#undef ef_dwconv2d_3x3_s8

ef_status ef_dwconv2d_3x3_s8(const ef_dw_params *p, const ef_quant *q,
                             const ef_dims *in, const int8_t *x,
                             const ef_dims *wd, const int8_t *w, const int32_t *bias,
                             const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (p->depth_multiplier != 1 || wd->h != 3 || wd->w != 3 || wd->c != in->c || out->c != in->c
        || p->dilation.h != 1 || p->dilation.w != 1 || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, ch = in->c, oh = out->h, ow = out->w;
    if ((ch & 3) != 0 || ch > EF_DSP_DW_CH_MAX) {
        return ef_dwconv2d_3x3_ref_s8(p, q, in, x, wd, w, bias, out, y);
    }
    uint32_t wexp[9 * EF_DSP_DW_CH_MAX / 2];
    ef_dsp_dw_expand(w, ch, wexp);
    int32_t rq[3 * EF_DSP_DW_RQ_MAX];
    const ef_dsp_outq s = ef_dsp_dw_outq(p, q, bias, ch, rq);
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *xb = x + b * ih * iw * ch;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * p->stride.h - p->pad.h;
            const int8_t *rows[3];
            for (int32_t ky = 0; ky < 3; ++ky) {
                const int32_t iy = iy0 + ky;
                rows[ky] = iy < 0 || iy >= ih ? NULL : xb + iy * iw * ch;
            }
            ef_dsp_dw3x3_row(p, &s, rows, iw, ch, ow, wexp, bias, y + ((b * oh + oy) * ow) * ch);
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
