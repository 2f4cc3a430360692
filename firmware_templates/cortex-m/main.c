/* Protocol loop of the edgeforge firmware (PROTOCOL.md): announce BOOT, then answer INFO,
 * WRITE_INPUT, INVOKE, READ_OUTPUT and LAYER_PROFILE frames forever. The model comes from
 * the generated package (model.h glue macros); the tensor descriptors from ef_fw_info.h,
 * which targets/build.py writes from the manifest. */
#include <stdint.h>

#include "ef_clock.h"
#include "ef_counter.h"
#include "ef_frame.h"
#include "ef_fw_info.h"
#include "ef_hooks.h"
#include "ef_proto.h"
#include "ef_uart.h"
#include "model.h"

#ifndef EF_CPU_HZ
#define EF_CPU_HZ 25000000u
#endif
#ifndef EF_BAUD
#define EF_BAUD 115200u
#endif
#ifndef EF_COUNTER_UNIT
#define EF_COUNTER_UNIT EF_UNIT_CYCLES
#endif

#define MAX_RUNS ((EF_FRAME_MAX_PAYLOAD - 7u) / 8u)
#define NUM_OPS_ALLOC (EF_MODEL_NUM_OPS > 0 ? EF_MODEL_NUM_OPS : 1)

static ef_frame_parser rx;
static uint8_t tx[EF_FRAME_MAX_PAYLOAD];
static uint32_t op_counts[NUM_OPS_ALLOC];
static uint64_t op_start;
static uint8_t have_run;
static const uint8_t model_hash[8] = EF_MODEL_HASH;
static const uint8_t tensor_desc[] = EF_FW_TENSOR_DESC;
static uint32_t cpu_hz = EF_CPU_HZ;    /* read back from the clock tree by ef_clock_init() */

/* Peak stack (PROTOCOL.md, STACK): INVOKE paints the free stack below its own frame, and
 * after the runs the lowest word no longer holding the paint is the deepest the model (its
 * kernels' locals included) went; bytes from there to the top of the stack. */
extern uint32_t _sstack, _estack;
#define EF_STACK_PAINT 0xEF57AC4Bu
#define EF_STACK_MARGIN_WORDS 16u      /* left alone below the painting frame */
static uint32_t stack_peak;

static __attribute__((noinline)) void stack_paint(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_sstack; p < sp - EF_STACK_MARGIN_WORDS; ++p) {
        *(volatile uint32_t *)p = EF_STACK_PAINT;
    }
}

static uint32_t stack_used(void)
{
    const volatile uint32_t *p = &_sstack;
    while (p < &_estack && *p == EF_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

/* Compiler barrier: with link-time optimization the kernels may be inlined here, and no
 * memory access may be moved across a counter read (it would be billed to the wrong op). */
#define EF_BARRIER() __asm__ volatile("" ::: "memory")

/* noinline: the cycle estimate (targets/cycles.py) finds op boundaries by these entries */
__attribute__((noinline)) void ef_fw_op_begin(int op)
{
    (void)op;
    EF_BARRIER();
    op_start = ef_counter_now();
    EF_BARRIER();
}

__attribute__((noinline)) void ef_fw_op_end(int op)
{
    EF_BARRIER();
    uint64_t d = ef_counter_now() - op_start;
    if (op >= 0 && op < (int)NUM_OPS_ALLOC) {
        op_counts[op] = (uint32_t)(d > 0xFFFFFFFFu ? 0xFFFFFFFFu : d);
    }
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (get16(p + 2) << 16);
}

/* Send one frame whose payload is tx[0..len). */
static void send_frame(uint8_t seq, uint8_t cmd, uint32_t len)
{
    uint8_t head[EF_FRAME_HEADER];
    uint32_t crc = ef_frame_header(head, seq, cmd, (uint16_t)len);
    crc = ef_crc32(crc, tx, len);
    for (uint32_t i = 0; i < EF_FRAME_HEADER; i++) {
        ef_uart_putc(head[i]);
    }
    for (uint32_t i = 0; i < len; i++) {
        ef_uart_putc(tx[i]);
    }
    for (uint32_t i = 0; i < 4u; i++) {
        ef_uart_putc((uint8_t)(crc >> (8u * i)));
    }
}

static uint32_t status_only(uint8_t st)
{
    tx[0] = st;
    return 1;
}

static uint32_t do_info(void)
{
    uint32_t n = 0;
    tx[n++] = EF_ST_OK;
    tx[n++] = EF_PROTO_VERSION;
    tx[n++] = EF_COUNTER_UNIT;
    put16(tx + n, EF_FW_VERSION);
    n += 2;
    for (uint32_t i = 0; i < 8u; i++) {
        tx[n++] = model_hash[i];
    }
    put32(tx + n, (uint32_t)EF_MODEL_ARENA_BYTES);
    n += 4;
    put16(tx + n, (uint32_t)EF_MODEL_NUM_OPS);
    n += 2;
    put16(tx + n, EF_FRAME_MAX_PAYLOAD);
    n += 2;
    put32(tx + n, cpu_hz);
    n += 4;
    tx[n++] = (uint8_t)EF_MODEL_NUM_INPUTS;
    tx[n++] = (uint8_t)EF_MODEL_NUM_OUTPUTS;
    for (int i = 0; i < (int)EF_MODEL_NUM_INPUTS; i++) {
        put32(tx + n, (uint32_t)EF_MODEL_INPUT_BYTES(i));
        n += 4;
    }
    for (int i = 0; i < (int)EF_MODEL_NUM_OUTPUTS; i++) {
        put32(tx + n, (uint32_t)EF_MODEL_OUTPUT_BYTES(i));
        n += 4;
    }
    uint32_t d = (uint32_t)sizeof(tensor_desc);
    if (n + 2u + d > EF_FRAME_MAX_PAYLOAD) {
        d = 0;   /* descriptors too long for one frame: the host falls back to its manifest */
    }
    put16(tx + n, d);
    n += 2;
    for (uint32_t i = 0; i < d; i++) {
        tx[n++] = tensor_desc[i];
    }
    return n;
}

static uint32_t do_write_input(const uint8_t *p, uint32_t len)
{
    if (len < 5u) {
        return status_only(EF_ST_BAD_ARG);
    }
    uint32_t index = p[0];
    uint32_t offset = get32(p + 1);
    uint32_t n = len - 5u;
    if (index >= (uint32_t)EF_MODEL_NUM_INPUTS) {
        return status_only(EF_ST_BAD_ARG);
    }
    uint32_t size = (uint32_t)EF_MODEL_INPUT_BYTES((int)index);
    if (offset > size || n > size - offset) {
        return status_only(EF_ST_BAD_ARG);
    }
    /* bytes: an input may be int8 or int16 (EF_MODEL_INPUT_BYTES counts bytes) */
    uint8_t *dst = (uint8_t *)EF_MODEL_INPUT((int)index) + offset;
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = p[5u + i];
    }
    return status_only(EF_ST_OK);
}

static uint32_t do_invoke(const uint8_t *p, uint32_t len)
{
    if (len != 4u) {
        return status_only(EF_ST_BAD_ARG);
    }
    uint32_t runs = get16(p);
    uint32_t warmup = get16(p + 2);
    if (runs == 0u || runs > MAX_RUNS) {
        return status_only(EF_ST_BAD_ARG);
    }
    int rc = 0;
    stack_paint();
    for (uint32_t i = 0; i < warmup && rc == 0; i++) {
        rc = EF_MODEL_INVOKE();
    }
    uint32_t n = 7;
    for (uint32_t i = 0; i < runs && rc == 0; i++) {
        EF_BARRIER();
        uint64_t t0 = ef_counter_now();
        EF_BARRIER();
        rc = EF_MODEL_INVOKE();
        EF_BARRIER();
        uint64_t d = ef_counter_now() - t0;
        put32(tx + n, (uint32_t)d);
        put32(tx + n + 4u, (uint32_t)(d >> 32));
        n += 8u;
    }
    have_run = (uint8_t)(rc == 0);
    stack_peak = stack_used();
    tx[0] = rc == 0 ? EF_ST_OK : EF_ST_INVOKE_FAILED;
    put32(tx + 1, (uint32_t)rc);
    put16(tx + 5, (n - 7u) / 8u);
    return n;
}

static uint32_t do_read_output(const uint8_t *p, uint32_t len)
{
    if (len != 7u) {
        return status_only(EF_ST_BAD_ARG);
    }
    uint32_t index = p[0];
    uint32_t offset = get32(p + 1);
    uint32_t n = get16(p + 5);
    if (index >= (uint32_t)EF_MODEL_NUM_OUTPUTS || n > EF_FRAME_MAX_PAYLOAD - 1u) {
        return status_only(EF_ST_BAD_ARG);
    }
    uint32_t size = (uint32_t)EF_MODEL_OUTPUT_BYTES((int)index);
    if (offset > size || n > size - offset) {
        return status_only(EF_ST_BAD_ARG);
    }
    const uint8_t *src = (const uint8_t *)EF_MODEL_OUTPUT((int)index) + offset;
    tx[0] = EF_ST_OK;
    for (uint32_t i = 0; i < n; i++) {
        tx[1u + i] = src[i];
    }
    return 1u + n;
}

static uint32_t do_layer_profile(const uint8_t *p, uint32_t len)
{
    if (len != 2u) {
        return status_only(EF_ST_BAD_ARG);
    }
    if (!have_run) {
        return status_only(EF_ST_NO_RUN);
    }
    uint32_t first = get16(p);
    uint32_t total = (uint32_t)EF_MODEL_NUM_OPS;
    if (first > total) {
        return status_only(EF_ST_BAD_ARG);
    }
    uint32_t count = total - first;
    uint32_t room = (EF_FRAME_MAX_PAYLOAD - 7u) / 4u;
    if (count > room) {
        count = room;
    }
    uint32_t n = 0;
    tx[n++] = EF_ST_OK;
    put16(tx + n, total);
    put16(tx + n + 2, first);
    put16(tx + n + 4, count);
    n += 6u;
    for (uint32_t i = 0; i < count; i++) {
        put32(tx + n, op_counts[first + i]);
        n += 4u;
    }
    return n;
}

static uint32_t do_stack(uint32_t len)
{
    if (len != 0u) {
        return status_only(EF_ST_BAD_ARG);
    }
    if (!have_run) {
        return status_only(EF_ST_NO_RUN);
    }
    tx[0] = EF_ST_OK;
    put32(tx + 1, (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack));
    put32(tx + 5, stack_peak);
    return 9u;
}

static void dispatch(void)
{
    uint32_t n;
    switch (rx.cmd) {
    case EF_CMD_INFO:
        n = do_info();
        break;
    case EF_CMD_WRITE_INPUT:
        n = do_write_input(rx.payload, rx.len);
        break;
    case EF_CMD_INVOKE:
        n = do_invoke(rx.payload, rx.len);
        break;
    case EF_CMD_READ_OUTPUT:
        n = do_read_output(rx.payload, rx.len);
        break;
    case EF_CMD_LAYER_PROFILE:
        n = do_layer_profile(rx.payload, rx.len);
        break;
    case EF_CMD_STACK:
        n = do_stack(rx.len);
        break;
    default:
        n = status_only(EF_ST_UNKNOWN_CMD);
        break;
    }
    send_frame(rx.seq, (uint8_t)(rx.cmd | EF_CMD_RESPONSE), n);
}

int main(void)
{
    const uint32_t hz = ef_clock_init();
    cpu_hz = hz != 0u ? hz : EF_CPU_HZ;
    ef_counter_init();
    ef_uart_init(ef_clock_uart_hz(), EF_BAUD);
    ef_frame_reset(&rx);
    static const char banner[] = "edgeforge";
    uint32_t n = 0;
    put16(tx, EF_FW_VERSION);
    tx[2] = EF_PROTO_VERSION;
    for (n = 0; banner[n] != '\0'; n++) {
        tx[3u + n] = (uint8_t)banner[n];
    }
    send_frame(0, EF_CMD_BOOT, 3u + n);
    for (;;) {
        ef_frame_event ev = ef_frame_feed(&rx, ef_uart_getc());
        if (ev == EF_FRAME_OK && rx.cmd >= 1u && rx.cmd <= EF_CMD_LAST_REQUEST) {
            dispatch();
        } else if (ev == EF_FRAME_OK) {
            /* not a request code: cmd | 0x80 would be a device-initiated code (BOOT, NAK) */
            tx[0] = EF_ST_UNKNOWN_CMD;
            send_frame(rx.seq, EF_CMD_NAK, 1);
        } else if (ev != EF_FRAME_NONE) {
            tx[0] = ev == EF_FRAME_ERR_LEN ? EF_ST_BAD_LEN : EF_ST_BAD_CRC;
            send_frame(rx.seq, EF_CMD_NAK, 1);
        }
    }
}
