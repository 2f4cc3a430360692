/**
 * @file ef_nn_support.h
 * @brief Private helpers shared by the reference kernels (not part of the public API).
 */
#ifndef EF_NN_SUPPORT_H
#define EF_NN_SUPPORT_H

#include "ef_kernels.h"
#include "ef_requantize.h"

/** Number of elements of an NHWC shape. */
static inline int32_t ef_nn_numel(const ef_dims *d)
{
    return d->n * d->h * d->w * d->c;
}

/** 1 if the two shapes are identical. */
static inline int ef_nn_same_dims(const ef_dims *a, const ef_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/**
 * Element strides of `d` broadcast to `out`: a dim of size 1 gets stride 0.
 * @return 0 if some dim is neither equal to out's nor 1.
 */
static inline int ef_nn_bcast_strides(const ef_dims *d, const ef_dims *out, int32_t s[4])
{
    const int32_t dd[4] = {d->n, d->h, d->w, d->c};
    const int32_t od[4] = {out->n, out->h, out->w, out->c};
    int32_t stride = 1;
    for (int k = 3; k >= 0; --k) {
        if (dd[k] != od[k] && dd[k] != 1) {
            return 0;
        }
        s[k] = dd[k] == 1 ? 0 : stride;
        stride *= dd[k];
    }
    return 1;
}

/** y[i] = lut[x[i] + 128] for n elements; reads x[i] before writing y[i] (in-place safe). */
static inline void ef_nn_lut_s8(const int8_t *lut, const int8_t *x, int8_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        y[i] = lut[(int32_t)x[i] + 128];
    }
}

#endif /* EF_NN_SUPPORT_H */
