/* 16x8 reference kernels (int16 activations, zero point 0; int8 weights; int64 bias):
 * TFLite's reference_integer_ops int16 paths, bit-exact with TFLM and LiteRT and with
 * edgeforge.runtime.reference's REFERENCE_S16 (params from sdk/qparams16.py). */
#include "ef_nn_s16.h"

ef_status ef_conv2d_s16(const ef_conv_s16_params *p, const ef_quant *q,
                        const ef_dims *in, const int16_t *x,
                        const ef_dims *wd, const int8_t *w, const int64_t *bias,
                        const ef_dims *out, int16_t *y)
{
    if (!ef_nn_s16_conv_ok(p, q, in, x, wd, w, out, y)) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, ic = in->c, kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, oc = out->c;
    /* |x * w| <= 2^15 * 2^7: the int64 accumulator cannot overflow for any real layer */
    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t iy0 = oy * p->stride.h - p->pad.h;
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                for (int32_t o = 0; o < oc; ++o) {
                    int64_t acc = 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + p->dilation.h * ky;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ix0 + p->dilation.w * kx;
                            if (ix < 0 || ix >= iw) {
                                continue;
                            }
                            const int16_t *xp = x + ((b * ih + iy) * iw + ix) * ic;
                            const int8_t *wp = w + ((o * kh + ky) * kw + kx) * ic;
                            for (int32_t c = 0; c < ic; ++c) {
                                acc += (int32_t)xp[c] * wp[c];
                            }
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * oc + o] = ef_nn_s16_out(
                        acc, bias, o, p->acc32, EF_CONV2D_SINGLE_ROUNDING, q, &p->act);
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_dwconv2d_s16(const ef_dw_s16_params *p, const ef_quant *q,
                          const ef_dims *in, const int16_t *x,
                          const ef_dims *wd, const int8_t *w, const int64_t *bias,
                          const ef_dims *out, int16_t *y)
{
    if (!ef_nn_s16_dw_ok(p, q, in, x, wd, w, out, y)) {
        return EF_ERR_ARG;
    }
    const int32_t mult = p->depth_multiplier;
    const int32_t ih = in->h, iw = in->w, ic = in->c, kh = wd->h, kw = wd->w;
    const int32_t oh = out->h, ow = out->w, oc = out->c;
    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < oh; ++oy) {
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t iy0 = oy * p->stride.h - p->pad.h;
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                for (int32_t o = 0; o < oc; ++o) {
                    const int32_t c = o / mult;
                    int64_t acc = 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + p->dilation.h * ky;
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ix0 + p->dilation.w * kx;
                            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
                                continue;
                            }
                            acc += (int32_t)x[((b * ih + iy) * iw + ix) * ic + c]
                                   * w[(ky * kw + kx) * oc + o];
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * oc + o] = ef_nn_s16_out(
                        acc, bias, o, p->acc32, EF_DWCONV2D_SINGLE_ROUNDING, q, &p->act);
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_fc_s16(const ef_fc_s16_params *p, const ef_quant *q,
                    const ef_dims *in, const int16_t *x,
                    const ef_dims *wd, const int8_t *w, const int64_t *bias,
                    const ef_dims *out, int16_t *y)
{
    const int32_t rows = ef_nn_s16_fc_rows(p, q, in, x, wd, w, out, y);
    if (rows < 0) {
        return EF_ERR_ARG;
    }
    const int32_t cin = wd->c, cout = wd->n;
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t o = 0; o < cout; ++o) {
            int64_t acc = 0;
            for (int32_t c = 0; c < cin; ++c) {
                acc += (int32_t)x[r * cin + c] * w[o * cin + c];
            }
            y[r * cout + o] = ef_nn_s16_out(acc, bias, o, p->acc32, EF_FC_SINGLE_ROUNDING, q,
                                            &p->act);
        }
    }
    return EF_OK;
}

static ef_status pool_s16(const ef_pool_params *p, const ef_dims *in, const int16_t *x,
                          const ef_dims *out, int16_t *y, int is_max)
{
    if (!p || !in || !x || !out || !y || in->c != out->c || in->n != out->n) {
        return EF_ERR_ARG;
    }
    const int32_t ih = in->h, iw = in->w, c = in->c;
    for (int32_t b = 0; b < in->n; ++b) {
        for (int32_t oy = 0; oy < out->h; ++oy) {
            for (int32_t ox = 0; ox < out->w; ++ox) {
                const int32_t iy0 = oy * p->stride.h - p->pad.h;
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                for (int32_t ch = 0; ch < c; ++ch) {
                    int32_t acc = is_max ? -32769 : 0, count = 0;
                    for (int32_t ky = 0; ky < p->kernel.h; ++ky) {
                        for (int32_t kx = 0; kx < p->kernel.w; ++kx) {
                            const int32_t iy = iy0 + ky, ix = ix0 + kx;
                            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
                                continue;
                            }
                            const int32_t v = x[((b * ih + iy) * iw + ix) * c + ch];
                            acc = is_max ? (v > acc ? v : acc) : acc + v;
                            ++count;
                        }
                    }
                    if (!is_max && count > 0) {     /* divide rounding half away from zero */
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    y[((b * out->h + oy) * out->w + ox) * c + ch] =
                        (int16_t)ef_nn_clamp(acc, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_avgpool2d_s16(const ef_pool_params *p, const ef_dims *in, const int16_t *x,
                           const ef_dims *out, int16_t *y)
{
    return pool_s16(p, in, x, out, y, 0);
}

ef_status ef_maxpool2d_s16(const ef_pool_params *p, const ef_dims *in, const int16_t *x,
                           const ef_dims *out, int16_t *y)
{
    return pool_s16(p, in, x, out, y, 1);
}

ef_status ef_mean_s16(const ef_mean_params *p, const ef_dims *in, const int16_t *x,
                      const ef_dims *out, int16_t *y)
{
    if (!p || !in || !x || !out || !y) {
        return EF_ERR_ARG;
    }
    int32_t od[4], rd[4], st[4];
    if (ef_nn_reduce_geometry(p->reduce, in, out, od, rd, st) <= 0) {
        return EF_ERR_ARG;
    }
    for (int32_t a = 0; a < od[0]; ++a) {
        for (int32_t b = 0; b < od[1]; ++b) {
            for (int32_t c = 0; c < od[2]; ++c) {
                for (int32_t d = 0; d < od[3]; ++d) {
                    const int16_t *base = x + a * st[0] + b * st[1] + c * st[2] + d * st[3];
                    /* int32 sum, as TFLite's temp_sum: exact below 2^16 elements */
                    int32_t sum = 0;
                    for (int32_t i = 0; i < rd[0]; ++i) {
                        for (int32_t j = 0; j < rd[1]; ++j) {
                            for (int32_t k = 0; k < rd[2]; ++k) {
                                const int16_t *xp = base + i * st[0] + j * st[1] + k * st[2];
                                for (int32_t l = 0; l < rd[3]; ++l) {
                                    sum += xp[l];
                                }
                            }
                        }
                    }
                    const int32_t v = EF_REQUANTIZE_AS(EF_MEAN_SINGLE_ROUNDING, sum, p->mult,
                                                       p->shift);
                    *y++ = (int16_t)ef_nn_clamp(v, p->act.min, p->act.max);
                }
            }
        }
    }
    return EF_OK;
}

/* the broadcast walk shared by ADD / SUB / MUL: op 0 add, 1 sub, 2 mul */
static ef_status binary_s16(const ef_add_params *pa, const ef_mul_params *pm,
                            const ef_dims *in1, const int16_t *x1,
                            const ef_dims *in2, const int16_t *x2,
                            const ef_dims *out, int16_t *y, int op)
{
    int32_t s1[4], s2[4];
    if (!in1 || !x1 || !in2 || !x2 || !out || !y || !ef_nn_bcast_strides(in1, out, s1)
        || !ef_nn_bcast_strides(in2, out, s2)) {
        return EF_ERR_ARG;
    }
    for (int32_t a = 0; a < out->n; ++a) {
        for (int32_t b = 0; b < out->h; ++b) {
            for (int32_t c = 0; c < out->w; ++c) {
                for (int32_t d = 0; d < out->c; ++d) {
                    const int32_t v1 = x1[a * s1[0] + b * s1[1] + c * s1[2] + d * s1[3]];
                    const int32_t v2 = x2[a * s2[0] + b * s2[1] + c * s2[2] + d * s2[3]];
                    int32_t v;
                    if (op == 2) {
                        v = EF_REQUANTIZE_AS(EF_MUL_SINGLE_ROUNDING, v1 * v2, pm->out_mult,
                                             pm->out_shift);
                        v = ef_nn_clamp(v, pm->act.min, pm->act.max);
                    } else {
                        const int32_t single = op ? EF_SUB_SINGLE_ROUNDING
                                                  : EF_ADD_SINGLE_ROUNDING;
                        const int32_t r1 = EF_REQUANTIZE_AS(single, v1 * (1 << pa->left_shift),
                                                            pa->in1_mult, pa->in1_shift);
                        const int32_t r2 = EF_REQUANTIZE_AS(single, v2 * (1 << pa->left_shift),
                                                            pa->in2_mult, pa->in2_shift);
                        v = EF_REQUANTIZE_AS(single, op ? r1 - r2 : r1 + r2, pa->out_mult,
                                             pa->out_shift);
                        v = ef_nn_clamp(v, pa->act.min, pa->act.max);
                    }
                    *y++ = (int16_t)v;
                }
            }
        }
    }
    return EF_OK;
}

ef_status ef_add_s16(const ef_add_params *p, const ef_dims *in1, const int16_t *x1,
                     const ef_dims *in2, const int16_t *x2, const ef_dims *out, int16_t *y)
{
    return p ? binary_s16(p, 0, in1, x1, in2, x2, out, y, 0) : EF_ERR_ARG;
}

ef_status ef_sub_s16(const ef_add_params *p, const ef_dims *in1, const int16_t *x1,
                     const ef_dims *in2, const int16_t *x2, const ef_dims *out, int16_t *y)
{
    return p ? binary_s16(p, 0, in1, x1, in2, x2, out, y, 1) : EF_ERR_ARG;
}

ef_status ef_mul_s16(const ef_mul_params *p, const ef_dims *in1, const int16_t *x1,
                     const ef_dims *in2, const int16_t *x2, const ef_dims *out, int16_t *y)
{
    return p ? binary_s16(0, p, in1, x1, in2, x2, out, y, 2) : EF_ERR_ARG;
}

/* sigmoid(i / 24) in Q0.16 (sdk/qparams16.py SIGMOID_TABLE_U16, measured from LiteRT) */
static const uint16_t sigmoid_u16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535
};

static int32_t sigmoid_input(const ef_sigmoid_s16_params *p, int32_t v)
{
    const int32_t mult = p->mult ? p->mult : 3 << p->left_shift;
    const int32_t shift = p->mult ? p->left_shift : 0;
    const int32_t rnd = shift > 0 ? 1 << (shift - 1) : 0;
    return (v * mult + rnd) >> shift;
}

ef_status ef_logistic_s16(const ef_sigmoid_s16_params *p, const ef_dims *in, const int16_t *x,
                          const ef_dims *out, int16_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    const int32_t n = ef_nn_numel(in);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t v = sigmoid_input(p, x[i]);
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t uh = a >> 9;
        uint32_t r;
        if (uh >= 255) {
            r = 0x7FFFu << 10;
        } else {
            const uint32_t ua = sigmoid_u16[uh], ub = sigmoid_u16[uh + 1];
            r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
        }
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        y[i] = (int16_t)(r >> 10);
    }
    return EF_OK;
}

ef_status ef_tanh_s16(const ef_sigmoid_s16_params *p, const ef_dims *in, const int16_t *x,
                      const ef_dims *out, int16_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {
        return EF_ERR_ARG;
    }
    const int32_t n = ef_nn_numel(in);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t v = sigmoid_input(p, x[i]);
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t uh = a >> 8;
        int32_t r;
        if (uh >= 255) {
            r = 0xFFFF << 8;
        } else {
            const uint32_t ua = sigmoid_u16[uh], ub = sigmoid_u16[uh + 1];
            r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
        }
        r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
        y[i] = (int16_t)(r >> 8);
    }
    return EF_OK;
}

/* LUTLookup(int16_t, const int16_t *): 9 bits index, 7 bits interpolate */
static int16_t lut16(int32_t v, const int16_t *lut)
{
    const int32_t idx = 256 + (v >> 7);
    const int16_t base = lut[idx];
    const int16_t slope = (int16_t)(lut[idx + 1] - base);
    return (int16_t)(base + ((slope * (v & 0x7F) + 64) >> 7));
}

static int32_t clz32(uint32_t v)
{
    int32_t n = 0;
    while (n < 32 && !(v & 0x80000000u)) {
        v <<= 1;
        ++n;
    }
    return n;
}

ef_status ef_softmax_s16(const ef_softmax_s16_params *p, const ef_dims *in, const int16_t *x,
                         const ef_dims *out, int16_t *y)
{
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out) || in->c < 1) {
        return EF_ERR_ARG;
    }
    const int32_t depth = in->c, rows = ef_nn_numel(in) / depth;
    for (int32_t r = 0; r < rows; ++r) {
        const int16_t *xr = x + r * depth;
        int16_t *yr = y + r * depth;            /* exps are cached in the output row */
        int32_t mx = -32768;
        for (int32_t c = 0; c < depth; ++c) {
            mx = xr[c] > mx ? xr[c] : mx;
        }
        int32_t sum = 0;                        /* Q16.15 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t d = EF_REQUANTIZE_AS(EF_SOFTMAX_SINGLE_ROUNDING, xr[c] - mx,
                                               p->in_mult, p->in_shift);
            yr[c] = lut16(ef_nn_clamp(d + 32767, -32768, 32767), p->exp_lut);
            sum += yr[c];
        }
        const int32_t h = clz32((uint32_t)sum);
        const int32_t shifted = (int32_t)((((int64_t)sum << (h - 1)) + (1 << 13)) >> 14);
        const int16_t recip = lut16(ef_nn_clamp(shifted - ((1 << 15) + (1 << 16)), -32768,
                                                32767), p->recip_lut);
        const int32_t right = 31 - h;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t v = (int32_t)(((int64_t)yr[c] * recip + ((int64_t)1 << (right - 1)))
                                        >> right);
            yr[c] = (int16_t)ef_nn_clamp(v, 0, 32767);
        }
    }
    return EF_OK;
}

static int32_t requant1(const ef_requant_params *p, int32_t v)
{
    const int32_t r = EF_REQUANTIZE_AS(EF_QUANTIZE_SINGLE_ROUNDING, v + p->in_offset, p->mult,
                                       p->shift) + p->out_offset;
    return ef_nn_clamp(r, p->act.min, p->act.max);
}

/* the three QUANTIZE directions differ only in their element types */
#define EF_QUANTIZE_BODY(TOUT)                                                          \
    if (!p || !in || !x || !out || !y || ef_nn_numel(in) != ef_nn_numel(out)) {          \
        return EF_ERR_ARG;                                                              \
    }                                                                                   \
    for (int32_t i = 0; i < ef_nn_numel(in); ++i) {                                     \
        y[i] = (TOUT)requant1(p, x[i]);                                                 \
    }                                                                                   \
    return EF_OK;

ef_status ef_quantize_s8_s16(const ef_requant_params *p, const ef_dims *in, const int8_t *x,
                             const ef_dims *out, int16_t *y)
{
    EF_QUANTIZE_BODY(int16_t)
}

ef_status ef_quantize_s16_s8(const ef_requant_params *p, const ef_dims *in, const int16_t *x,
                             const ef_dims *out, int8_t *y)
{
    EF_QUANTIZE_BODY(int8_t)
}

ef_status ef_quantize_s16(const ef_requant_params *p, const ef_dims *in, const int16_t *x,
                          const ef_dims *out, int16_t *y)
{
    EF_QUANTIZE_BODY(int16_t)
}

#undef EF_QUANTIZE_BODY
