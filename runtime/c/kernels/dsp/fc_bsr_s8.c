/* FULLY_CONNECTED (and 1x1 stride-1 CONV2D) on block-sparse weights, Armv7E-M DSP version:
 * same symbol and bytes as ref/fc_bsr_s8.c, which it includes with these two hooks. Per
 * stored 4x4 block: one input word, SXTAB16 adds the offset to its even/odd lanes (shared by
 * the block's four rows), then two SMLAD per row. */
#include "ef_dsp.h"
#if EF_DSP_KERNELS

static inline void fc_bsr_row_dsp(int32_t acc[4], const int8_t *xr, const uint16_t *c,
                                  const int8_t *v, int32_t n, int32_t in_off)
{
    const uint32_t off2 = ef_dsp_dup16(in_off);
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    for (; n > 0; --n, v += 16) {   /* products < 2^15: exact for C_IN < 2^16 */
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
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/* ef_nn_requant_store_s8 with the DSP requantization; the short form wherever |acc| < 2^30 */
static inline void fc_bsr_store_dsp(const int32_t *acc, int32_t n, const int32_t *mult,
                                    const int32_t *shift, int32_t out_off, int32_t amin,
                                    int32_t amax, int single, int8_t *y)
{
    for (int32_t j = 0; j < n; ++j) {
        const int32_t a = acc[j];
        const int32_t v = (uint32_t)a + ((1u << 30) - 1u) < (1u << 31) - 1u
                              ? ef_dsp_requantize_small(single, a, mult[j], shift[j])
                              : ef_dsp_requantize(single, a, mult[j], shift[j]);
        y[j] = (int8_t)ef_nn_clamp(v + out_off, amin, amax);
    }
}

#define EF_FC_BSR_ROW fc_bsr_row_dsp
#define EF_FC_BSR_STORE fc_bsr_store_dsp
#endif /* EF_DSP_KERNELS; without them exactly the reference kernel */
#include "../ref/fc_bsr_s8.c"
