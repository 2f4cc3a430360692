/* RESIZE_BILINEAR int8 over H, W of NHWC, TFLite's ResizeBilinearInteger: per output row and
 * column the host computed (lower tap, upper tap, 10-bit fraction) (qparams.bilinear_taps);
 * the four products are summed at 20 bits and divided rounding half away from zero. The
 * sum fits int32: |x| <= 128 and the taps' weights (fractions in [-512, 1024]) stay below
 * 2^29 in absolute value. */
#include "ef_nn_support.h"

ef_status ef_resize_bilinear_s8(const ef_resize_params *p,
                                const ef_dims *in, const int8_t *x,
                                const ef_dims *out, int8_t *y)
{
    if (!p || !p->rows || !p->cols || !in || !x || !out || !y || in->n != out->n
            || in->c != out->c) {
        return EF_ERR_ARG;
    }
    for (int32_t i = 0; i < out->h; ++i) {
        const int32_t *r = p->rows + 3 * i;
        if (r[0] < 0 || r[1] >= in->h || r[1] < r[0] || r[2] < -512 || r[2] > 1024) {
            return EF_ERR_ARG;
        }
    }
    for (int32_t j = 0; j < out->w; ++j) {
        const int32_t *s = p->cols + 3 * j;
        if (s[0] < 0 || s[1] >= in->w || s[1] < s[0] || s[2] < -512 || s[2] > 1024) {
            return EF_ERR_ARG;
        }
    }
    const int32_t c = in->c, row = in->w * c;
    for (int32_t b = 0; b < out->n; ++b) {
        const int8_t *xb = x + b * in->h * row;
        for (int32_t i = 0; i < out->h; ++i) {
            const int32_t *r = p->rows + 3 * i;
            const int8_t *top = xb + r[0] * row, *bot = xb + r[1] * row;
            const int32_t dy = r[2];
            for (int32_t j = 0; j < out->w; ++j) {
                const int32_t *s = p->cols + 3 * j;
                const int32_t dx = s[2];
                const int32_t w00 = (1024 - dy) * (1024 - dx), w10 = dy * (1024 - dx);
                const int32_t w01 = (1024 - dy) * dx, w11 = dy * dx;
                const int8_t *a = top + s[0] * c, *e = top + s[1] * c;
                const int8_t *f = bot + s[0] * c, *g = bot + s[1] * c;
                for (int32_t k = 0; k < c; ++k) {
                    const int32_t acc = a[k] * w00 + f[k] * w10 + e[k] * w01 + g[k] * w11;
                    const int32_t half = acc > 0 ? (1 << 19) : -(1 << 19);
                    y[k] = (int8_t)((acc + half) / (1 << 20));
                }
                y += c;
            }
        }
    }
    return EF_OK;
}
