/* nRF52840: the Cortex-M4F always runs at 64 MHz; what the part needs for its rated speed
 * is the crystal oscillator (HFXO, from the 32 MHz crystal) instead of the RC oscillator
 * (HFINT, +-1.5 %, which also skews the UART) and the flash instruction cache. nRF52840
 * Product Specification v1.7: 5.4 CLOCK (TASKS_HFCLKSTART 0x000, EVENTS_HFCLKSTARTED 0x100, HFCLKSTAT 0x40C: SRC
 * bit 0 = Xtal, STATE bit 16); 4.3.9.10 NVMC ICACHECNF 0x540 (CACHEEN bit 0). Flash wait
 * states are handled by the NVMC itself; the FPU is enabled by startup.c. */
#include "ef_clock.h"

#define CLOCK 0x40000000u
#define TASKS_HFCLKSTART (CLOCK + 0x000u)
#define EVENTS_HFCLKSTARTED (CLOCK + 0x100u)
#define HFCLKSTAT (CLOCK + 0x40Cu)
#define NVMC_ICACHECNF 0x4001E540u
#define CORE_HZ 64000000u

uint32_t ef_clock_init(void)
{
    EF_REG(EVENTS_HFCLKSTARTED) = 0u;
    EF_REG(TASKS_HFCLKSTART) = 1u;
    while (EF_REG(EVENTS_HFCLKSTARTED) == 0u) {
    }
    EF_REG(NVMC_ICACHECNF) |= 1u;                           /* CACHEEN */
    /* running from the crystal: the core clock is 64 MHz to the crystal's tolerance */
    const uint32_t stat = EF_REG(HFCLKSTAT);
    return (stat & 1u) && (stat & (1u << 16)) ? CORE_HZ : 0u;
}

uint32_t ef_clock_uart_hz(void)
{
    return 16000000u;                    /* the UART's own baud generator (ef_uart_nrf_uart.c) */
}
