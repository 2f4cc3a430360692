/* SUM, REDUCE_MAX, REDUCE_MIN int8 over any subset of the NHWC dims (TFLite reduce.cc:
 * QuantizedMeanOrSum with compute_sum; ReduceGeneric max/min on the bytes). */
#include "ef_nn_support.h"

ef_status ef_sum_s8(const ef_mean_params *p, const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_SUM, EF_SUM_SINGLE_ROUNDING, in, x, out, y);
}

ef_status ef_reduce_max_s8(const ef_mean_params *p, const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_MAX, 0, in, x, out, y);
}

ef_status ef_reduce_min_s8(const ef_mean_params *p, const ef_dims *in, const int8_t *x,
                           const ef_dims *out, int8_t *y)
{
    return ef_nn_reduce(p, EF_NN_RED_MIN, 0, in, x, out, y);
}
