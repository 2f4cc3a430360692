/* CONV2D int8 per-channel, Armv7E-M DSP version: same symbol and bytes as ref/conv2d_s8.c. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/conv2d_s8.c"   /* no DSP extension: exactly the reference kernel */
#else
#include "ef_dsp_conv.h"

int32_t ef_conv2d_s8_scratch_size(const ef_dims *in, const ef_dims *wd, const ef_dims *out)
{
    return ef_dsp_conv_scratch_size(in, wd, out);
}

ef_status ef_conv2d_s8(const ef_ctx *ctx, const ef_conv_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *wd, const int8_t *w, const int32_t *bias,
                       const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    return ef_dsp_conv(ctx, p, q, in, x, wd, w, bias, out, y);
}

#endif /* EF_DSP_KERNELS */
