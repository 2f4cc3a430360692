/* CONV2D for shallow inputs, Armv7E-M DSP version: same symbol, transposed filter
 * [KH, KW, C_IN, C_OUT] and bytes as ref/conv2d_shallow_s8.c. The filter is turned back to
 * [C_OUT, KH, KW, C_IN] in the ctx scratch once per call (a few thousand instructions for a first
 * layer) and the call goes through the SMLAD engine of ef_dsp_conv.c; larger filters take
 * the reference loops. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/conv2d_shallow_s8.c"   /* no DSP extension: exactly the reference kernel */
#else
#include "ef_dsp_conv.h"

/* the reference fallback: rarely run, optimised for size */
ef_status ef_conv2d_shallow_ref_s8(const ef_ctx *ctx, const ef_conv_params *p,
                                   const ef_quant *q,
                                   const ef_dims *in, const int8_t *x,
                                   const ef_dims *wd, const int8_t *w_t, const int32_t *bias,
                                   const ef_dims *out, int8_t *y) __attribute__((cold));
#define ef_conv2d_shallow_s8 ef_conv2d_shallow_ref_s8
#define ef_conv2d_shallow_s8_scratch_size ef_conv2d_shallow_ref_s8_scratch_size
#include "../ref/conv2d_shallow_s8.c"
#undef ef_conv2d_shallow_s8
#undef ef_conv2d_shallow_s8_scratch_size

/** Largest filter (bytes) un-transposed into the scratch. */
#ifndef EF_DSP_SHALLOW_MAX
#define EF_DSP_SHALLOW_MAX 4096
#endif

/* the un-transposed filter (word-rounded), then the engine's working set; 0: reference */
int32_t ef_conv2d_shallow_s8_scratch_size(const ef_dims *in, const ef_dims *wd,
                                          const ef_dims *out)
{
    const int32_t k = wd->h * wd->w * wd->c, oc = wd->n;
    const int32_t eng = ef_dsp_conv_scratch_size(in, wd, out);
    return k * oc > EF_DSP_SHALLOW_MAX || eng == 0 ? 0 : ((k + 3) & ~3) * oc + eng;
}

ef_status ef_conv2d_shallow_s8(const ef_ctx *ctx, const ef_conv_params *p,
                               const ef_quant *q,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *wd, const int8_t *w_t, const int32_t *bias,
                               const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w_t || !out || !y) {
        return EF_ERR_ARG;
    }
    if (wd->c != in->c || wd->n != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t k = wd->h * wd->w * wd->c, oc = wd->n;
    const int32_t need = ef_conv2d_shallow_s8_scratch_size(in, wd, out);
    if (need == 0 || !ctx || !ctx->buf || ctx->size < need || ((uintptr_t)ctx->buf & 3)) {
        return ef_conv2d_shallow_ref_s8(ctx, p, q, in, x, wd, w_t, bias, out, y);
    }
    /* rows of K rounded up to 4, zero-padded: the engine's K % 4 tail is one more group */
    int8_t *w = (int8_t *)ctx->buf;
    const int32_t kp = (k + 3) & ~3, wbytes = kp * oc;
    const ef_ctx rest = {w + wbytes, ctx->size - wbytes};   /* the engine's part */
    for (int32_t o = 0; o < oc; ++o) {
        for (int32_t t = 0; t < kp; ++t) {
            w[o * kp + t] = t < k ? w_t[t * oc + o] : 0;
        }
    }
    return ef_dsp_conv_w4(&rest, p, q, in, x, wd, w, bias, out, y);
}

#endif /* EF_DSP_KERNELS */
