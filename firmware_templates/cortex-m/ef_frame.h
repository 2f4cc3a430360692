/* Frame format of the host <-> MCU protocol (firmware_templates/PROTOCOL.md), portable C99.
 * The parser takes one byte at a time, never writes past its payload buffer and falls back
 * to hunting for the sync bytes after any bad frame. It compiles for the host too, so the
 * same code is fuzzed with gcc on the host (tests/c/test_frame_parser.py). */
#ifndef EF_FRAME_H
#define EF_FRAME_H

#include <stdint.h>

#define EF_FRAME_SYNC0 0xEFu
#define EF_FRAME_SYNC1 0x5Au
#ifndef EF_FRAME_MAX_PAYLOAD
#define EF_FRAME_MAX_PAYLOAD 1024u     /* largest payload accepted or sent, bytes */
#endif
#define EF_FRAME_HEADER 6u             /* sync0 sync1 len_lo len_hi seq cmd */
#define EF_FRAME_OVERHEAD 10u          /* header + CRC-32 */

typedef enum {
    EF_FRAME_NONE = 0,       /* byte consumed, no complete frame yet */
    EF_FRAME_OK = 1,         /* a complete frame with a good CRC is in the parser */
    EF_FRAME_ERR_LEN = -1,   /* declared length > EF_FRAME_MAX_PAYLOAD: frame dropped */
    EF_FRAME_ERR_CRC = -2    /* CRC mismatch: frame dropped */
} ef_frame_event;

typedef struct {
    uint8_t state;           /* private: parser state */
    uint8_t seq;             /* sequence number of the frame (valid after a header) */
    uint8_t cmd;             /* command byte */
    uint16_t len;            /* payload length */
    uint16_t pos;            /* bytes of payload (then CRC) received */
    uint32_t crc;            /* running CRC over len, seq, cmd, payload */
    uint32_t rx_crc;         /* CRC as received */
    uint8_t payload[EF_FRAME_MAX_PAYLOAD];
} ef_frame_parser;

/** CRC-32 (IEEE 802.3, same as zlib.crc32): pass crc = 0 to start. */
uint32_t ef_crc32(uint32_t crc, const uint8_t *data, uint32_t n);

/** Forget any partial frame; hunt for sync bytes. */
void ef_frame_reset(ef_frame_parser *p);

/** Feed one received byte. On EF_FRAME_OK, p->seq/cmd/len/payload hold the frame until the
 *  next call. On an error, p->seq holds the sequence number of the dropped frame. */
ef_frame_event ef_frame_feed(ef_frame_parser *p, uint8_t byte);

/** Write a frame header (6 bytes) into out and return the CRC state after it; finish with
 *  ef_crc32(state, payload, len) and append that value little-endian. */
uint32_t ef_frame_header(uint8_t out[EF_FRAME_HEADER], uint8_t seq, uint8_t cmd, uint16_t len);

#endif
