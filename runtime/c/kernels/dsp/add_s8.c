/* ADD and SUB int8, DSP-build version: same symbols and bytes as ref/add_s8.c.
 * An int8 input has only 256 values, so each input's rescale to the common scale
 * (offset, << left_shift, requantize) is tabulated once per call; an element then costs two
 * table loads, one add and the output requantization. Broadcasts and short tensors take the
 * reference loops. */
#include "ef_dsp.h"
#if !EF_DSP_KERNELS
#include "../ref/add_s8.c"   /* no DSP extension: exactly the reference kernel */
#else

#define ef_add_s8 ef_add_ref_s8
#define ef_sub_s8 ef_sub_ref_s8
#define ef_add_s8_scratch_size ef_add_ref_s8_scratch_size
#include "../ref/add_s8.c"
#undef ef_add_s8
#undef ef_sub_s8
#undef ef_add_s8_scratch_size

/* below this many elements the two 256-entry tables cost more than they save */
#define EF_DSP_ADD_MIN 512

/* t[v + 128] = sign * rescaled (v + off); returns max |t| (< 2^31) */
static inline int32_t ef_dsp_add_table(int32_t *t, int32_t off, int32_t left, int32_t mult,
                                       int32_t shift, int32_t sign, int single)
{
    int32_t m = 0;
    for (int32_t v = -128; v < 128; ++v) {
        const int32_t a = (int32_t)((uint32_t)(v + off) << left);
        const int32_t r = ef_dsp_requantize(single, a, mult, shift);
        t[v + 128] = sign * r;
        m = r > m ? r : (-r > m ? -r : m);
    }
    return m;
}

/* the element loop; `tight` (|raw| < 2^30, shift < 0, double rounding) and `full` (the
 * whole int8 clamp) are compile-time in each call below */
static inline __attribute__((always_inline)) void
ef_dsp_add_loop(const ef_add_params *p, int single, int tight, int full, const int32_t *t1,
                const int32_t *t2, const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n)
{
    const int32_t om = p->out_mult, os = p->out_shift, r = -os;
    const int32_t rnd = tight ? (int32_t)1 << (r - 1) : 0;
    const int32_t off = p->out_offset, amin = p->act.min, amax = p->act.max;
    for (int32_t i = 0; i < n; ++i) {
        /* reads element i of both inputs before writing y[i] (in-place contract) */
        const int32_t raw = t1[(int32_t)x1[i] + 128] + t2[(int32_t)x2[i] + 128];
        const int32_t v = (tight ? ef_dsp_rq(raw, om, r, rnd)
                                 : ef_dsp_requantize(single, raw, om, os)) + off;
        y[i] = ef_dsp_clamp8(full, v, amin, amax);
    }
}

static ef_status ef_dsp_addsub(const ef_add_params *p, int32_t sign, int single,
                               const ef_dims *in1, const int8_t *x1,
                               const ef_dims *in2, const int8_t *x2,
                               const ef_dims *out, int8_t *y, int32_t *t1)
{
    int32_t *t2 = t1 + 256;    /* the two tables: ctx scratch, not the stack */
    const int32_t m1 = ef_dsp_add_table(t1, p->in1_offset, p->left_shift, p->in1_mult,
                                        p->in1_shift, 1, single);
    const int32_t m2 = ef_dsp_add_table(t2, p->in2_offset, p->left_shift, p->in2_mult,
                                        p->in2_shift, sign, single);
    const int32_t n = ef_nn_numel(out);
    const int tight = !single && p->out_shift < 0 && m1 < (1 << 29) && m2 < (1 << 29);
    const int full = p->act.min == -128 && p->act.max == 127;
    (void)in1;
    (void)in2;
    if (tight && full) {
        ef_dsp_add_loop(p, single, 1, 1, t1, t2, x1, x2, y, n);
    } else if (tight) {
        ef_dsp_add_loop(p, single, 1, 0, t1, t2, x1, x2, y, n);
    } else {
        ef_dsp_add_loop(p, single, 0, 0, t1, t2, x1, x2, y, n);
    }
    return EF_OK;
}

int32_t ef_add_s8_scratch_size(const ef_dims *in1, const ef_dims *in2, const ef_dims *out)
{
    return ef_nn_same_dims(in1, out) && ef_nn_same_dims(in2, out)
           && ef_nn_numel(out) >= EF_DSP_ADD_MIN ? 2 * 256 * 4 : 0;
}

static inline int ef_dsp_add_fast(const ef_ctx *ctx, const ef_add_params *p,
                                  const ef_dims *in1, const int8_t *x1,
                                  const ef_dims *in2, const int8_t *x2, const ef_dims *out,
                                  const int8_t *y)
{
    return p && x1 && x2 && y && in1 && in2 && out && ef_nn_same_dims(in1, out)
           && ef_nn_same_dims(in2, out) && ef_nn_numel(out) >= EF_DSP_ADD_MIN
           && ctx && ctx->buf && ((uintptr_t)ctx->buf & 3) == 0 && ctx->size >= 2 * 256 * 4;
}

ef_status ef_add_s8(const ef_ctx *ctx, const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    if (!ef_dsp_add_fast(ctx, p, in1, x1, in2, x2, out, y)) {
        return ef_add_ref_s8(ctx, p, in1, x1, in2, x2, out, y);
    }
    return ef_dsp_addsub(p, 1, EF_ADD_SINGLE_ROUNDING, in1, x1, in2, x2, out, y,
                         (int32_t *)ctx->buf);
}

ef_status ef_sub_s8(const ef_ctx *ctx, const ef_add_params *p,
                    const ef_dims *in1, const int8_t *x1,
                    const ef_dims *in2, const int8_t *x2,
                    const ef_dims *out, int8_t *y)
{
    if (!ef_dsp_add_fast(ctx, p, in1, x1, in2, x2, out, y)) {
        return ef_sub_ref_s8(ctx, p, in1, x1, in2, x2, out, y);
    }
    return ef_dsp_addsub(p, -1, EF_SUB_SINGLE_ROUNDING, in1, x1, in2, x2, out, y,
                         (int32_t *)ctx->buf);
}

#endif /* EF_DSP_KERNELS */
