/* See ef_counter.h. */
#include "ef_counter.h"

#ifndef EF_COUNT_SCALE
#define EF_COUNT_SCALE 1u      /* counter units per raw tick (QEMU mps2: 40 instr per tick) */
#endif

#if defined(EF_COUNTER_DWT)

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

static uint32_t last_raw;
static uint64_t high;          /* extends the 32-bit CYCCNT; needs a read at least every 2^32 */

void ef_counter_init(void)
{
    DEMCR |= 1u << 24;         /* TRCENA */
    DWT_LAR = 0xC5ACCE55u;     /* unlock (Cortex-M7 parts keep the DWT locked at reset) */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;            /* CYCCNTENA */
    last_raw = 0;
    high = 0;
}

uint64_t ef_counter_now(void)
{
    uint32_t raw = DWT_CYCCNT;
    if (raw < last_raw) {
        high += 1ull << 32;
    }
    last_raw = raw;
    return (high + raw) * EF_COUNT_SCALE;
}

#else /* SysTick: 24-bit down-counter, wraps counted by its interrupt */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)

static volatile uint32_t wraps;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    wraps++;
}

void ef_counter_init(void)
{
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    wraps = 0;
    SYST_CSR = 0x7u;           /* ENABLE | TICKINT | CLKSOURCE = processor clock */
}

uint64_t ef_counter_now(void)
{
    uint32_t w, v;
    /* re-read if the counter wrapped between the two reads (the handler bumped wraps) */
    do {
        w = wraps;
        v = SYST_CVR;
    } while (w != wraps);
    /* a wrap whose interrupt is still pending: v was read after it if v is large */
    if ((SCB_ICSR & ICSR_PENDSTSET) && v > SYST_RELOAD / 2u) {
        w++;
    }
    uint64_t ticks = (uint64_t)w * (SYST_RELOAD + 1u) + (SYST_RELOAD - v);
    return ticks * EF_COUNT_SCALE;
}

#endif
