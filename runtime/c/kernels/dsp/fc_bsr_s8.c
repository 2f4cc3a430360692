/* FULLY_CONNECTED on block-sparse weights, Armv7E-M DSP version: same symbol and bytes as
 * ref/fc_bsr_s8.c. Per stored 4x4 block: one input word, SXTAB16 adds the offset to its
 * even/odd lanes (shared by the block's four rows), then two SMLAD per row. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/fc_bsr_s8.c"   /* no DSP extension: exactly the reference kernel */
#else

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
    const uint32_t off2 = ef_dsp_dup16(p->in_offset);
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * depth;
        int8_t *yr = y + r * oc;
        const int8_t *v = bval;
        const uint16_t *c = bcol;
        for (int32_t ob = 0; 4 * ob < oc; ++ob) {
            const int32_t o = 4 * ob, n_o = oc - o < 4 ? oc - o : 4;
            /* products < 2^15: exact for C_IN < 2^16; rows past C_OUT are zero padding */
            int32_t s0 = bias ? bias[o] : 0, s1 = bias && n_o > 1 ? bias[o + 1] : 0;
            int32_t s2 = bias && n_o > 2 ? bias[o + 2] : 0, s3 = bias && n_o > 3 ? bias[o + 3] : 0;
            for (int32_t n = bptr[ob + 1] - bptr[ob]; n > 0; --n, v += 16) {
                const uint32_t xv = ef_dsp_ld32(xr + *c++);
                const uint32_t xe = ef_dsp_sxtab16(off2, xv);
                const uint32_t xo = ef_dsp_sxtab16_ror8(off2, xv);
                const uint32_t v0 = ef_dsp_ld32(v), v1 = ef_dsp_ld32(v + 4);
                const uint32_t v2 = ef_dsp_ld32(v + 8), v3 = ef_dsp_ld32(v + 12);
                s0 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v0), s0);
                s0 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v0), s0);
                s1 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v1), s1);
                s1 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v1), s1);
                s2 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v2), s2);
                s2 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v2), s2);
                s3 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v3), s3);
                s3 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v3), s3);
            }
            const int32_t acc[4] = {s0, s1, s2, s3};
            for (int32_t j = 0; j < n_o; ++j) {
                const int32_t t = ef_dsp_requantize(EF_FC_SINGLE_ROUNDING, acc[j],
                                                    q->mult[o + j], q->shift[o + j]);
                yr[o + j] = (int8_t)ef_nn_clamp(t + p->out_offset, p->act.min, p->act.max);
            }
        }
    }
    return EF_OK;
}

#endif /* EF_DSP_KERNELS */
