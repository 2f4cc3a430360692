/* Command and status codes of the host <-> MCU protocol; PROTOCOL.md is the normative text
 * and targets/protocol.py mirrors these numbers. */
#ifndef EF_PROTO_H
#define EF_PROTO_H

#define EF_PROTO_VERSION 1u
#define EF_FW_VERSION 0x0100u          /* major << 8 | minor */

/* Code space: requests (host -> device) 0x01..EF_CMD_LAST_REQUEST; a response carries
 * cmd | EF_CMD_RESPONSE (0x81..0xAF) and the same seq; frames the device starts on its own
 * use 0xB0..0xFF. No response code can therefore read as BOOT or NAK. A frame with a code
 * outside the request range is answered with NAK UNKNOWN_CMD. */
#define EF_CMD_INFO 0x01u
#define EF_CMD_WRITE_INPUT 0x02u
#define EF_CMD_INVOKE 0x03u
#define EF_CMD_READ_OUTPUT 0x04u
#define EF_CMD_LAYER_PROFILE 0x05u
#define EF_CMD_STACK 0x06u
#define EF_CMD_LAST_REQUEST 0x2Fu
#define EF_CMD_RESPONSE 0x80u
#define EF_CMD_NAK 0xEEu               /* device -> host: a frame was rejected */
#define EF_CMD_BOOT 0xB0u              /* device -> host, unsolicited, seq 0: "I (re)started" */

/* status: first payload byte of every response and NAK */
#define EF_ST_OK 0x00u
#define EF_ST_BAD_CRC 0x01u
#define EF_ST_BAD_LEN 0x02u
#define EF_ST_UNKNOWN_CMD 0x03u
#define EF_ST_BAD_ARG 0x04u
#define EF_ST_INVOKE_FAILED 0x05u
#define EF_ST_NO_RUN 0x06u

/* counter units reported by INFO */
#define EF_UNIT_INSTRUCTIONS 0u
#define EF_UNIT_CYCLES 1u

#endif
