/* Nordic nRF52 UART0 (the non-DMA UART at 0x40002000): TASKS_STARTRX +0x000, TASKS_STARTTX
 * +0x008, EVENTS_RXDRDY +0x108, EVENTS_TXDRDY +0x11C, ENABLE +0x500 (4 = UART), PSEL.TXD
 * +0x50C, PSEL.RXD +0x514, RXD +0x518, TXD +0x51C, BAUDRATE +0x524. The pins come from the
 * board profile (EF_UART_PINS: {0, tx pin, 0}, {0, rx pin, 0}). */
#include "ef_fw_info.h"
#include "ef_uart.h"

#define UART(off) (*(volatile uint32_t *)(uintptr_t)(EF_UART_BASE + (off)))

static const uint32_t pins[][3] = EF_UART_PINS;

void ef_uart_init(uint32_t clock_hz, uint32_t baud)
{
    (void)clock_hz;                          /* the UART has its own 16 MHz baud generator */
    /* BAUDRATE register = round(baud * 2^32 / 16 MHz), low 12 bits cleared (nRF52 PS) */
    const uint32_t reg = (uint32_t)((((uint64_t)baud << 32) + 8000000u) / 16000000u) & ~0xFFFu;
    UART(0x500u) = 0;
    UART(0x50Cu) = pins[0][1];
    UART(0x514u) = pins[1][1];
    UART(0x524u) = reg;
    UART(0x500u) = 4u;
    UART(0x108u) = 0;
    UART(0x11Cu) = 0;
    UART(0x000u) = 1u;
    UART(0x008u) = 1u;
}

void ef_uart_putc(uint8_t c)
{
    UART(0x51Cu) = c;
    while (UART(0x11Cu) == 0u) {
    }
    UART(0x11Cu) = 0;
}

uint8_t ef_uart_getc(void)
{
    while (UART(0x108u) == 0u) {
    }
    UART(0x108u) = 0;
    return (uint8_t)UART(0x518u);
}
