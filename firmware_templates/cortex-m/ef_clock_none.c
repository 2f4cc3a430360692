/* No clock set-up: the core runs at its reset clock, the profile's clock_hz (EF_CPU_HZ).
 * QEMU mps2-an386 emulates a fixed 25 MHz processor clock. */
#include "ef_clock.h"

#ifndef EF_CPU_HZ
#define EF_CPU_HZ 25000000u
#endif

uint32_t ef_clock_init(void)
{
    return EF_CPU_HZ;
}

uint32_t ef_clock_uart_hz(void)
{
    return EF_CPU_HZ;
}
