/* STM32L4+ (STM32L4R5/S5/R7/S7/R9/S9) to 120 MHz from HSI16 through the main PLL.
 * References, RM0432 Rev 9 (STM32L4+ reference manual):
 *   5.1.8 Dynamic voltage scaling management: above 80 MHz the core needs Range 1 boost
 *         (PWR_CR5.R1MODE = 0), entered with HCLK divided by 2, then 1 us later undivided;
 *   3.3.3 Read access latency, Table 12: Range 1 boost, 100 < HCLK <= 120 MHz: 5 WS;
 *   6.2.5 PLL: VCO input (HSI16 / PLLM) 2.66-16 MHz, VCO output 64-344 MHz, PLLR <= 120 MHz;
 *   6.4.1 RCC_CR, 6.4.3 RCC_CFGR, 6.4.4 RCC_PLLCFGR; 3.7.1 FLASH_ACR; 5.4.1/5.4.5/5.4.20
 *         PWR_CR1, PWR_SR2, PWR_CR5.
 * The FPU is enabled by startup.c (CPACR); the flash ART path (prefetch, I- and D-cache) is
 * switched on with the wait states. */
#include "ef_clock.h"
#include "ef_fw_info.h"

#define RCC 0x40021000u
#define RCC_CR (RCC + 0x00u)
#define RCC_CFGR (RCC + 0x08u)
#define RCC_PLLCFGR (RCC + 0x0Cu)
#define RCC_APB1ENR1 (RCC + 0x58u)
#define PWR_SR2 0x40007014u
#define PWR_CR5 0x40007080u
#define FLASH_ACR 0x40022000u

#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define SW_PLL 3u

/* divider -> RCC_CFGR HPRE / PPRE field (RM0432 6.4.3) */
static uint32_t hpre(uint32_t div)
{
    uint32_t f = 0;
    for (uint32_t d = div; d > 1u; d >>= 1) {
        f++;
    }
    return div <= 1u ? 0u : (f <= 4u ? 7u + f : 6u + f);   /* 2..16: 8..11, 64..512: 12..15 */
}

static uint32_t ppre(uint32_t div)
{
    uint32_t f = 0;
    for (uint32_t d = div; d > 1u; d >>= 1) {
        f++;
    }
    return div <= 1u ? 0u : 3u + f;                         /* 2, 4, 8, 16: 4..7 */
}

static uint32_t ahb_div(uint32_t field)
{
    static const uint16_t d[8] = {2, 4, 8, 16, 64, 128, 256, 512};
    return field < 8u ? 1u : d[field - 8u];
}

static uint32_t apb_div(uint32_t field)
{
    return field < 4u ? 1u : 1u << (field - 3u);
}

static uint32_t sysclk_hz(void)
{
    const uint32_t cfgr = EF_REG(RCC_CFGR);
    if (((cfgr >> 2) & 3u) != SW_PLL) {
        return 4000000u;                 /* still on the reset clock (MSI 4 MHz) */
    }
    const uint32_t pll = EF_REG(RCC_PLLCFGR);
    const uint32_t m = ((pll >> 4) & 0xFu) + 1u, n = (pll >> 8) & 0x7Fu;
    const uint32_t r = 2u * (((pll >> 25) & 3u) + 1u);
    return (uint32_t)((uint64_t)EF_CLOCK_SOURCE_HZ / m * n / r);
}

uint32_t ef_clock_init(void)
{
    EF_REG(RCC_APB1ENR1) |= 1u << 28;                       /* PWREN */
    (void)EF_REG(RCC_APB1ENR1);
    EF_REG(RCC_CR) |= CR_HSION;
    while (!(EF_REG(RCC_CR) & CR_HSIRDY)) {
    }
    /* Range 1 boost (5.1.8): HCLK / 2 first, then R1MODE = 0, wait VOSF = 0 */
    EF_REG(RCC_CFGR) = (EF_REG(RCC_CFGR) & ~(0xFu << 4)) | (8u << 4);
    EF_REG(PWR_CR5) &= ~(1u << 8);
    while (EF_REG(PWR_SR2) & (1u << 10)) {
    }
    /* wait states before the clock rises (3.3.3); prefetch and ART caches on */
    EF_REG(FLASH_ACR) = (EF_REG(FLASH_ACR) & ~0xFu) | EF_CLOCK_FLASH_WS | (7u << 8);
    while ((EF_REG(FLASH_ACR) & 0xFu) != EF_CLOCK_FLASH_WS) {
    }
    EF_REG(RCC_CR) &= ~CR_PLLON;
    while (EF_REG(RCC_CR) & CR_PLLRDY) {
    }
    /* PLLSRC = HSI16 (2), PLLM - 1, PLLN, PLLR = 2 (R - 1) with PLLREN */
    EF_REG(RCC_PLLCFGR) = 2u | ((EF_CLOCK_PLLM - 1u) << 4) | (EF_CLOCK_PLLN << 8)
                          | (1u << 24) | ((EF_CLOCK_PLLR / 2u - 1u) << 25);
    EF_REG(RCC_CR) |= CR_PLLON;
    while (!(EF_REG(RCC_CR) & CR_PLLRDY)) {
    }
    EF_REG(RCC_CFGR) = (EF_REG(RCC_CFGR) & ~(0x3Fu << 8)) | (ppre(EF_CLOCK_APB1_DIV) << 8)
                       | (ppre(EF_CLOCK_APB2_DIV) << 11);
    EF_REG(RCC_CFGR) = (EF_REG(RCC_CFGR) & ~3u) | SW_PLL;
    while (((EF_REG(RCC_CFGR) >> 2) & 3u) != SW_PLL) {
    }
    /* at least 1 us at HCLK / 2 (5.1.8) before the undivided clock: 64 loop trips */
    for (volatile uint32_t i = 0; i < 64u; i++) {
    }
    EF_REG(RCC_CFGR) = (EF_REG(RCC_CFGR) & ~(0xFu << 4)) | (hpre(EF_CLOCK_AHB_DIV) << 4);
    return sysclk_hz() / ahb_div((EF_REG(RCC_CFGR) >> 4) & 0xFu);
}

uint32_t ef_clock_uart_hz(void)
{
    const uint32_t cfgr = EF_REG(RCC_CFGR);
    const uint32_t hclk = sysclk_hz() / ahb_div((cfgr >> 4) & 0xFu);
    /* LPUART1 / USART2-5 on APB1, USART1 on APB2 (their kernel clock left at PCLK) */
    return hclk / apb_div(EF_CLOCK_UART_APB == 2u ? (cfgr >> 11) & 7u : (cfgr >> 8) & 7u);
}
