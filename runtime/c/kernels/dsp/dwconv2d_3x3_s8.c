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
ef_status ef_dwconv2d_3x3_ref_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
                                 const ef_dims *in, const int8_t *x,
                                 const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                 const ef_dims *out, int8_t *y) __attribute__((cold));
#define ef_dwconv2d_3x3_s8 ef_dwconv2d_3x3_ref_s8
#define ef_dwconv2d_3x3_s8_scratch_size ef_dwconv2d_3x3_ref_s8_scratch_size
#include "../ref/dwconv2d_3x3_s8.c"
#undef ef_dwconv2d_3x3_s8
#undef ef_dwconv2d_3x3_s8_scratch_size

int32_t ef_dwconv2d_3x3_s8_scratch_size(const ef_dw_params *p, const ef_dims *in,
                                        const ef_dims *out)
{
    return ef_dsp_dw_scratch(p, in->w, in->c, out->w);
}

ef_status ef_dwconv2d_3x3_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
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
    const int32_t need = ef_dsp_dw_scratch(p, iw, ch, ow);
    if (need == 0 || !ctx || !ctx->buf || ctx->size < need || ((uintptr_t)ctx->buf & 3)) {
        return ef_dwconv2d_3x3_ref_s8(ctx, p, q, in, x, wd, w, bias, out, y);
    }
    const ef_dsp_dw_ws ws = ef_dsp_dw_carve(ctx->buf, ch);   /* the arena, not the stack */
    ef_dsp_dw_expand(w, ch, ws.wexp);
    const ef_dsp_outq s = ef_dsp_dw_outq(p, q, bias, ch, ws.rq);
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *xb = x + b * ih * iw * ch;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * p->stride.h - p->pad.h;
            const int8_t *rows[3];
            for (int32_t ky = 0; ky < 3; ++ky) {
                const int32_t iy = iy0 + ky;
                rows[ky] = iy < 0 || iy >= ih ? NULL : xb + iy * iw * ch;
            }
            ef_dsp_dw3x3_row(p, &s, rows, iw, ch, ow, ws.wexp, bias,
                             y + ((b * oh + oy) * ow) * ch, ws.acc, ws.padded);
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
