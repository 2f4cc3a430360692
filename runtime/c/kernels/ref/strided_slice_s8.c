/* STRIDED_SLICE int8 (bytes move, values do not change; TFLite requires equal quantization):
 * y[i0, i1, i2, i3] = x[b0 + i0 * s0, ..., b3 + i3 * s3], output in raster order. */
#include "ef_nn_support.h"

ef_status ef_strided_slice_s8(const ef_strided_slice_params *p,
                              const ef_dims *in, const int8_t *x,
                              const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t id[4] = {in->n, in->h, in->w, in->c};
    const int32_t od[4] = {out->n, out->h, out->w, out->c};
    const int32_t is[4] = {in->h * in->w * in->c, in->w * in->c, in->c, 1};
    int32_t st[4];     /* input element step of each output dim */
    for (int32_t k = 0; k < 4; ++k) {
        const int32_t last = p->begin[k] + (od[k] - 1) * p->stride[k];
        if (p->stride[k] < 1 || p->begin[k] < 0 || od[k] < 1 || last >= id[k]) {
            return EF_ERR_ARG;
        }
        st[k] = is[k] * p->stride[k];
    }
    const int8_t *base = x + p->begin[0] * is[0] + p->begin[1] * is[1] + p->begin[2] * is[2]
                         + p->begin[3];
    for (int32_t a = 0; a < od[0]; ++a) {
        for (int32_t b = 0; b < od[1]; ++b) {
            for (int32_t c = 0; c < od[2]; ++c) {
                const int8_t *xp = base + a * st[0] + b * st[1] + c * st[2];
                if (st[3] == 1) {
                    for (int32_t d = 0; d < od[3]; ++d) {
                        y[d] = xp[d];
                    }
                } else {
                    for (int32_t d = 0; d < od[3]; ++d) {
                        y[d] = xp[d * st[3]];
                    }
                }
                y += od[3];
            }
        }
    }
    return EF_OK;
}
