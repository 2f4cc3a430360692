/* UNIDIRECTIONAL_SEQUENCE_LSTM int8, Armv7E-M DSP version: same symbol and bytes as
 * ref/lstm_s8.c, whose step it reuses; only the gates' dot products change. Two weight rows
 * share each input word: SXTAB16 adds the offset, SMLAD does 2 MACs (as dsp/fc_s8.c). */
#include "ef_dsp.h"
#if EF_DSP_KERNELS

/* acc[o] += sum_i (x[i] + off) * w[o * w_stride + i], o < rows, i < n (products < 2^15) */
static inline void lstm_dsp_matvec(const int8_t *x, const int8_t *w, int32_t w_stride,
                                   int32_t rows, int32_t n, int32_t off, int32_t *acc)
{
    const uint32_t off2 = ef_dsp_dup16(off);
    const int32_t n4 = n & ~3;
    for (int32_t o = 0; o < rows; o += 2) {
        const int pair = o + 1 < rows;
        const int8_t *w0 = w + o * w_stride, *w1 = pair ? w0 + w_stride : w0;
        int32_t s0 = 0, s1 = 0, i = 0;
        for (; i < n4; i += 4) {
            const uint32_t xv = ef_dsp_ld32(x + i);
            const uint32_t xe = ef_dsp_sxtab16(off2, xv);
            const uint32_t xo = ef_dsp_sxtab16_ror8(off2, xv);
            const uint32_t v0 = ef_dsp_ld32(w0 + i), v1 = ef_dsp_ld32(w1 + i);
            s0 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v0), s0);
            s0 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v0), s0);
            s1 = ef_dsp_smlad(xe, ef_dsp_sxtb16(v1), s1);
            s1 = ef_dsp_smlad(xo, ef_dsp_sxtb16_ror8(v1), s1);
        }
        for (; i < n; ++i) {
            const int32_t xv = (int32_t)x[i] + off;
            s0 += xv * (int32_t)w0[i];
            s1 += xv * (int32_t)w1[i];
        }
        acc[o] += s0;
        if (pair) {
            acc[o + 1] += s1;
        }
    }
}

#define EF_LSTM_MATVEC lstm_dsp_matvec
#endif /* EF_DSP_KERNELS */
#include "../ref/lstm_s8.c"   /* the step itself (no DSP extension: exactly the reference) */
