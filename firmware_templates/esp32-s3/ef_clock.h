/* Core clock bring-up for the ESP32-S3 (the Xtensa twin of cortex-m/ef_clock.h, same API).
 * Register accesses go through EF_REG so tests/c/test_clock_init.py can run the driver
 * against a simulated register block; on the chip they are volatile word accesses, which
 * xtensa-esp32s3-elf-gcc orders with MEMW (its default -mserialize-volatile). The analog
 * core-voltage registers sit behind the chip's internal I2C bus (REGI2C) and are written
 * through the ESP32-S3 ROM routine ESP-IDF links against; EF_REGI2C_WRITE_MASK and
 * EF_DELAY_US let the host test record those writes and delays. */
#ifndef EF_CLOCK_H
#define EF_CLOCK_H

#include <stdint.h>

#ifndef EF_REG
#define EF_REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#endif
#ifndef EF_REGI2C_WRITE_MASK
void esp_rom_regi2c_write_mask(uint8_t block, uint8_t host_id, uint8_t reg_add, uint8_t msb,
                               uint8_t lsb, uint8_t data);
#define EF_REGI2C_WRITE_MASK esp_rom_regi2c_write_mask
#endif
#ifndef EF_DELAY_US
void esp_rom_delay_us(uint32_t us);
#define EF_DELAY_US esp_rom_delay_us
#endif

/* Bring the core to its rated clock; return the core clock in Hz as read back from the
 * clock-tree registers (the clock INFO reports and the counts are measured at). */
uint32_t ef_clock_init(void);
/* Hz of the clock feeding the UART's baud generator (APB, read back likewise). */
uint32_t ef_clock_uart_hz(void);

#endif
