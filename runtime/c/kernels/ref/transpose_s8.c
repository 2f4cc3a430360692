/* TRANSPOSE int8 (bytes move, values do not change): output in raster order. */
#include "ef_nn_support.h"

ef_status ef_transpose_s8(const ef_transpose_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    const int32_t id[4] = {in->n, in->h, in->w, in->c};
    const int32_t od[4] = {out->n, out->h, out->w, out->c};
    const int32_t is[4] = {in->h * in->w * in->c, in->w * in->c, in->c, 1};
    int32_t st[4];     /* input stride of each output dim */
    for (int32_t k = 0; k < 4; ++k) {
        const int32_t d = p->perm[k];
        if (d < 0 || d > 3 || id[d] != od[k]) {
            return EF_ERR_ARG;
        }
        st[k] = is[d];
    }
    for (int32_t a = 0; a < od[0]; ++a) {
        for (int32_t b = 0; b < od[1]; ++b) {
            for (int32_t c = 0; c < od[2]; ++c) {
                const int8_t *xp = x + a * st[0] + b * st[1] + c * st[2];
                for (int32_t d = 0; d < od[3]; ++d) {
                    *y++ = xp[d * st[3]];
                }
            }
        }
    }
    return EF_OK;
}
