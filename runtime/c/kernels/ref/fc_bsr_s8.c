/* FULLY_CONNECTED int8 on block-sparse weights: only the nonzero 4x4 blocks of the
 * [C_OUT, C_IN] matrix are stored (edgeforge.codegen.c.block_sparse_fc), so all-zero blocks
 * cost neither flash nor multiplies. C_OUT % 4 rows: the last block row's padding rows
 * are stored as zeros and never written out. Same bytes as ef_fc_s8 on the dense matrix: a skipped
 * block adds exactly 0 to the accumulators. A 1x1 stride-1 unpadded CONV2D calls it too: its
 * pixels are the rows (each read before its output is written).
 * kernels/dsp/fc_bsr_s8.c supplies its own block-row sums (EF_FC_BSR_ROW) and output stage
 * (EF_FC_BSR_STORE), then includes this file for the rest. */
#include "ef_nn_support.h"

#ifndef EF_FC_BSR_ROW
/* acc[j] += sum_i (xr[c[k] + i] + in_off) * v[16 k + 4 j + i] over the block row's n stored
 * blocks k (products < 2^15: exact for C_IN < 2^16) */
static inline void fc_bsr_row(int32_t acc[4], const int8_t *xr, const uint16_t *c,
                              const int8_t *v, int32_t n, int32_t in_off)
{
    for (; n > 0; --n, ++c, v += 16) {
        const int8_t *xp = xr + *c;
        for (int32_t j = 0; j < 4; ++j) {
            for (int32_t i = 0; i < 4; ++i) {
                acc[j] += ((int32_t)xp[i] + in_off) * (int32_t)v[4 * j + i];
            }
        }
    }
}
#define EF_FC_BSR_ROW fc_bsr_row
#define EF_FC_BSR_STORE ef_nn_requant_store_s8
#endif

ef_status ef_fc_bsr_s8(const ef_fc_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x, const ef_dims *wd,
                       const uint16_t *bptr, const uint16_t *bcol, const int8_t *bval,
                       const int32_t *bias, const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !bptr || !bcol || !bval || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n, rows = ef_nn_fc_rows(in, wd, out);
    if (rows < 0 || (depth & 3)) {
        return EF_ERR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {     /* row (pixel) r is read before it is written */
        for (int32_t ob = 0; 4 * ob < oc; ++ob) {
            const int32_t o = 4 * ob, n = oc - o < 4 ? oc - o : 4;   /* last block row: C_OUT % 4 */
            int32_t acc[4] = {0, 0, 0, 0};
            for (int32_t j = 0; j < n; ++j) {
                acc[j] = bias ? bias[o + j] : 0;
            }
            const int32_t k = bptr[ob];
            EF_FC_BSR_ROW(acc, x + r * depth, bcol + k, bval + 16 * k, bptr[ob + 1] - k,
                          p->in_offset);
            EF_FC_BSR_STORE(acc, n, q->mult + o, q->shift + o, p->out_offset, p->act.min,
                            p->act.max, EF_FC_SINGLE_ROUNDING, y + r * oc + o);
        }
    }
    return EF_OK;
}
