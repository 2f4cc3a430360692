/* STM32F74x/75x to 216 MHz from HSI through the main PLL, with Over-drive and the
 * Cortex-M7 L1 instruction and data caches. References:
 *   RM0385 Rev 8 (STM32F75xxx/74xxx reference manual):
 *     3.3.2 Read access latency, Table 5: 2.7-3.6 V, 210 < HCLK <= 216 MHz: 7 WS;
 *     4.1.4 Voltage regulator, Over-drive: above 180 MHz, ODEN then ODSWEN, each waited for;
 *     5.3.2 RCC_PLLCFGR: VCO input (HSI / PLLM) 1-2 MHz (2 MHz limits jitter), VCO output
 *           100-432 MHz, SYSCLK <= 216 MHz; 5.3.3 RCC_CFGR: APB1 <= 54 MHz, APB2 <= 108 MHz;
 *     4.4.1 PWR_CR1 (VOS, ODEN, ODSWEN), 4.4.2 PWR_CSR1 (ODRDY, ODSWRDY).
 *   Cortex-M7 TRM / Armv7-M ARM B2.2.7 and CMSIS SCB_EnableICache/SCB_EnableDCache:
 *     invalidate (ICIALLU, DCISW per set and way from CCSIDR), then CCR.IC / CCR.DC.
 * The flash is read at 0x08000000 over AXI, which the L1 caches serve (the ART accelerator
 * only serves the ITCM path at 0x00200000). */
#include "ef_clock.h"
#include "ef_fw_info.h"

#define RCC 0x40023800u
#define RCC_CR (RCC + 0x00u)
#define RCC_PLLCFGR (RCC + 0x04u)
#define RCC_CFGR (RCC + 0x08u)
#define RCC_APB1ENR (RCC + 0x40u)
#define PWR_CR1 0x40007000u
#define PWR_CSR1 0x40007004u
#define FLASH_ACR 0x40023C00u
#define SCB_CCR 0xE000ED14u
#define SCB_CCSIDR 0xE000ED80u
#define SCB_CSSELR 0xE000ED84u
#define SCB_ICIALLU 0xE000EF50u
#define SCB_DCISW 0xE000EF60u

#define CR_HSION (1u << 0)
#define CR_HSIRDY (1u << 1)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define SW_PLL 2u

static uint32_t ppre(uint32_t div)
{
    uint32_t f = 0;
    for (uint32_t d = div; d > 1u; d >>= 1) {
        f++;
    }
    return div <= 1u ? 0u : 3u + f;                         /* 2, 4, 8, 16: 4..7 */
}

static uint32_t apb_div(uint32_t field)
{
    return field < 4u ? 1u : 1u << (field - 3u);
}

static uint32_t hclk_hz(void)
{
    const uint32_t cfgr = EF_REG(RCC_CFGR);
    if (((cfgr >> 2) & 3u) != SW_PLL) {
        return 16000000u;                /* still on the reset clock (HSI) */
    }
    const uint32_t pll = EF_REG(RCC_PLLCFGR);
    const uint32_t m = pll & 0x3Fu, n = (pll >> 6) & 0x1FFu, p = 2u * (((pll >> 16) & 3u) + 1u);
    const uint32_t h = (cfgr >> 4) & 0xFu;                 /* AHB prescaler: left at 1 */
    return h < 8u ? (uint32_t)((uint64_t)EF_CLOCK_SOURCE_HZ / m * n / p) : 0u;
}

static void caches_on(void)
{
    EF_DSB();
    EF_ISB();
    EF_REG(SCB_ICIALLU) = 0u;
    EF_DSB();
    EF_ISB();
    EF_REG(SCB_CCR) |= 1u << 17;                            /* IC */
    EF_DSB();
    EF_ISB();
    EF_REG(SCB_CSSELR) = 0u;                                /* level 1 data cache */
    EF_DSB();
    const uint32_t ccsidr = EF_REG(SCB_CCSIDR);
    const uint32_t sets = (ccsidr >> 13) & 0x7FFFu, ways = (ccsidr >> 3) & 0x3FFu;
    for (uint32_t s = 0; s <= sets; s++) {
        for (uint32_t w = 0; w <= ways; w++) {
            EF_REG(SCB_DCISW) = ((s & 0x1FFu) << 5) | ((w & 3u) << 30);
        }
    }
    EF_DSB();
    EF_REG(SCB_CCR) |= 1u << 16;                            /* DC */
    EF_DSB();
    EF_ISB();
}

uint32_t ef_clock_init(void)
{
    EF_REG(RCC_APB1ENR) |= 1u << 28;                        /* PWREN */
    (void)EF_REG(RCC_APB1ENR);
    EF_REG(RCC_CR) |= CR_HSION;
    while (!(EF_REG(RCC_CR) & CR_HSIRDY)) {
    }
    EF_REG(RCC_CR) &= ~CR_PLLON;
    while (EF_REG(RCC_CR) & CR_PLLRDY) {
    }
    EF_REG(PWR_CR1) |= 3u << 14;                            /* VOS = scale 1, PLL off */
    /* PLLSRC = HSI (bit 22 clear), PLLM, PLLN, PLLP = 2 (P / 2 - 1), PLLQ */
    EF_REG(RCC_PLLCFGR) = EF_CLOCK_PLLM | (EF_CLOCK_PLLN << 6) | ((EF_CLOCK_PLLP / 2u - 1u) << 16)
                          | (EF_CLOCK_PLLQ << 24);
    EF_REG(RCC_CR) |= CR_PLLON;
    while (!(EF_REG(RCC_CR) & CR_PLLRDY)) {
    }
    EF_REG(PWR_CR1) |= 1u << 16;                            /* ODEN */
    while (!(EF_REG(PWR_CSR1) & (1u << 16))) {
    }
    EF_REG(PWR_CR1) |= 1u << 17;                            /* ODSWEN */
    while (!(EF_REG(PWR_CSR1) & (1u << 17))) {
    }
    EF_REG(FLASH_ACR) = (EF_REG(FLASH_ACR) & ~0xFu) | EF_CLOCK_FLASH_WS;
    while ((EF_REG(FLASH_ACR) & 0xFu) != EF_CLOCK_FLASH_WS) {
    }
    EF_REG(RCC_CFGR) = (EF_REG(RCC_CFGR) & ~((0xFu << 4) | (0x3Fu << 10)))
                       | (ppre(EF_CLOCK_APB1_DIV) << 10) | (ppre(EF_CLOCK_APB2_DIV) << 13);
    EF_REG(RCC_CFGR) = (EF_REG(RCC_CFGR) & ~3u) | SW_PLL;
    while (((EF_REG(RCC_CFGR) >> 2) & 3u) != SW_PLL) {
    }
    caches_on();
    return hclk_hz();
}

uint32_t ef_clock_uart_hz(void)
{
    /* USART1/6 on APB2, USART2/3, UART4/5/7/8 on APB1 (kernel clock left at PCLK) */
    const uint32_t cfgr = EF_REG(RCC_CFGR);
    return hclk_hz() / apb_div(EF_CLOCK_UART_APB == 2u ? (cfgr >> 13) & 7u : (cfgr >> 10) & 7u);
}
