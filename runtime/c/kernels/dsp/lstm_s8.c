/* UNIDIRECTIONAL_SEQUENCE_LSTM int8, Armv7E-M DSP version: same symbol and bytes as
 * ref/lstm_s8.c, whose step it reuses; only the gates' dot products change. Two weight rows
 * share each input word (ef_dsp_dot2_s8, as dsp/fc_s8.c). */
#include "ef_dsp.h"
#if EF_DSP_KERNELS

/* ef_dsp_requantize for shift < 0 and double rounding in fewer instructions: v = SRDHM, then
 * with t = v - (v < 0), the half-away rounding (t + 2^(r-1)) >> r == ((t >> (r-1)) + 1) >> 1
 * (as EF_DSP_MQ_ONE; |v| < 2^31 - 1 so nothing overflows). Same bytes as ef_requantize_double. */
static inline int32_t lstm_dsp_rq(int32_t single, int32_t acc, int32_t mult, int32_t shift)
{
    if (single || shift >= 0) {
        return ef_dsp_requantize(single, acc, mult, shift);
    }
    const int32_t v = (int32_t)(((int64_t)acc * mult + ((int64_t)1 << 30)) >> 31);
    const int32_t t = v - (int32_t)((uint32_t)v >> 31);
    return ((t >> (-shift - 1)) + 1) >> 1;
}

#if defined(__ARM_FEATURE_DSP) && !defined(EF_DSP_EMULATE)
#define LSTM_SAT16(v) __ssat((v), 16)
#define LSTM_SAT18(v) __ssat((v), 18)
#else
#define LSTM_SAT16(v) ef_nn_clamp((v), -32768, 32767)
#define LSTM_SAT18(v) ef_nn_clamp((v), -131072, 131071)
#endif

/* one gate's Q3.12 pre-activation as ref lstm_gate, two cells per pass with no accumulator
 * rows: both dot products, requantize, saturate, add. LiteRT adds the recurrent term
 * unsaturated; saturating it to 18 bits first gives the same int16 sum. */
static void lstm_dsp_gate(const ef_lstm_params *p, int k, const int8_t *x, const int8_t *h,
                          int32_t *acc_x, int32_t *acc_h, int16_t *pre)
{
    (void)acc_x;
    (void)acc_h;
    const int32_t nf = p->n_input, nh = p->n_cell, litert = p->litert;
    const int32_t in_off = p->in_offset, h_off = p->h_offset;
    const uint32_t in2 = ef_dsp_dup16(in_off), h2 = ef_dsp_dup16(h_off);
    const int32_t im = p->in_mult[k], is = p->in_shift[k], rm = p->rec_mult[k];
    const int32_t rs = p->rec_shift[k], single = p->single;
    const int8_t *w = p->w[k], *r = p->r[k];
    const int32_t *b = p->b[k];
    for (int32_t j = 0; j < nh; j += 2) {
        const int pair = j + 1 < nh;
        const int8_t *w0 = w + j * nf, *w1 = pair ? w0 + nf : w0;
        const int8_t *r0 = r + j * nh, *r1 = pair ? r0 + nh : r0;
        int32_t x0 = b[j], x1 = pair ? b[j + 1] : 0, h0 = 0, h1 = 0;
        ef_dsp_dot2_s8(x, in2, in_off, w0, w1, nf, &x0, &x1);
        ef_dsp_dot2_s8(h, h2, h_off, r0, r1, nh, &h0, &h1);
        const int32_t a0 = LSTM_SAT16(lstm_dsp_rq(single, x0, im, is));
        const int32_t q0 = lstm_dsp_rq(single, h0, rm, rs);
        pre[j] = (int16_t)LSTM_SAT16(a0 + (litert ? LSTM_SAT18(q0) : LSTM_SAT16(q0)));
        if (pair) {
            const int32_t a1 = LSTM_SAT16(lstm_dsp_rq(single, x1, im, is));
            const int32_t q1 = lstm_dsp_rq(single, h1, rm, rs);
            pre[j + 1] = (int16_t)LSTM_SAT16(a1 + (litert ? LSTM_SAT18(q1) : LSTM_SAT16(q1)));
        }
    }
}

#define EF_LSTM_GATE lstm_dsp_gate
#define EF_LSTM_RQ lstm_dsp_rq
#endif /* EF_DSP_KERNELS */
#include "../ref/lstm_s8.c"   /* the step itself (no DSP extension: exactly the reference) */
