/* Byte-at-a-time frame parser and CRC-32; see ef_frame.h and PROTOCOL.md. */
#include "ef_frame.h"

enum { ST_SYNC0, ST_SYNC1, ST_LEN0, ST_LEN1, ST_SEQ, ST_CMD, ST_PAYLOAD, ST_CRC };

/* Nibble-table CRC-32: 64 bytes of table instead of 1 KB, fast enough for a UART. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t crc_byte(uint32_t c, uint8_t b)
{
    c ^= b;
    c = (c >> 4) ^ crc_nibble[c & 0xFu];
    c = (c >> 4) ^ crc_nibble[c & 0xFu];
    return c;
}

uint32_t ef_crc32(uint32_t crc, const uint8_t *data, uint32_t n)
{
    uint32_t c = ~crc;
    for (uint32_t i = 0; i < n; i++) {
        c = crc_byte(c, data[i]);
    }
    return ~c;
}

void ef_frame_reset(ef_frame_parser *p)
{
    p->state = ST_SYNC0;
    p->len = 0;
    p->pos = 0;
}

/* The CRC is kept un-inverted while running (c = ~crc) and inverted once at the end. */
ef_frame_event ef_frame_feed(ef_frame_parser *p, uint8_t b)
{
    switch (p->state) {
    case ST_SYNC0:
        if (b == EF_FRAME_SYNC0) {
            p->state = ST_SYNC1;
        }
        return EF_FRAME_NONE;
    case ST_SYNC1:
        /* "EF EF 5A" must still sync: a repeated SYNC0 keeps waiting for SYNC1 */
        p->state = (b == EF_FRAME_SYNC1) ? ST_LEN0 : (b == EF_FRAME_SYNC0 ? ST_SYNC1 : ST_SYNC0);
        p->crc = 0xFFFFFFFFu;
        return EF_FRAME_NONE;
    case ST_LEN0:
        p->len = b;
        p->crc = crc_byte(p->crc, b);
        p->state = ST_LEN1;
        return EF_FRAME_NONE;
    case ST_LEN1:
        p->len = (uint16_t)(p->len | ((uint16_t)b << 8));
        p->crc = crc_byte(p->crc, b);
        p->state = ST_SEQ;
        return EF_FRAME_NONE;
    case ST_SEQ:
        p->seq = b;
        p->crc = crc_byte(p->crc, b);
        p->state = ST_CMD;
        return EF_FRAME_NONE;
    case ST_CMD:
        p->cmd = b;
        p->crc = crc_byte(p->crc, b);
        p->pos = 0;
        p->rx_crc = 0;
        if (p->len > EF_FRAME_MAX_PAYLOAD) {
            /* reject before reading a byte of payload: the buffer can never overrun */
            p->state = ST_SYNC0;
            return EF_FRAME_ERR_LEN;
        }
        p->state = (p->len == 0) ? ST_CRC : ST_PAYLOAD;
        return EF_FRAME_NONE;
    case ST_PAYLOAD:
        p->payload[p->pos++] = b;   /* pos < len <= EF_FRAME_MAX_PAYLOAD here */
        p->crc = crc_byte(p->crc, b);
        if (p->pos >= p->len) {
            p->pos = 0;
            p->state = ST_CRC;
        }
        return EF_FRAME_NONE;
    case ST_CRC:
        p->rx_crc |= (uint32_t)b << (8u * p->pos);
        p->pos++;
        if (p->pos < 4u) {
            return EF_FRAME_NONE;
        }
        p->state = ST_SYNC0;
        p->pos = 0;
        return (p->rx_crc == ~p->crc) ? EF_FRAME_OK : EF_FRAME_ERR_CRC;
    default:
        ef_frame_reset(p);
        return EF_FRAME_NONE;
    }
}

uint32_t ef_frame_header(uint8_t out[EF_FRAME_HEADER], uint8_t seq, uint8_t cmd, uint16_t len)
{
    out[0] = EF_FRAME_SYNC0;
    out[1] = EF_FRAME_SYNC1;
    out[2] = (uint8_t)(len & 0xFFu);
    out[3] = (uint8_t)(len >> 8);
    out[4] = seq;
    out[5] = cmd;
    return ef_crc32(0, out + 2, 4);
}
