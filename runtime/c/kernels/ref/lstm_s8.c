/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 gates and cell state
 * ("8x8_16"), step for step as TFLM's lstm_eval (p->litert: LiteRT's EvalInteger8x8_16 where
 * it differs). Gates in Q3.12, sigmoid / tanh through the interpolated table p->table into
 * Q0.15, the cell state int16 at scale 2^p->cell_power. The states start from their reset
 * values p->h0 / p->c0 on every call; scratch holds them and the four gate rows. */
#include "ef_nn_support.h"

static int16_t lstm_sat16(int64_t v)
{
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

/* reference_integer_ops::Logistic(0, 0, ...) on a Q3.12 value */
static int16_t lstm_sigmoid(int32_t v, const uint16_t *t)
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
static int16_t lstm_tanh(int32_t v, int32_t mult, int32_t shift, const uint16_t *t)
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

/* one gate's pre-activation for cell j: input FC (with bias) + recurrent FC, in Q3.12 */
static int16_t lstm_gate(const ef_lstm_params *p, int k, int32_t j, const int8_t *x,
                         const int8_t *h)
{
    const int32_t nf = p->n_input, nh = p->n_cell;
    const int8_t *w = p->w[k] + j * nf, *r = p->r[k] + j * nh;
    int32_t acc = p->b[k][j];
    for (int32_t f = 0; f < nf; ++f) {
        acc += (x[f] + p->in_offset) * w[f];
    }
    int32_t racc = 0;
    for (int32_t i = 0; i < nh; ++i) {
        racc += (h[i] + p->h_offset) * r[i];
    }
    const int16_t a = lstm_sat16(ef_requantize_double(acc, p->in_mult[k], p->in_shift[k]));
    const int32_t rq = ef_requantize_double(racc, p->rec_mult[k], p->rec_shift[k]);
    return lstm_sat16((int64_t)a + (p->litert ? rq : lstm_sat16(rq)));
}

int32_t ef_lstm_s8_scratch_size(const ef_lstm_params *p)
{
    return p ? 3 * p->batches * p->n_cell + 8 * p->n_cell : 0;
}

ef_status ef_lstm_s8(const ef_lstm_params *p, void *scratch, const int8_t *x, int8_t *y)
{
    if (!p || !scratch || !x || !y || p->batches < 1 || p->n_cell < 1 || p->n_input < 1) {
        return EF_ERR_ARG;
    }
    const int32_t nb = p->batches, nt = p->steps, nf = p->n_input, nh = p->n_cell;
    int16_t *cell = (int16_t *)scratch;              /* [B, H] */
    int16_t *gi = cell + nb * nh, *gf = gi + nh, *gg = gf + nh, *go = gg + nh;
    int8_t *hid = (int8_t *)(go + nh);               /* [B, H], after the 4 gate rows */
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
            for (int32_t j = 0; j < nh; ++j) {      /* every gate reads the old h */
                gi[j] = lstm_sigmoid(lstm_gate(p, 0, j, xt, h), p->table);
                gf[j] = lstm_sigmoid(lstm_gate(p, 1, j, xt, h), p->table);
                gg[j] = lstm_tanh(lstm_gate(p, 2, j, xt, h), 3, 0, p->table);
                go[j] = lstm_sigmoid(lstm_gate(p, 3, j, xt, h), p->table);
            }
            int8_t *yt = y + row * nh;
            for (int32_t j = 0; j < nh; ++j) {
                const int32_t fc = (int32_t)gf[j] * c[j], ig = (int32_t)gi[j] * gg[j];
                const int32_t a = p->litert ? ef_rdbp(fc, 15)
                                            : ef_requantize_double(fc, p->fc_mult, p->fc_shift);
                const int32_t d = p->litert ? ef_rdbp(ig, 30 + p->cell_power)
                                            : ef_requantize_double(ig, p->ig_mult, p->ig_shift);
                int16_t cj = lstm_sat16((int64_t)lstm_sat16(a) + lstm_sat16(d));
                if (p->cell_clip > 0) {
                    cj = (int16_t)ef_nn_clamp(cj, -p->cell_clip, p->cell_clip);
                }
                c[j] = cj;
                const int16_t th = lstm_tanh(cj, p->tanh_mult, p->tanh_shift, p->table);
                const int32_t hv = ef_requantize_double((int32_t)go[j] * th, p->h_mult,
                                                        p->h_shift) + p->out_zp;
                yt[j] = (int8_t)ef_nn_clamp(hv, -128, 127);
            }
            for (int32_t j = 0; j < nh; ++j) {
                h[j] = yt[j];
            }
        }
    }
    return EF_OK;
}
