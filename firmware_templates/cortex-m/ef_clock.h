/* Core clock bring-up: one driver file per chip family is compiled (ef_clock_<driver>.c,
 * chosen by the board profile's [clock] driver; "none" keeps the reset clock). Its constants
 * (PLL factors, wait states, bus dividers) come from the profile as EF_CLOCK_* defines in
 * ef_fw_info.h; targets/clock.py computes the same clock tree from the same constants.
 * Every register access goes through EF_REG so the host tests can run a driver against a
 * simulated register block (tests/c/test_clock_init.py). */
#ifndef EF_CLOCK_H
#define EF_CLOCK_H

#include <stdint.h>

#ifndef EF_REG
#define EF_REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#endif
#ifndef EF_DSB
#define EF_DSB() __asm__ volatile("dsb" ::: "memory")
#define EF_ISB() __asm__ volatile("isb" ::: "memory")
#endif

/* Bring the core to its rated clock; return the core clock in Hz as read back from the
 * clock-tree registers (the clock INFO reports and the counts are measured at). */
uint32_t ef_clock_init(void);
/* Hz of the clock feeding the UART's baud generator (read back likewise). */
uint32_t ef_clock_uart_hz(void);

#endif
