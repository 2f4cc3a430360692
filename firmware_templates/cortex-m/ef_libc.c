/* memcpy / memset for the firmware, smaller than newlib-nano's (~470 -> ~120 bytes): word
 * moves when both pointers are word-aligned, bytes otherwise. Built with
 * -fno-tree-loop-distribute-patterns so the compiler does not turn these loops back into
 * calls to themselves. */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0u) {
        uint32_t *dw = (void *)d;
        const uint32_t *sw = (const void *)s;
        for (; n >= 16u; n -= 16u, dw += 4, sw += 4) {   /* LDM/STM-sized blocks */
            const uint32_t a = sw[0], b = sw[1], c = sw[2], e = sw[3];
            dw[0] = a;
            dw[1] = b;
            dw[2] = c;
            dw[3] = e;
        }
        for (; n >= 4u; n -= 4u) {
            *dw++ = *sw++;
        }
        d = (void *)dw;
        s = (const void *)sw;
    }
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    const uint32_t w = 0x01010101u * (uint8_t)c;
    for (; n && ((uintptr_t)d & 3u); n--) {
        *d++ = (uint8_t)c;
    }
    for (; n >= 4u; n -= 4u, d += 4) {
        *(uint32_t *)(void *)d = w;
    }
    while (n--) {
        *d++ = (uint8_t)c;
    }
    return dst;
}
