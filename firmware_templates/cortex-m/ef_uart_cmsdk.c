/* ARM CMSDK APB UART (MPS2 boards; QEMU mps2-an385/386): DATA +0, STATE +4, CTRL +8,
 * BAUDDIV +0x10. STATE bit 0 = TX buffer full, bit 1 = RX buffer full. */
#include "ef_uart.h"

#ifndef EF_UART_BASE
#define EF_UART_BASE 0x40004000u
#endif

#define UART_REG(off) (*(volatile uint32_t *)(EF_UART_BASE + (off)))
#define UART_DATA UART_REG(0x00u)
#define UART_STATE UART_REG(0x04u)
#define UART_CTRL UART_REG(0x08u)
#define UART_BAUDDIV UART_REG(0x10u)

void ef_uart_init(uint32_t clock_hz, uint32_t baud)
{
    uint32_t div = clock_hz / baud;
    UART_BAUDDIV = div < 16u ? 16u : div;   /* the CMSDK UART needs a divider >= 16 */
    UART_CTRL = 0x3u;                       /* TX enable | RX enable, no interrupts */
}

void ef_uart_putc(uint8_t c)
{
    while (UART_STATE & 0x1u) {
    }
    UART_DATA = c;
}

uint8_t ef_uart_getc(void)
{
    while (!(UART_STATE & 0x2u)) {
    }
    return (uint8_t)UART_DATA;
}
