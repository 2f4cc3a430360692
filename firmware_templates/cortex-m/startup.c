/* Reset handler and vector table for a bare-metal Cortex-M: copy .data from flash, zero
 * .bss, turn the FPU on (hard-float builds), call main. Symbols come from link.ld. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void ef_reset_handler(void);
void ef_default_handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("ef_default_handler")));

void ef_default_handler(void)
{
    for (;;) {
    }
}

void ef_reset_handler(void)
{
    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
#if defined(__ARM_FP)
    /* CPACR: full access to CP10/CP11 before any floating-point instruction runs */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    (void)main();
    for (;;) {
    }
}

typedef void (*ef_vector)(void);

/* core exceptions only: the firmware polls its UART and uses no peripheral interrupts */
__attribute__((section(".isr_vector"), used))
static const ef_vector ef_vectors[16] = {
    (ef_vector)(uintptr_t)&_estack,   /* initial stack pointer */
    ef_reset_handler,
    ef_default_handler,               /* NMI */
    ef_default_handler,               /* HardFault */
    ef_default_handler,               /* MemManage */
    ef_default_handler,               /* BusFault */
    ef_default_handler,               /* UsageFault */
    0, 0, 0, 0,
    ef_default_handler,               /* SVCall */
    ef_default_handler,               /* DebugMonitor */
    0,
    ef_default_handler,               /* PendSV */
    SysTick_Handler,
};
