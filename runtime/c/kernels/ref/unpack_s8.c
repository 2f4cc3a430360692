/* Packed weights (compile --cluster 16|4): a value table of 2^bits int8 entries and one
 * index per weight, `bits` (4 or 2) wide, packed from each byte's low bits up. Unpacks n
 * weights into w (the node's arena scratch) before the node's kernel runs, so every kernel
 * reads the same int8 values the .tflite and the reference hold. */
#include "ef_nn_support.h"

ef_status ef_unpack_s8(const int8_t *table, const uint8_t *idx, int32_t n, int32_t bits,
                       int8_t *w)
{
    if (!table || !idx || !w || n < 0 || (bits != 4 && bits != 2)) {
        return EF_ERR_ARG;
    }
    int32_t i = 0;
    if (bits == 4) {
        for (; i + 2 <= n; i += 2) {
            const uint8_t b = *idx++;
            w[i] = table[b & 0xF];
            w[i + 1] = table[b >> 4];
        }
        if (i < n) {
            w[i] = table[*idx & 0xF];
        }
        return EF_OK;
    }
    for (; i + 4 <= n; i += 4) {
        const uint8_t b = *idx++;
        w[i] = table[b & 3];
        w[i + 1] = table[(b >> 2) & 3];
        w[i + 2] = table[(b >> 4) & 3];
        w[i + 3] = table[b >> 6];
    }
    for (int32_t s = 0; i < n; ++i, s += 2) {
        w[i] = table[(*idx >> s) & 3];
    }
    return EF_OK;
}
