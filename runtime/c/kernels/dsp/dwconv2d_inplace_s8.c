/* DEPTHWISE_CONV_2D over its own input (see ef_inplace.h), Armv7E-M DSP version: same symbols
 * and bytes as ref/dwconv2d_inplace_s8.c, in the same ctx (the reference's scratch size).
 * 3x3 filters with C a multiple of 4 whose padded rows fit the stack go row by row through
 * ef_dsp_dw.h, anything else through the reference loops. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/dwconv2d_inplace_s8.c"   /* no DSP extension: exactly the reference kernel */
#else
#include "ef_dsp_dw.h"
#include "ef_inplace.h"

/* the reference, renamed (its scratch size too: the ring this file's size starts with) */
/* the reference fallback: rarely run, optimised for size */
ef_status ef_dwconv2d_inplace_ref_s8(const ef_ctx *ctx, const ef_dw_params *p,
                                     const ef_quant *q, const ef_dims *in, const int8_t *x,
                                     const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                     const ef_dims *out, int8_t *y) __attribute__((cold));
#define ef_dwconv2d_inplace_s8 ef_dwconv2d_inplace_ref_s8
#define ef_dwconv2d_inplace_s8_scratch_size ef_dwconv2d_inplace_ref_s8_scratch_size
#include "../ref/dwconv2d_inplace_s8.c"
#undef ef_dwconv2d_inplace_s8
#undef ef_dwconv2d_inplace_s8_scratch_size

/* the reference's ring (word-rounded), then the 3x3 row engine's working set */
int32_t ef_dwconv2d_inplace_s8_scratch_size(const ef_dw_params *p, const ef_dims *in)
{
    const int32_t ring = (ef_dwconv2d_inplace_ref_s8_scratch_size(p, in) + 3) & ~3;
    return ring + ef_dsp_dw_scratch(p, in->w, in->c, in->w);
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
        || !ef_nn_same_dims(in, out) || wd->c != in->c || p->pad.h < 0
        || ctx->size < ef_dwconv2d_inplace_ref_s8_scratch_size(p, in)) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, ch = in->c, ph = p->pad.h;
    const int32_t width = ef_dsp_dw_width(p, iw, ch, iw);
    const int32_t ring = (ef_dwconv2d_inplace_ref_s8_scratch_size(p, in) + 3) & ~3;
    if (wd->h != 3 || wd->w != 3 || p->dilation.h != 1 || p->dilation.w != 1
        || (ch & 3) != 0 || ch > EF_DSP_DW_CH_MAX || width == 0 || ph > ih
        || ctx->size < ring + ef_dsp_dw_scratch(p, iw, ch, iw) || ((uintptr_t)ctx->buf & 3)) {
        return ef_dwconv2d_inplace_ref_s8(ctx, p, q, in, x, wd, w, bias, out, y);
    }
    /* ctx (pad.h * W + pad.w + 1 pixels, the planner's size) holds the pad.h input rows
     * above the current one, one slot per row, iy % pad.h; the three rows of a step are
     * copied to the stack before the output row overwrites input row oy */
    const int32_t row = iw * ch;
    int8_t *buf = (int8_t *)ctx->buf;
    const ef_dsp_dw_ws ws = ef_dsp_dw_carve(buf + ring, ch);   /* after the ring */
    ef_dsp_dw_expand(w, ch, ws.wexp);
    const ef_dsp_outq s = ef_dsp_dw_outq(p, q, bias, ch, ws.rq);
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *xb = x + b * ih * row;
        int8_t *yb = y + b * ih * row;
        for (int32_t oy = 0; oy < ih; ++oy) {
            const int8_t *rows[3];
            for (int32_t ky = 0; ky < 3; ++ky) {
                const int32_t iy = oy - ph + ky;
                /* rows above oy were overwritten: saved; oy and below are intact in x */
                rows[ky] = iy < 0 || iy >= ih ? NULL
                           : iy < oy ? buf + (iy % ph) * row : xb + iy * row;
            }
            ef_dsp_dw_pad_rows(p, rows, iw, ch, width, ws.padded);
            if (ph > 0) {        /* after reading slot oy % ph (row oy - ph) above */
                memcpy(buf + (oy % ph) * row, xb + oy * row, (size_t)row);
            }
            ef_dsp_dw3x3_padded(p, &s, ws.padded, width, ch, iw, ws.wexp, bias, yb + oy * row,
                                ws.acc);
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
