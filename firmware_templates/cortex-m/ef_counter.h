/* Monotonic event counter for timing inferences: cycles (DWT CYCCNT) on real Cortex-M3/4/7,
 * or SysTick ticks scaled to instructions under QEMU -icount shift=0 (one instruction per ns
 * of virtual time; DWT is not emulated there). Selected by EF_COUNTER_DWT / EF_COUNTER_SYSTICK
 * from the board profile. */
#ifndef EF_COUNTER_H
#define EF_COUNTER_H

#include <stdint.h>

void ef_counter_init(void);
uint64_t ef_counter_now(void);       /* in counter units (see EF_COUNT_SCALE) */

#endif
