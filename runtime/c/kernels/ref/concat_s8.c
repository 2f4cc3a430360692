/* CONCATENATION int8 (same quantization on every input, as TFLite requires): byte copies. */
#include <string.h>

#include "ef_nn_support.h"

ef_status ef_concat_s8(const ef_concat_params *p,
                       const ef_dims *in, const int8_t *x,
                       const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y || p->outer * p->chunk != ef_nn_numel(in)) {
        return EF_ERR_ARG;
    }
    for (int32_t o = 0; o < p->outer; ++o) {
        memcpy(y + o * p->out_stride + p->out_start, x + o * p->chunk, (size_t)p->chunk);
    }
    return EF_OK;
}
