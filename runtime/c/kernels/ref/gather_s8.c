/* GATHER int8 with constant indices (TFLite gather.cc, batch_dims 0): rows are copied. */
#include <string.h>

#include "ef_nn_support.h"

ef_status ef_gather_s8(const ef_gather_params *p,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *out, int8_t *y)
{
    if (!p || !p->idx || !in || !x || !out || !y ||
        ef_nn_numel(in) != p->outer * p->axis_size * p->inner ||
        ef_nn_numel(out) != p->outer * p->n_idx * p->inner) {
        return EF_ERR_ARG;
    }
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t j = 0; j < p->n_idx; ++j) {
            const int32_t k = p->idx[j];
            if (k < 0 || k >= p->axis_size) {
                return EF_ERR_ARG;
            }
            memcpy(y, x + ((size_t)o * p->axis_size + k) * p->inner, (size_t)p->inner);
            y += p->inner;
        }
    }
    return EF_OK;
}
