/* DEPTHWISE_CONV_2D over its own input (see ef_inplace.h), Armv7E-M DSP version: same symbols
 * and bytes as ref/dwconv2d_inplace_s8.c. The same ring of saved input rows as the reference
 * (row oy is saved before output row oy overwrites it); 3x3 filters with C a multiple of 4
 * go through the row engine of ef_dsp_dw.h, anything else through the reference loops. */
#include "ef_dsp_dw.h"
#include "ef_inplace.h"

/* the reference, renamed (it also defines ef_dwconv2d_inplace_s8_scratch_size, unchanged) */
#define ef_dwconv2d_inplace_s8 ef_dwconv2d_inplace_ref_s8
#include "../ref/dwconv2d_inplace_s8.c"
#undef ef_dwconv2d_inplace_s8

ef_status ef_dwconv2d_inplace_s8(const ef_ctx *ctx, const ef_dw_params *p, const ef_quant *q,
                                 const ef_dims *in, const int8_t *x,
                                 const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                 const ef_dims *out, int8_t *y)
{
    if (!ctx || !ctx->buf || !p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (p->ch_mult != 1 || p->stride.h != 1 || p->stride.w != 1 || !ef_nn_same_dims(in, out)
        || wd->c != in->c || p->pad.h < 0
        || ctx->size < ef_dwconv2d_inplace_s8_scratch_size(p, in)) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, ch = in->c, ph = p->pad.h;
    if (wd->h != 3 || wd->w != 3 || p->dilation.h != 1 || p->dilation.w != 1
        || (ch & 3) != 0 || ch > EF_DSP_DW_CH_MAX) {
        return ef_dwconv2d_inplace_ref_s8(ctx, p, q, in, x, wd, w, bias, out, y);
    }
    const int32_t ring = ph + 1 < ih ? ph + 1 : ih;       /* rows oy - ph .. oy */
    const int32_t row = iw * ch;
    int8_t *buf = (int8_t *)ctx->buf;
    uint32_t wexp[9 * EF_DSP_DW_CH_MAX / 2];
    ef_dsp_dw_expand(w, ch, wexp);
    const ef_dsp_outq s = ef_dsp_dw_outq(p, q, bias, ch);
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *xb = x + b * ih * row;
        int8_t *yb = y + b * ih * row;
        for (int32_t oy = 0; oy < ih; ++oy) {
            /* input row oy is overwritten by this output row: save it first */
            memcpy(buf + (oy % ring) * row, xb + oy * row, (size_t)row);
            const int8_t *rows[3];
            for (int32_t ky = 0; ky < 3; ++ky) {
                const int32_t iy = oy - ph + ky;
                /* rows <= oy come from the ring, rows below are still intact in x */
                rows[ky] = iy < 0 || iy >= ih ? NULL
                           : iy <= oy ? buf + (iy % ring) * row : xb + iy * row;
            }
            ef_dsp_dw3x3_row(p, &s, rows, iw, ch, iw, wexp, bias, yb + oy * row);
        }
    }
    return EF_OK;
}
