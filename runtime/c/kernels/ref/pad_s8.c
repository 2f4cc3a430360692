/* PAD int8: constant padding of an NHWC tensor, output written in raster order. */
#include <string.h>

#include "ef_nn_support.h"

ef_status ef_pad_s8(const ef_pad_params *p,
                    const ef_dims *in, const int8_t *x,
                    const ef_dims *out, int8_t *y)
{
    if (!p || !in || !x || !out || !y) {
        return EF_ERR_ARG;
    }
    const int32_t *bf = p->before;
    if (out->n != in->n + bf[0] + p->after[0] || out->h != in->h + bf[1] + p->after[1]
        || out->w != in->w + bf[2] + p->after[2] || out->c != in->c + bf[3] + p->after[3]) {
        return EF_ERR_ARG;
    }
    const int8_t v = (int8_t)p->value;
    const int32_t oc = out->c;
    for (int32_t b = 0; b < out->n; ++b) {
        const int32_t ib = b - bf[0];
        for (int32_t h = 0; h < out->h; ++h) {
            const int32_t ih = h - bf[1];
            for (int32_t w = 0; w < out->w; ++w) {
                const int32_t iw = w - bf[2];
                int8_t *yp = y + ((b * out->h + h) * out->w + w) * oc;
                if (ib < 0 || ib >= in->n || ih < 0 || ih >= in->h || iw < 0 || iw >= in->w) {
                    memset(yp, v, (size_t)oc);
                    continue;
                }
                memset(yp, v, (size_t)bf[3]);
                memcpy(yp + bf[3], x + ((ib * in->h + ih) * in->w + iw) * in->c, (size_t)in->c);
                memset(yp + bf[3] + in->c, v, (size_t)p->after[3]);
            }
        }
    }
    return EF_OK;
}
