/* AVERAGE_POOL_2D int8 (TFLite reference_integer_ops::AveragePool semantics). */
#include "ef_nn_support.h"

ef_status ef_avgpool2d_s8(const ef_pool_params *p,
                          const ef_dims *in, const int8_t *x,
                          const ef_dims *out, int8_t *y)
{
    return ef_nn_pool(p, 0, in, x, out, y);
}
