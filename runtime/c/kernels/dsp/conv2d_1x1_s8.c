/* CONV2D 1x1 (pad 0, dilation 1, any stride), Armv7E-M DSP version: same symbol and bytes as
 * ref/conv2d_1x1_s8.c. The engine's im2col of a 1x1 tap is the pixel itself. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/conv2d_1x1_s8.c"   /* no DSP extension: exactly the reference kernel */
#else
#include "ef_dsp_conv.h"

int32_t ef_conv2d_1x1_s8_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out)
{
    return ef_dsp_conv_scratch_size(in, wd, out);
}

ef_status ef_conv2d_1x1_s8(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                           const ef_dims *in, const int8_t *x,
                           const ef_dims *wd, const int8_t *w, const int32_t *bias,
                           const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || wd->h != 1 || wd->w != 1 || in->n != out->n) {
        return EF_ERR_ARG;
    }
    /* the reference ignores pad and dilation for 1x1: use a copy without them */
    ef_conv_params p1 = *p;
    p1.pad.h = p1.pad.w = 0;
    p1.dilation.h = p1.dilation.w = 1;
    return ef_dsp_conv(ctx, &p1, q, in, x, wd, w, bias, out, y);
}

#endif /* EF_DSP_KERNELS */
