/* CONV2D -> CONV2D -> ADD run row by row (ef_inplace.h, planned by sdk/plan/fuse.py): a
 * residual block's two 16 KiB conv outputs shrink to a band of conv1 rows and a group of
 * conv2 rows (MCUNetV2's patch idea, one row high); the ADD runs once per group, as its
 * tables are rebuilt per call and the planner grows the group where the arena allows. */
#include <string.h>

#include "ef_inplace.h"
#include "ef_nn_support.h"

/* Output row `r` of `c` alone: the input rows its window covers, with the pad it has there
 * (rows past the input's end are the kernel's own bottom padding). `x` holds input rows from
 * `first` on (every window row of r is one of them). */
static ef_status ef_nn_conv_row(const ef_ctx *kctx, const ef_conv_call *c, int32_t r,
                                const int8_t *x, int32_t first, int8_t *y)
{
    const int32_t top = r * c->p->stride.h - c->p->pad.h;
    const int32_t last = top + (c->wd->h - 1) * c->p->dilation.h;
    const int32_t lo = top < 0 ? 0 : top;
    const int32_t hi = last < c->in->h - 1 ? last : c->in->h - 1;
    ef_conv_params p = *c->p;
    p.pad.h = lo - top;
    const ef_dims in = {1, hi - lo + 1, c->in->w, c->in->c};
    const ef_dims out = {1, 1, c->out->w, c->out->c};
    return c->fn(kctx, &p, c->q, &in, x + (lo - first) * c->in->w * c->in->c, c->wd, c->w, c->bias,
                 &out, y);
}

ef_status ef_conv_pair_add_s8(const ef_ctx *ctx, const ef_conv_call *c1,
                              const ef_conv_call *c2, ef_add_fn add, const ef_add_params *ap,
                              int32_t conv_first, int32_t group, const int8_t *x,
                              const int8_t *skip, int8_t *y)
{
    if (!ctx || !ctx->buf || !c1 || !c2 || !add || !ap || !x || !skip || !y ||
        c1->in->n != 1 || c2->out->n != 1 || group < 1) {
        return EF_ERR_ARG;
    }
    const int32_t row1 = c1->out->w * c1->out->c, row2 = c2->out->w * c2->out->c;
    const int32_t rows = (c2->wd->h - 1) * c2->p->dilation.h + 1;
    const int32_t band_bytes = (rows * row1 + 3) & ~3, row_bytes = (group * row2 + 3) & ~3;
    if (ctx->size < band_bytes + row_bytes) {
        return EF_ERR_ARG;
    }
    int8_t *band = (int8_t *)ctx->buf, *row = band + band_bytes;
    const ef_ctx kctx = {row + row_bytes, ctx->size - band_bytes - row_bytes};
    const ef_ctx *kc = kctx.size > 0 ? &kctx : 0;
    int32_t lo = 0, hi = -1;                    /* conv1 output rows held in the band */
    for (int32_t r = 0; r < c2->out->h; ++r) {
        const int32_t top = r * c2->p->stride.h - c2->p->pad.h;
        const int32_t last = top + (rows - 1);
        const int32_t want_lo = top < 0 ? 0 : top;
        const int32_t want_hi = last < c2->in->h - 1 ? last : c2->in->h - 1;
        if (want_lo > hi) {                      /* stride past the band: start afresh */
            lo = want_lo;
            hi = want_lo - 1;
        } else if (want_lo > lo) {               /* drop rows no later output reads */
            memmove(band, band + (want_lo - lo) * row1, (size_t)((hi - want_lo + 1) * row1));
            lo = want_lo;
        }
        while (hi < want_hi) {
            ++hi;
            const ef_status s = ef_nn_conv_row(kc, c1, hi, x, 0, band + (hi - lo) * row1);
            if (s != EF_OK) {
                return s;
            }
        }
        const int32_t slot = r % group;         /* conv2 rows wait for one add per group */
        ef_status s = ef_nn_conv_row(kc, c2, r, band, lo, row + slot * row2);
        if (s != EF_OK) {
            return s;
        }
        if (slot == group - 1 || r == c2->out->h - 1) {
            const int32_t r0 = r - slot;
            const ef_dims d = {1, slot + 1, c2->out->w, c2->out->c};
            const int8_t *sk = skip + r0 * row2;
            s = conv_first ? add(kc, ap, &d, row, &d, sk, &d, y + r0 * row2)
                           : add(kc, ap, &d, sk, &d, row, &d, y + r0 * row2);
            if (s != EF_OK) {
                return s;
            }
        }
    }
    return EF_OK;
}
