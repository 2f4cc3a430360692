/* ADD and SUB int8, DSP-build version: same symbols and bytes as ref/add_s8.c.
 * An int8 input has only 256 values, so each input's rescale to the common scale
 * (offset, << left_shift, requantize) is tabulated once per call; an element then costs two
 * table loads, one add and the output requantization. Broadcasts and short tensors take the
 * reference loops. */
#include "ef_dsp.h"

#define ef_add_s8 ef_add_ref_s8
#define ef_sub_s8 ef_sub_ref_s8
#include "../ref/add_s8.c"
#undef ef_add_s8
#undef ef_sub_s8

/* below this many elements the two 256-entry tables cost more than they save */
#define EF_DSP_ADD_MIN 512

static inline void ef_dsp_add_table(int32_t *t, int32_t off, int32_t left, int32_t mult,
                                    int32_t shift, int32_t sign, int single)
{
    for (int32_t v = -128; v < 128; ++v) {
        const int32_t a = (int32_t)((uint32_t)(v + off) << left);
        t[v + 128] = sign * ef_dsp_requantize(single, a, mult, shift);
    }
}

static ef_status ef_dsp_addsub(const ef_add_params *p, int32_t sign, int single,
                               const ef_dims *in1, const int8_t *x1,
                               const ef_dims *in2, const int8_t *x2,
                               const ef_dims *out, int8_t *y)
{
    int32_t t1[256], t2[256];
    ef_dsp_add_table(t1, p->in1_offset, p->left_shift, p->in1_mult, p->in1_shift, 1, single);
    ef_dsp_add_table(t2, p->in2_offset, p->left_shift, p->in2_mult, p->in2_shift, sign, single);
    const int32_t n = ef_nn_numel(out), om = p->out_mult, os = p->out_shift;
    const int32_t off = p->out_offset, amin = p->act.min, amax = p->act.max;
    (void)in1;
    (void)in2;
    for (int32_t i = 0; i < n; ++i) {
        /* reads element i of both inputs before writing y[i] (in-place contract) */
        const int32_t raw = t1[(int32_t)x1[i] + 128] + t2[(int32_t)x2[i] + 128];
        const int32_t v = ef_dsp_requantize(single, raw, om, os) + off;
        y[i] = (int8_t)ef_nn_clamp(v, amin, amax);
    }
    return EF_OK;
}

static inline int ef_dsp_add_fast(const ef_add_params *p, const ef_dims *in1, const int8_t *x1,
                                  const ef_dims *in2, const int8_t *x2, const ef_dims *out,
                                  const int8_t *y)
{
    return p && x1 && x2 && y && in1 && in2 && out && ef_nn_same_dims(in1, out)
           && ef_nn_same_dims(in2, out) && ef_nn_numel(out) >= EF_DSP_ADD_MIN;
}

ef_status ef_add_s8(const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    if (!ef_dsp_add_fast(p, in1, x1, in2, x2, out, y)) {
        return ef_add_ref_s8(p, in1, x1, in2, x2, out, y);
    }
    return ef_dsp_addsub(p, 1, EF_ADD_SINGLE_ROUNDING, in1, x1, in2, x2, out, y);
}

ef_status ef_sub_s8(const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    if (!ef_dsp_add_fast(p, in1, x1, in2, x2, out, y)) {
        return ef_sub_ref_s8(p, in1, x1, in2, x2, out, y);
    }
    return ef_dsp_addsub(p, -1, EF_SUB_SINGLE_ROUNDING, in1, x1, in2, x2, out, y);
}
