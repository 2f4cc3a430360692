/* 1x1 CONV2D over its own input (see ef_inplace.h), Armv7E-M DSP version: same symbols and
 * bytes as ref/conv2d_1x1_inplace_s8.c. The DSP engine copies both pixels of a step into its
 * int16 columns before writing either output pixel, and output pixel p (C_OUT <= C_IN bytes,
 * y <= x) only covers input bytes of pixels <= p, so ctx holds the engine's working set
 * instead of a pixel copy. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/conv2d_1x1_inplace_s8.c"   /* no DSP extension: exactly the reference kernel */
#else
#include "ef_dsp_conv.h"
#include "ef_inplace.h"

/* the reference, renamed, for pixels longer than the engine's columns (its scratch size is
 * renamed too: this file's covers both) */
/* the reference fallback: rarely run, optimised for size */
ef_status ef_conv2d_1x1_inplace_ref_s8(const ef_ctx *ctx, const ef_conv_params *p,
                                       const ef_quant *q, const ef_dims *in, const int8_t *x,
                                       const ef_dims *wd, const int8_t *w, const int32_t *bias,
                                       const ef_dims *out, int8_t *y) __attribute__((cold));
#define ef_conv2d_1x1_inplace_s8 ef_conv2d_1x1_inplace_ref_s8
#define ef_conv2d_1x1_inplace_s8_scratch_size ef_conv2d_1x1_inplace_ref_s8_scratch_size
#include "../ref/conv2d_1x1_inplace_s8.c"
#undef ef_conv2d_1x1_inplace_s8
#undef ef_conv2d_1x1_inplace_s8_scratch_size

/* the engine's working set for the widest output (C_OUT <= C_IN), else the reference's */
int32_t ef_conv2d_1x1_inplace_s8_scratch_size(const ef_dims *in)
{
    const ef_dims wd = {in->c, 1, 1, in->c};
    const int32_t n = ef_dsp_conv_scratch_size(in, &wd, in);
    return n > in->c ? n : in->c;
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
    const int32_t need = ef_dsp_conv_scratch_size(in, wd, out);
    if (need == 0 || ctx->size < need) {
        return ef_conv2d_1x1_inplace_ref_s8(ctx, p, q, in, x, wd, w, bias, out, y);
    }
    ef_conv_params p1 = *p;
    p1.pad.h = p1.pad.w = 0;
    p1.dilation.h = p1.dilation.w = 1;
    return ef_dsp_conv(ctx, &p1, q, in, x, wd, w, bias, out, y);
}

#endif /* EF_DSP_KERNELS */
