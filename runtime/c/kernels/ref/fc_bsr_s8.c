/* FULLY_CONNECTED int8 on block-sparse weights: only the nonzero 4x4 blocks of the
 * [C_OUT, C_IN] matrix are stored (edgeforge.codegen.c.block_sparse_fc), so all-zero blocks
 * cost neither flash nor multiplies. C_OUT % 4 rows: the last block row's padding rows
 * are stored as zeros and never written out. Same bytes as ef_fc_s8 on the dense matrix: a skipped
 * block adds exactly 0 to the accumulators. */
#include "ef_nn_support.h"

ef_status ef_fc_bsr_s8(const ef_fc_params *p, const ef_quant *q,
                       const ef_dims *in, const int8_t *x, const ef_dims *wd,
                       const uint16_t *bptr, const uint16_t *bcol, const int8_t *bval,
                       const int32_t *bias, const ef_dims *out, int8_t *y)
{
    if (!p || !q || !in || !x || !wd || !bptr || !bcol || !bval || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t depth = wd->c, oc = wd->n;
    const int32_t rows = depth > 0 ? ef_nn_numel(in) / depth : 0;
    if ((depth & 3) || ef_nn_numel(in) != rows * depth ||
        ef_nn_numel(out) != rows * oc) {
        return EF_ERR_ARG;
    }
    const int32_t in_off = p->in_offset;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * depth;
        for (int32_t ob = 0; 4 * ob < oc; ++ob) {
            const int32_t n = oc - 4 * ob < 4 ? oc - 4 * ob : 4;   /* last block row: C_OUT % 4 */
            int32_t acc[4] = {0, 0, 0, 0};
            for (int32_t j = 0; j < n; ++j) {
                acc[j] = bias ? bias[4 * ob + j] : 0;
            }
            for (int32_t k = bptr[ob]; k < bptr[ob + 1]; ++k) {
                const int8_t *xp = xr + bcol[k], *v = bval + 16 * k;
                for (int32_t j = 0; j < 4; ++j) {
                    for (int32_t i = 0; i < 4; ++i) {
                        acc[j] += ((int32_t)xp[i] + in_off) * (int32_t)v[4 * j + i];
                    }
                }
            }
            ef_nn_requant_store_s8(acc, n, q->mult + 4 * ob, q->shift + 4 * ob, p->out_offset,
                                   p->act.min, p->act.max, EF_FC_SINGLE_ROUNDING,
                                   y + r * oc + 4 * ob);
        }
    }
    return EF_OK;
}
