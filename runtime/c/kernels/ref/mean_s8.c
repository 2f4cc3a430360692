/* MEAN int8 over any subset of the NHWC dims (TFLite reference_ops::QuantizedMeanOrSum in its
 * integer form: 1/count is folded into (mult, shift) on the host). */
#include "ef_nn_support.h"

ef_status ef_mean_s8(const ef_mean_params *p,
                     const ef_dims *in, const int8_t *x,
                     const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_SUM, EF_MEAN_SINGLE_ROUNDING, in, x, out, y);
}
