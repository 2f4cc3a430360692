/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 gates and cell state
 * ("8x8_16"), step for step as TFLM's lstm_eval (p->litert: LiteRT's EvalInteger8x8_16 where
 * it differs, see edgeforge/qparams_lstm.py). Gates in Q3.12, sigmoid / tanh into Q0.15
 * through the interpolated table p->table (TFLM) or gemmlowp int16 fixed point (LiteRT), the
 * cell state int16 at scale 2^p->cell_power. The states start from their reset
 * values p->h0 / p->c0 on every call; scratch holds them and the four gate rows. */
#include "ef_nn_support.h"

/* the gates' dot products (kernels/dsp/lstm_s8.c supplies an SMLAD one) */
#ifndef EF_LSTM_MATVEC
#define EF_LSTM_MATVEC ef_nn_matvec_s8
#endif

/* MultiplyByQuantizedMultiplier as the runtime was built (p->single: TFLITE_SINGLE_ROUNDING);
 * kernels/dsp/lstm_s8.c supplies an inline one */
#ifndef EF_LSTM_RQ
static int32_t lstm_rq(int32_t single, int32_t acc, int32_t mult, int32_t shift)
{
    return single ? ef_requantize_single(acc, mult, shift)
                     : ef_requantize_double(acc, mult, shift);
}
#define EF_LSTM_RQ lstm_rq
#endif

static int16_t lstm_sat16(int64_t v)
{
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

/* reference_integer_ops::Logistic(0, 0, ...) on a Q3.12 value */
static inline int16_t lstm_sigmoid(int32_t v, const uint16_t *t)
{
    const int32_t x = v * 3;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t uh = ax >> 9;
    uint32_t res;
    if (uh >= 255u) {
        res = 0x7FFFu << 10;
    } else {
        const uint32_t ua = t[uh], ub = t[uh + 1];
        res = (ua << 9) + (ax & 0x1FFu) * (ub - ua);
    }
    res = x >= 0 ? res + (1u << 9) : (1u << 25) - res + (1u << 9) - 1u;
    return (int16_t)(res >> 10);
}

/* reference_integer_ops::Tanh(mult, shift, ...), mult already 3 << left shift */
static inline int16_t lstm_tanh(int32_t v, int32_t mult, int32_t shift, const uint16_t *t)
{
    const int32_t rnd = shift > 0 ? (1 << (shift - 1)) : 0;
    const int32_t x = (v * mult + rnd) >> shift;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t uh = ax >> 8;
    int32_t res;
    if (uh >= 255u) {
        res = 0xFFFF << 8;
    } else {
        const uint32_t ua = t[uh], ub = t[uh + 1];
        res = (int32_t)((ua << 8) + (ax & 0xFFu) * (ub - ua));
    }
    res = x >= 0 ? res - (1 << 23) + (1 << 7) : -res + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(res >> 8);
}

/* LiteRT's gates: gemmlowp FixedPoint<int16_t, n> logistic / tanh (int16 raw values,
 * wrapping adds, int32 constants rescaled by RoundingDivideByPOT(c, 16)) */
static int32_t g_w16(int32_t x)
{
    return ((x + 32768) & 0xFFFF) - 32768;
}

static int32_t g_c16(int32_t v)
{
    return g_w16(ef_rdbp(v, 16));
}

static int32_t g_mul(int32_t a, int32_t b)
{
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    const int32_t ab = a * b;
    return g_w16((ab + (ab >= 0 ? (1 << 14) : 1 - (1 << 14))) / (1 << 15));
}

static int32_t g_pot(int32_t x, int32_t e)
{
    if (e > 0) {
        const int32_t thr = (1 << (15 - e)) - 1;
        return x > thr ? 32767 : (x < -thr ? -32768 : g_w16(x * (1 << e)));
    }
    return e < 0 ? ef_rdbp(x, -e) : x;
}

static int32_t g_half_sum(int32_t a, int32_t b)
{
    const int32_t s = a + b;
    return g_w16((s + (s >= 0 ? 1 : -1)) / 2);
}

static int32_t g_exp_neg(int32_t a, int32_t int_bits)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535, 720401, 242};
    const int32_t frac = 15 - int_bits, quarter = 1 << (frac - 2);
    const int32_t a_mod = g_w16((a & (quarter - 1)) - quarter);
    const int32_t x = g_w16(g_pot(a_mod, int_bits) + (1 << 12));
    const int32_t x2 = g_mul(x, x), x3 = g_mul(x2, x), x4 = g_mul(x2, x2);
    const int32_t t = g_pot(g_w16(g_mul(g_w16(g_pot(x4, -2) + x3), g_c16(715827883)) + x2), -1);
    const int32_t c = g_c16(1895147668);
    int32_t r = ef_nn_clamp(c + g_mul(c, g_w16(x + t)), -32768, 32767);
    const int32_t rem = g_w16(a_mod - a);
    for (int32_t e = -2; e <= 4; ++e) {
        if (int_bits > e && (rem & (1 << (frac + e)))) {
            r = g_mul(r, g_c16(barrel[e + 2]));
        }
    }
    return a == 0 ? 32767 : r;
}

static int32_t g_newton(int32_t half_den)
{
    int32_t x = g_w16(g_c16(1515870810) + g_mul(half_den, g_c16(-1010580540)));
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = g_w16((1 << 13) - g_mul(half_den, x));
        x = g_w16(x + g_pot(g_mul(x, one_minus), 2));
    }
    return x;
}

static int16_t g_sigmoid(int32_t a)
{
    if (a == 0) {
        return (int16_t)g_c16(1 << 30);
    }
    const int32_t abs_a = a > 0 ? a : g_w16(-a);
    const int32_t r = g_pot(g_newton(g_half_sum(g_exp_neg(g_w16(-abs_a), 3), 32767)), 1);
    return (int16_t)(a > 0 ? r : g_w16(32767 - r));
}

static int16_t g_tanh(int32_t a, int32_t int_bits)
{
    if (a == 0) {
        return 0;
    }
    const int32_t n = a < 0 ? a : g_w16(-a);
    const int32_t e = g_exp_neg(n, int_bits + 1);
    const int32_t t = g_pot(g_w16(g_newton(g_half_sum(e, 32767)) - (1 << 13)), 2);
    return (int16_t)(a < 0 ? g_w16(-t) : t);
}

#ifndef EF_LSTM_GATE
#define EF_LSTM_GATE lstm_gate

/* one gate's pre-activation for every cell, in Q3.12: input FC (with bias) + recurrent FC */
static void lstm_gate(const ef_lstm_params *p, int k, const int8_t *x, const int8_t *h,
                      int32_t *acc_x, int32_t *acc_h, int16_t *pre)
{
    const int32_t nf = p->n_input, nh = p->n_cell;
    for (int32_t j = 0; j < nh; ++j) {
        acc_x[j] = p->b[k][j];
        acc_h[j] = 0;
    }
    EF_LSTM_MATVEC(x, p->w[k], nf, nh, nf, p->in_offset, acc_x);
    EF_LSTM_MATVEC(h, p->r[k], nh, nh, nh, p->h_offset, acc_h);
    for (int32_t j = 0; j < nh; ++j) {
        const int16_t a = lstm_sat16(EF_LSTM_RQ(p->single, acc_x[j], p->in_mult[k], p->in_shift[k]));
        const int32_t rq = EF_LSTM_RQ(p->single, acc_h[j], p->rec_mult[k], p->rec_shift[k]);
        pre[j] = lstm_sat16((int64_t)a + (p->litert ? rq : lstm_sat16(rq)));
    }
}
#endif /* EF_LSTM_GATE (kernels/dsp/lstm_s8.c supplies a fused one) */

int32_t ef_lstm_s8_scratch_size(const ef_lstm_params *p)
{
    return p ? 3 * p->batches * p->n_cell + 16 * p->n_cell : 0;
}

ef_status ef_lstm_s8(const ef_lstm_params *p, void *scratch, const int8_t *x, int8_t *y)
{
    if (!p || !scratch || !x || !y || p->batches < 1 || p->n_cell < 1 || p->n_input < 1) {
        return EF_ERR_ARG;
    }
    const int32_t nb = p->batches, nt = p->steps, nf = p->n_input, nh = p->n_cell;
    int32_t *acc_x = (int32_t *)scratch, *acc_h = acc_x + nh;   /* [H] each */
    int16_t *cell = (int16_t *)(acc_h + nh);         /* [B, H] */
    int16_t *gi = cell + nb * nh, *gf = gi + nh, *gg = gf + nh, *go = gg + nh;
    int8_t *hid = (int8_t *)(go + nh);               /* [B, H], after the 4 gate rows */
    /* the cell update's constants in locals: the int8 stores below may alias *p */
    const int32_t litert = p->litert, single = p->single, cell_power = p->cell_power;
    const int32_t fc_mult = p->fc_mult, fc_shift = p->fc_shift, ig_mult = p->ig_mult;
    const int32_t ig_shift = p->ig_shift, h_mult = p->h_mult, h_shift = p->h_shift;
    const int32_t tanh_mult = p->tanh_mult, tanh_shift = p->tanh_shift, out_zp = p->out_zp;
    const int32_t clip = p->cell_clip;
    const uint16_t *table = p->table;
    for (int32_t i = 0; i < nb * nh; ++i) {
        cell[i] = p->c0[i];
        hid[i] = p->h0[i];
    }
    for (int32_t t = 0; t < nt; ++t) {
        for (int32_t b = 0; b < nb; ++b) {
            const int32_t row = p->time_major ? t * nb + b : b * nt + t;
            const int8_t *xt = x + row * nf;
            int8_t *h = hid + b * nh;
            int16_t *c = cell + b * nh;
            EF_LSTM_GATE(p, 0, xt, h, acc_x, acc_h, gi);     /* every gate reads the old h */
            EF_LSTM_GATE(p, 1, xt, h, acc_x, acc_h, gf);
            EF_LSTM_GATE(p, 2, xt, h, acc_x, acc_h, gg);
            EF_LSTM_GATE(p, 3, xt, h, acc_x, acc_h, go);
            int8_t *yt = y + row * nh;
            for (int32_t j = 0; j < nh; ++j) {       /* activations, then the cell update */
                int32_t ai, af, ag, ao;
                if (litert) {
                    ai = g_sigmoid(gi[j]);
                    af = g_sigmoid(gf[j]);
                    ag = g_tanh(gg[j], 3);
                    ao = g_sigmoid(go[j]);
                } else {
                    ai = lstm_sigmoid(gi[j], table);
                    af = lstm_sigmoid(gf[j], table);
                    ag = lstm_tanh(gg[j], 3, 0, table);
                    ao = lstm_sigmoid(go[j], table);
                }
                const int32_t fc = af * c[j], ig = ai * ag;
                const int32_t a = litert ? ef_rdbp(fc, 15) : EF_LSTM_RQ(single, fc, fc_mult, fc_shift);
                const int32_t d = litert ? ef_rdbp(ig, 30 + cell_power)
                                         : EF_LSTM_RQ(single, ig, ig_mult, ig_shift);
                int16_t cj = lstm_sat16((int64_t)lstm_sat16(a) + lstm_sat16(d));
                if (clip > 0) {
                    cj = (int16_t)ef_nn_clamp(cj, -clip, clip);
                }
                c[j] = cj;
                /* LiteRT: tanh in Q(15 + cell_power); below Q0 it has none and its buffer
                 * keeps the input gate */
                const int32_t th = !litert ? lstm_tanh(cj, tanh_mult, tanh_shift, table)
                                   : cell_power >= -15 ? g_tanh(cj, 15 + cell_power) : ai;
                const int32_t hv = EF_LSTM_RQ(single, ao * th, h_mult, h_shift) + out_zp;
                yt[j] = (int8_t)ef_nn_clamp(hv, -128, 127);
            }
            for (int32_t j = 0; j < nh; ++j) {
                h[j] = yt[j];
            }
        }
    }
    return EF_OK;
}
