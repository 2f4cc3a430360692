/* RESIZE_NEAREST_NEIGHBOR int8 over H, W of NHWC: whole pixels (C bytes) are copied from the
 * input row / column the host computed per output row / column (qparams.nearest_maps, as
 * TFLite's GetNearestNeighbor). */
#include "ef_nn_support.h"

ef_status ef_resize_nearest_s8(const ef_resize_params *p,
                               const ef_dims *in, const int8_t *x,
                               const ef_dims *out, int8_t *y)
{
    if (!p || !p->rows || !p->cols || !in || !x || !out || !y || in->n != out->n
            || in->c != out->c) {
        return EF_ERR_ARG;
    }
    const int32_t c = in->c;
    for (int32_t i = 0; i < out->h; ++i) {
        if (p->rows[i] < 0 || p->rows[i] >= in->h) {
            return EF_ERR_ARG;
        }
    }
    for (int32_t j = 0; j < out->w; ++j) {
        if (p->cols[j] < 0 || p->cols[j] >= in->w) {
            return EF_ERR_ARG;
        }
    }
    for (int32_t b = 0; b < out->n; ++b) {
        const int8_t *xb = x + b * in->h * in->w * c;
        for (int32_t i = 0; i < out->h; ++i) {
            const int8_t *row = xb + p->rows[i] * in->w * c;
            for (int32_t j = 0; j < out->w; ++j) {
                const int8_t *px = row + p->cols[j] * c;
                for (int32_t k = 0; k < c; ++k) {
                    y[k] = px[k];
                }
                y += c;
            }
        }
    }
    return EF_OK;
}
