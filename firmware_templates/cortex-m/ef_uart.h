/* Polled UART used by the protocol loop. One driver file per UART family is compiled
 * (ef_uart_<driver>.c, chosen by the board profile's uart.driver). */
#ifndef EF_UART_H
#define EF_UART_H

#include <stdint.h>

void ef_uart_init(uint32_t clock_hz, uint32_t baud);
void ef_uart_putc(uint8_t c);
uint8_t ef_uart_getc(void);     /* blocks until a byte arrives */

#endif
