/* MEAN over H and W, int8 (TFLite reference_integer_ops::Mean semantics). */
#include "ef_nn_support.h"

ef_status ef_mean_s8(const ef_mean_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || in->n != out->n || in->c != out->c
        || out->h != 1 || out->w != 1) {
        return EF_ERR_ARG;
    }
    const int32_t batches = in->n, hw = in->h * in->w, ch = in->c;
    const int32_t in_off = p->in_offset, out_off = p->out_offset;
    if (hw <= 0) {
        return EF_ERR_ARG;
    }
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t c = 0; c < ch; ++c) {
            /* |x + in_off| <= 255 per tap: exact for H*W < 2^23 */
            int32_t acc = 0;
            const int8_t *xp = x + b * hw * ch + c;
            for (int32_t i = 0; i < hw; ++i) {
                acc += (int32_t)xp[i * ch] + in_off;
            }
            acc = ef_requantize(acc, p->mult, p->shift);
            acc = acc > 0 ? (acc + hw / 2) / hw : (acc - hw / 2) / hw;
            y[b * ch + c] = (int8_t)ef_nn_clamp(acc + out_off, -128, 127);
        }
    }
    return EF_OK;
}
