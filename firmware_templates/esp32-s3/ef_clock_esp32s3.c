/* ESP32-S3 to 240 MHz: CPU_CLK = PLL 480 MHz / 2, as ESP-IDF's rtc_clk_cpu_freq_to_pll_mhz()
 * (components/esp_hw_support/port/esp32s3/rtc_clk.c) does it. ESP32-S3 TRM, Reset and Clock
 * chapter: CPU_CLK from SYSTEM_SOC_CLK_SEL (0 XTAL, 1 PLL), SYSTEM_PLL_FREQ_SEL (1 = 480 MHz)
 * and SYSTEM_CPUPERIOD_SEL (0/1/2 = 80/160/240 MHz on the 480 MHz PLL); register addresses
 * and fields as in the TRM's register summaries: SYSTEM_CPU_PER_CONF_REG 0x600C0010,
 * SYSTEM_SYSCLK_CONF_REG 0x600C0060 (PRE_DIV_CNT 9:0, SOC_CLK_SEL 11:10), RTC_CNTL_DATE_REG
 * 0x600081FC (SLAVE_PD 18:13), SPI_MEM_CLOCK_REG(0) 0x60003014, SPI_MEM_CORE_CLK_SEL_REG(0)
 * 0x600030EC.
 *
 * Entry state: an app image at 0x10000 is started by ESP-IDF's second-stage bootloader,
 * which has already powered and calibrated the BBPLL at 480 MHz and runs the CPU from it at
 * 80 MHz, the flash on the PLL-derived MSPI core clock. So what is left is what rtc_clk does
 * to go up to 240 MHz on the same PLL:
 *   1. raise the core voltage first (240 MHz needs it): digital and RTC LDO DBIAS through
 *      REGI2C block I2C_DIG_REG (0x6D, host 1: EXT_RTC_DREG reg 4, EXT_DIG_DREG reg 6, bits
 *      4:0), then wait 40 us for it to settle; switch all six LDO slaves on (SLAVE_PD = 0);
 *   2. CPUPERIOD_SEL = 2, CPU pre-divider 1, SOC_CLK_SEL = PLL;
 *   3. flash timing: the MSPI core clock is taken from the PLL, not from CPU_CLK, so it does
 *      not change with the CPU; it is set (as mspi_timing_enter_high_speed_mode does after a
 *      switch) to EF_CLOCK_MSPI_CORE_MHZ with SPI0's divider giving EF_CLOCK_FLASH_MHZ. At
 *      80 MHz STR no sampling-delay tuning is needed (ESP-IDF tunes only above that). This
 *      firmware keeps everything in internal SRAM, so PSRAM is left as the bootloader set it.
 * The code must run from IRAM while the flash clock changes; an Xtensa template would place
 * it there (ESP-IDF's IRAM_ATTR). If the bootloader left the CPU on the 40 MHz crystal, the
 * BBPLL is not calibrated and nothing is changed: the clock read back then says so. */
#include "ef_clock.h"
#include "ef_fw_info.h"

#define SYSTEM_CPU_PER_CONF 0x600C0010u
#define SYSTEM_SYSCLK_CONF 0x600C0060u
#define RTC_CNTL_DATE 0x600081FCu
#define SPI0_CLOCK 0x60003014u
#define SPI0_CORE_CLK_SEL 0x600030ECu
#define XTAL_HZ 40000000u

#define CPUPERIOD_SEL_MASK 3u
#define PLL_FREQ_SEL (1u << 2)
#define PRE_DIV_CNT_MASK 0x3FFu
#define SOC_CLK_SEL_SHIFT 10
#define SOC_CLK_SEL_MASK (3u << SOC_CLK_SEL_SHIFT)
#define SOC_CLK_SEL_PLL 1u
#define SLAVE_PD_SHIFT 13
#define SLAVE_PD_MASK (0x3Fu << SLAVE_PD_SHIFT)
#define CLK_EQU_SYSCLK (1u << 31)

#define I2C_DIG_REG 0x6Du
#define I2C_DIG_REG_HOSTID 1u
#define EXT_RTC_DREG 4u
#define EXT_DIG_DREG 6u

static uint32_t on_pll(void)
{
    return ((EF_REG(SYSTEM_SYSCLK_CONF) & SOC_CLK_SEL_MASK) >> SOC_CLK_SEL_SHIFT)
           == SOC_CLK_SEL_PLL;
}

static uint32_t cpu_hz(void)
{
    const uint32_t per = EF_REG(SYSTEM_CPU_PER_CONF);
    const uint32_t sel = per & CPUPERIOD_SEL_MASK;
    if (!on_pll()) {
        return XTAL_HZ / ((EF_REG(SYSTEM_SYSCLK_CONF) & PRE_DIV_CNT_MASK) + 1u);
    }
    if (per & PLL_FREQ_SEL) {                        /* 480 MHz: / 6, 3, 2 */
        return sel == 0u ? 80000000u : sel == 1u ? 160000000u : sel == 2u ? 240000000u : 0u;
    }
    return sel == 0u ? 80000000u : sel == 1u ? 160000000u : 0u;   /* 320 MHz: / 4, 2 */
}

/* the CPU clock CPUPERIOD_SEL gives on the profile's PLL, in MHz (reserved: 0) */
#define TARGET_MHZ (EF_CLOCK_PLL_HZ == 480000000u                                      \
                    ? (EF_CLOCK_CPUPERIOD_SEL == 2u ? 240u : EF_CLOCK_CPUPERIOD_SEL == 1u \
                       ? 160u : EF_CLOCK_CPUPERIOD_SEL == 0u ? 80u : 0u)                  \
                    : (EF_CLOCK_CPUPERIOD_SEL == 1u ? 160u : EF_CLOCK_CPUPERIOD_SEL == 0u \
                       ? 80u : 0u))

uint32_t ef_clock_init(void)
{
    const uint32_t pll_is_480 = (EF_REG(SYSTEM_CPU_PER_CONF) & PLL_FREQ_SEL) != 0u;
    if (!on_pll() || pll_is_480 != (EF_CLOCK_PLL_HZ == 480000000u) || TARGET_MHZ == 0u) {
        return cpu_hz();                             /* BBPLL not as the profile expects */
    }
    if (TARGET_MHZ == 240u) {                        /* voltage up before the clock */
        EF_REGI2C_WRITE_MASK(I2C_DIG_REG, I2C_DIG_REG_HOSTID, EXT_RTC_DREG, 4, 0,
                             EF_CLOCK_RTC_DBIAS);
        EF_REGI2C_WRITE_MASK(I2C_DIG_REG, I2C_DIG_REG_HOSTID, EXT_DIG_DREG, 4, 0,
                             EF_CLOCK_DIG_DBIAS);
        EF_DELAY_US(40u);
    }
    /* ESP-IDF: SLAVE_PD = DEFAULT_LDO_SLAVE (0x7) >> (MHz / 80): all slaves on at 240 MHz */
    EF_REG(RTC_CNTL_DATE) = (EF_REG(RTC_CNTL_DATE) & ~SLAVE_PD_MASK)
                            | ((0x7u >> (TARGET_MHZ / 80u)) << SLAVE_PD_SHIFT);
    EF_REG(SYSTEM_CPU_PER_CONF) = (EF_REG(SYSTEM_CPU_PER_CONF) & ~CPUPERIOD_SEL_MASK)
                                  | EF_CLOCK_CPUPERIOD_SEL;
    EF_REG(SYSTEM_SYSCLK_CONF) = (EF_REG(SYSTEM_SYSCLK_CONF)
                                  & ~(PRE_DIV_CNT_MASK | SOC_CLK_SEL_MASK))
                                 | (SOC_CLK_SEL_PLL << SOC_CLK_SEL_SHIFT);
    /* SPI_MEM_CORE_CLK_SEL: 0/1/2/3 = 80/120/160/240 MHz */
    EF_REG(SPI0_CORE_CLK_SEL) = (EF_REG(SPI0_CORE_CLK_SEL) & ~3u)
        | (EF_CLOCK_MSPI_CORE_MHZ == 80u ? 0u : EF_CLOCK_MSPI_CORE_MHZ == 120u ? 1u
           : EF_CLOCK_MSPI_CORE_MHZ == 160u ? 2u : 3u);
    {
        const uint32_t div = EF_CLOCK_MSPI_CORE_MHZ / EF_CLOCK_FLASH_MHZ;
        /* CLKCNT_N = div - 1 (period), H = div / 2 - 1 (high phase), L = div - 1 */
        EF_REG(SPI0_CLOCK) = div == 1u ? CLK_EQU_SYSCLK
            : ((div - 1u) << 16) | ((div / 2u - 1u) << 8) | (div - 1u);
    }
    return cpu_hz();
}

uint32_t ef_clock_uart_hz(void)
{
    return on_pll() ? 80000000u : cpu_hz();        /* APB: 80 MHz on the PLL (TRM 7.2.3) */
}
