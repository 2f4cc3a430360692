/* STM32 USART / LPUART (the "v2" register layout of STM32L4, F7, G4, H7...): CR1 +0x00,
 * BRR +0x0C, ISR +0x1C (RXNE bit 5, TXE bit 7), RDR +0x24, TDR +0x28.
 * Clock gates and pin muxing are board facts, so targets/build.py writes them from the board
 * profile into ef_fw_info.h: EF_UART_SETUP (register |= mask pairs: RCC, PWR, ...) and
 * EF_UART_PINS (GPIO port base, pin, alternate function). An LPUART divides by 256 * f / baud
 * (EF_UART_BRR_SCALE 256), a USART by f / baud. */
#include "ef_fw_info.h"
#include "ef_uart.h"

#ifndef EF_UART_BRR_SCALE
#define EF_UART_BRR_SCALE 1u
#endif

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define USART(off) REG(EF_UART_BASE + (off))

static const uint32_t setup[][2] = EF_UART_SETUP;
static const uint32_t pins[][3] = EF_UART_PINS;

void ef_uart_init(uint32_t clock_hz, uint32_t baud)
{
    for (uint32_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++) {
        if (setup[i][0] != 0u) {
            REG(setup[i][0]) |= setup[i][1];
            (void)REG(setup[i][0]);          /* read back: the clock is on before its use */
        }
    }
    for (uint32_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        const uint32_t gpio = pins[i][0], pin = pins[i][1], af = pins[i][2];
        if (gpio == 0u) {
            continue;
        }
        REG(gpio + 0x00u) = (REG(gpio + 0x00u) & ~(3u << (2u * pin))) | (2u << (2u * pin));
        const uint32_t afr = gpio + (pin < 8u ? 0x20u : 0x24u), sh = 4u * (pin & 7u);
        REG(afr) = (REG(afr) & ~(0xFu << sh)) | (af << sh);
    }
    USART(0x00u) = 0;                                     /* UE = 0 while configuring */
    USART(0x0Cu) = (uint32_t)(((uint64_t)clock_hz * EF_UART_BRR_SCALE + baud / 2u) / baud);
    USART(0x00u) = (1u << 3) | (1u << 2) | 1u;            /* TE | RE | UE, 8N1 */
}

void ef_uart_putc(uint8_t c)
{
    while (!(USART(0x1Cu) & (1u << 7))) {
    }
    USART(0x28u) = c;
}

uint8_t ef_uart_getc(void)
{
    while (!(USART(0x1Cu) & (1u << 5))) {
        if (USART(0x1Cu) & (1u << 3)) {
            USART(0x20u) = 1u << 3;                       /* ICR: clear an overrun, go on */
        }
    }
    return (uint8_t)USART(0x24u);
}
