/* 1x1 CONV2D over its own input, one input pixel buffered in scratch (see ef_inplace.h). */
#include <string.h>

#include "ef_inplace.h"
#include "ef_nn_support.h"

int32_t ef_conv2d_1x1_inplace_s8_scratch_size(const ef_dims *in)
{
    return in->c;
}

ef_status ef_conv2d_1x1_inplace_s8(const ef_ctx *ctx, const ef_conv_params *p,
                                   const ef_quant *q,
                                   const ef_dims *in, const int8_t *x,
                                   const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                   const ef_dims *out, int8_t *y)
{
    if (!ctx || !ctx->buf || !p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || wd->h != 1 || wd->w != 1 || out->c > in->c
        || in->n != out->n || in->h != out->h || in->w != out->w
        || p->stride.h != 1 || p->stride.w != 1 || ctx->size < in->c) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const ef_act act = p->act;
    const int32_t pixels = in->n * in->h * in->w, ic = in->c, oc = out->c;
    int8_t *buf = (int8_t *)ctx->buf;

    for (int32_t px = 0; px < pixels; ++px) {
        /* pixel px of x may be overwritten by pixel px of y: read it from the copy */
        memcpy(buf, x + px * ic, (size_t)ic);
        ef_nn_dense_s8(buf, ic, w, bias, oc, in_off, out_off, q, act,
                       EF_CONV2D_SINGLE_ROUNDING, y + px * oc);
    }
    return EF_OK;
}
