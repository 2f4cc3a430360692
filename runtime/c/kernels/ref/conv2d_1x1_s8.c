/* CONV2D with a 1x1 filter, no padding, no dilation: a matrix-vector product per pixel. */
#include "ef_nn_support.h"

/* the reference keeps its small working set on the stack: no ctx scratch */
int32_t ef_conv2d_1x1_s8_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out)
{
    (void)in;
    (void)wd;
    (void)out;
    return 0;
}

ef_status ef_conv2d_1x1_s8(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *wd, const int8_t *w, const int32_t *bias,
                           const ef_dims *out, int8_t *y)
{
    (void)ctx;
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || wd->h != 1 || wd->w != 1 || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    const int32_t sh = p->stride.h, sw = p->stride.w;
    const ef_act act = p->act;
    const int32_t batches = in->n, ih = in->h, iw = in->w, ic = in->c;
    const int32_t oh = out->h, ow = out->w, oc = out->c;

    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int8_t *xp = x + ((b * ih + oy * sh) * iw + ox * sw) * ic;
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc;
                ef_nn_dense_s8(xp, ic, w, bias, oc, in_off, out_off, q, act,
                               EF_CONV2D_SINGLE_ROUNDING, yp);
            }
        }
    }
    return EF_OK;
}
