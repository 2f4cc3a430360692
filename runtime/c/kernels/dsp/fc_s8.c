/* FULLY_CONNECTED int8, Armv7E-M DSP version: same symbol and bytes as ref/fc_s8.c.
 * Two output channels share each input word (ef_dsp_dot2_s8: SXTAB16, SMLAD). */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/fc_s8.c"   /* no DSP extension: exactly the reference kernel */
#else

static inline int8_t fc_out(const ef_fc_params *p, const ef_quant *q, int32_t o, int32_t acc)
{
    acc = ef_dsp_requantize(EF_FC_SINGLE_ROUNDING, acc, q->mult[o], q->shift[o]);
    return (int8_t)ef_nn_clamp(acc + p->out_offset, p->act.min, p->act.max);
}

ef_status ef_fc_s8(const ef_fc_params *p, const ef_quant *q,
                   const ef_dims *in, const int8_t *x,
                   const ef_dims *wd, const int8_t *w, const int32_t *bias,
                   const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !w || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n;
    const int32_t rows = ef_nn_numel(in) / depth;
    if (ef_nn_numel(in) != rows * depth || ef_nn_numel(out) != rows * oc) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset;
    const uint32_t off2 = ef_dsp_dup16(in_off);
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xp = x + r * depth;
        int8_t *yp = y + r * oc;
        int32_t o = 0;
        for (; o < oc; o += 2) {
            const int pair = o + 1 < oc;
            const int8_t *w0 = w + o * depth, *w1 = pair ? w0 + depth : w0;
            int32_t s0 = 0, s1 = 0;   /* exact for C_IN < 2^16 */
            ef_dsp_dot2_s8(xp, off2, in_off, w0, w1, depth, &s0, &s1);
            yp[o] = fc_out(p, q, o, s0 + (bias ? bias[o] : 0));
            if (pair) {
                yp[o + 1] = fc_out(p, q, o + 1, s1 + (bias ? bias[o + 1] : 0));
            }
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
