/* BATCH_MATMUL int8 (TFLite reference_ops::BatchMatMul): x1 [B0, B1, M, K] times
 * x2 [B0, B1, K, N], batch dims broadcasting, one requantization per output. */
#include "ef_nn_support.h"

ef_status ef_matmul_s8(const ef_mul_params *p,
                       const ef_dims *in1, const int8_t *x1,
                       const ef_dims *in2, const int8_t *x2,
                       const ef_dims *out, int8_t *y)
{
    if (!p || !in1 || !x1 || !in2 || !x2 || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t m = in1->w, k = in1->c, n = in2->c;
    if (in2->w != k || out->w != m || out->c != n ||
        (in1->n != out->n && in1->n != 1) || (in2->n != out->n && in2->n != 1) ||
        (in1->h != out->h && in1->h != 1) || (in2->h != out->h && in2->h != 1)) {
        return EF_ERR_ARG;
    }
    for (int32_t b0 = 0; b0 < out->n; ++b0) {
        for (int32_t b1 = 0; b1 < out->h; ++b1) {
            const int8_t *a = x1 + ((in1->n == 1 ? 0 : b0) * in1->h
                                    + (in1->h == 1 ? 0 : b1)) * m * k;
            const int8_t *b = x2 + ((in2->n == 1 ? 0 : b0) * in2->h
                                    + (in2->h == 1 ? 0 : b1)) * k * n;
            for (int32_t i = 0; i < m; ++i) {
                for (int32_t j = 0; j < n; ++j) {
                    int32_t acc = 0;
                    for (int32_t t = 0; t < k; ++t) {
                        acc += ((int32_t)a[i * k + t] + p->in1_offset)
                               * ((int32_t)b[t * n + j] + p->in2_offset);
                    }
                    const int32_t v = EF_REQUANTIZE_AS(EF_MATMUL_SINGLE_ROUNDING, acc,
                                                       p->out_mult, p->out_shift)
                                      + p->out_offset;
                    *y++ = (int8_t)ef_nn_clamp(v, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}
