/* RP2040 to 125 MHz: clk_ref from the 12 MHz crystal oscillator, clk_sys from PLL_SYS
 * (12 MHz / REFDIV 1 x FBDIV 125 = VCO 1500 MHz, / POSTDIV1 6 / POSTDIV2 2), clk_peri (UART)
 * from clk_sys. RP2040 datasheet (build 2023-06): 2.16 XOSC (CTRL FREQ_RANGE 1_15MHZ = 0xAA0,
 * ENABLE = 0xFAB, STARTUP DELAY = (12 MHz / 1000 + 128) / 256, STATUS.STABLE bit 31);
 * 2.18.2 PLL programming (reset, REFDIV/FBDIV, power up VCO, wait LOCK, POSTDIV, power up
 * post dividers; VCO 750-1600 MHz, FBDIV 16-320, reference >= 5 MHz); 2.15.7 CLOCKS registers
 * (CLK_REF_CTRL/SELECTED, CLK_SYS_CTRL/SELECTED, CLK_PERI_CTRL); 2.14 RESETS. The QSPI flash
 * clock is clk_sys divided by boot2's SSI divider; the Cortex-M0+ has no FPU or cache. */
#include "ef_clock.h"
#include "ef_fw_info.h"

#define XOSC 0x40024000u
#define CLOCKS 0x40008000u
#define RESETS 0x4000C000u
#define PLL_SYS 0x40028000u
#define CLK_REF_CTRL (CLOCKS + 0x30u)
#define CLK_REF_SELECTED (CLOCKS + 0x38u)
#define CLK_SYS_CTRL (CLOCKS + 0x3Cu)
#define CLK_SYS_SELECTED (CLOCKS + 0x44u)
#define CLK_PERI_CTRL (CLOCKS + 0x48u)
#define RESET_PLL_SYS (1u << 12)

static uint32_t pll_hz(void)
{
    const uint32_t refdiv = EF_REG(PLL_SYS + 0x0u) & 0x3Fu, fbdiv = EF_REG(PLL_SYS + 0x8u);
    const uint32_t prim = EF_REG(PLL_SYS + 0xCu);
    const uint32_t pd = ((prim >> 16) & 7u) * ((prim >> 12) & 7u);
    return refdiv && pd ? (uint32_t)((uint64_t)EF_CLOCK_SOURCE_HZ / refdiv * fbdiv / pd) : 0u;
}

uint32_t ef_clock_init(void)
{
    EF_REG(XOSC + 0x00u) = 0xAA0u;                          /* FREQ_RANGE 1-15 MHz */
    EF_REG(XOSC + 0x0Cu) = (EF_CLOCK_SOURCE_HZ / 1000u + 128u) / 256u;
    EF_REG(XOSC + 0x00u) = 0xAA0u | (0xFABu << 12);         /* ENABLE */
    while (!(EF_REG(XOSC + 0x04u) & (1u << 31))) {
    }
    EF_REG(CLK_SYS_CTRL) &= ~1u;                            /* clk_sys on clk_ref meanwhile */
    while (!(EF_REG(CLK_SYS_SELECTED) & 1u)) {
    }
    EF_REG(CLK_REF_CTRL) = (EF_REG(CLK_REF_CTRL) & ~3u) | 2u;   /* clk_ref = XOSC */
    while (!(EF_REG(CLK_REF_SELECTED) & (1u << 2))) {
    }
    EF_REG(RESETS + 0x0u) |= RESET_PLL_SYS;
    EF_REG(RESETS + 0x0u) &= ~RESET_PLL_SYS;
    while (!(EF_REG(RESETS + 0x8u) & RESET_PLL_SYS)) {
    }
    EF_REG(PLL_SYS + 0x0u) = EF_CLOCK_REFDIV;
    EF_REG(PLL_SYS + 0x8u) = EF_CLOCK_FBDIV;
    EF_REG(PLL_SYS + 0x4u) &= ~((1u << 0) | (1u << 5));     /* PD, VCOPD off */
    while (!(EF_REG(PLL_SYS + 0x0u) & (1u << 31))) {        /* LOCK */
    }
    EF_REG(PLL_SYS + 0xCu) = (EF_CLOCK_POSTDIV1 << 16) | (EF_CLOCK_POSTDIV2 << 12);
    EF_REG(PLL_SYS + 0x4u) &= ~(1u << 3);                   /* POSTDIVPD off */
    EF_REG(CLK_SYS_CTRL) = (EF_REG(CLK_SYS_CTRL) & ~(7u << 5));  /* AUXSRC = pll_sys */
    EF_REG(CLK_SYS_CTRL) |= 1u;                             /* SRC = aux */
    while (!(EF_REG(CLK_SYS_SELECTED) & (1u << 1))) {
    }
    EF_REG(CLK_PERI_CTRL) = (1u << 11);                     /* ENABLE, AUXSRC = clk_sys */
    return (EF_REG(CLK_SYS_CTRL) & 1u) && !(EF_REG(CLK_SYS_CTRL) & (7u << 5)) ? pll_hz() : 0u;
}

uint32_t ef_clock_uart_hz(void)
{
    return EF_REG(CLK_PERI_CTRL) & (1u << 11) ? pll_hz() : 0u;
}
