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
    const int32_t amin = p->act.min, amax = p->act.max;
    const int32_t pixels = in->n * in->h * in->w, ic = in->c, oc = out->c;
    const int32_t *mult = q->mult, *shift = q->shift;
    int8_t *buf = (int8_t *)ctx->buf;
    int32_t acc[EF_NN_ACC_BLOCK];   /* products < 2^15: exact for C_IN < 2^16 */

    for (int32_t px = 0; px < pixels; ++px) {
        /* pixel px of x may be overwritten by pixel px of y: read it from the copy */
        memcpy(buf, x + px * ic, (size_t)ic);
        int8_t *yp = y + px * oc;
        for (int32_t o0 = 0; o0 < oc; o0 += EF_NN_ACC_BLOCK) {
            const int32_t no = oc - o0 < EF_NN_ACC_BLOCK ? oc - o0 : EF_NN_ACC_BLOCK;
            for (int32_t o = 0; o < no; ++o) {
                acc[o] = bias ? bias[o0 + o] : 0;
            }
            ef_nn_matvec_s8(buf, w + o0 * ic, ic, no, ic, in_off, acc);
            for (int32_t o = 0; o < no; ++o) {
                const int32_t v = EF_REQUANTIZE_AS(EF_CONV2D_SINGLE_ROUNDING, acc[o],
                                                   mult[o0 + o], shift[o0 + o]);
                yp[o0 + o] = (int8_t)ef_nn_clamp(v + out_off, amin, amax);
            }
        }
    }
    return EF_OK;
}
