"""The clock tree a board profile's [clock] table sets up, computed from the same constants
the firmware's ef_clock_<driver>.c receives (as EF_CLOCK_* defines), and checked against the
vendor's limits before a build: a profile whose PLL would run out of range, or whose flash
wait states are too few for its clock, is refused with the numbers.

Limits, per reference manual (the section numbers are cited in each C driver):
- stm32l4 (RM0432, STM32L4+): VCO input 2.66-16 MHz, VCO output 64-344 MHz, SYSCLK <= 120 MHz
  in Range 1 boost; flash: one wait state per 20 MHz (Table 12, Range 1 boost).
- stm32f7 (RM0385, STM32F74x/75x): VCO input 1-2 MHz, VCO output 100-432 MHz, SYSCLK <= 216
  MHz (Over-drive), APB1 <= 54 MHz, APB2 <= 108 MHz; flash: one wait state per 30 MHz at
  2.7-3.6 V (Table 5).
- rp2040 (RP2040 datasheet 2.18): reference / REFDIV >= 5 MHz, FBDIV 16-320, VCO 750-1600 MHz,
  post dividers 1-7; clk_sys <= 133 MHz.
- nrf52 (nRF52840 PS): the core runs at a fixed 64 MHz.
- esp32s3 (ESP32-S3 TRM 7.2): CPU = PLL (480 MHz) / 2, 3 or 6 -> 240, 160, 80 MHz; at 240
  MHz the digital/RTC LDO DBIAS at least ESP-IDF's 28 (rtc_init.c; 5-bit field); SPI0's MSPI
  core clock 80/120/160/240 MHz, divided by an integer down to the flash clock (<= 120 MHz).
"""
from __future__ import annotations

import math
from typing import Any

from edgeforge.errors import BuildError

DRIVERS = ("none", "stm32l4", "stm32f7", "nrf52", "rp2040", "esp32s3")


def _need(c: dict[str, Any], *keys: str) -> list[int]:
    missing = [k for k in keys if not isinstance(c.get(k), int)]
    if missing:
        raise BuildError(f"[clock] {c.get('driver')}: missing integer field(s) {missing}")
    return [int(c[k]) for k in keys]


def tree(board: Any) -> dict[str, float]:
    """{core_hz, uart_hz, vco_hz, ...} the profile's [clock] constants produce, and the
    flash wait states the vendor's table requires at that clock (flash_ws_min)."""
    c = dict(getattr(board, "clock", {}) or {})
    driver = c.get("driver", "none")
    if driver == "none":
        return {"core_hz": board.clock_hz, "uart_hz": board.clock_hz}
    if driver == "stm32l4":
        src, m, n, r, ws, ahb, apb1, apb2, uart_apb = _need(
            c, "source_hz", "pllm", "plln", "pllr", "flash_ws", "ahb_div", "apb1_div",
            "apb2_div", "uart_apb")
        vin = src / m
        vco = vin * n
        core = vco / r / ahb
        return {"core_hz": core, "vco_in_hz": vin, "vco_hz": vco, "flash_ws": ws,
                "flash_ws_min": math.ceil(core / 20e6) - 1,
                "uart_hz": core / (apb2 if uart_apb == 2 else apb1)}
    if driver == "stm32f7":
        src, m, n, p, q, ws, apb1, apb2, uart_apb = _need(
            c, "source_hz", "pllm", "plln", "pllp", "pllq", "flash_ws", "apb1_div", "apb2_div",
            "uart_apb")
        vin = src / m
        vco = vin * n
        core = vco / p
        return {"core_hz": core, "vco_in_hz": vin, "vco_hz": vco, "usb_hz": vco / q,
                "flash_ws": ws, "flash_ws_min": math.ceil(core / 30e6) - 1,
                "apb1_hz": core / apb1, "apb2_hz": core / apb2,
                "uart_hz": core / (apb2 if uart_apb == 2 else apb1)}
    if driver == "nrf52":
        return {"core_hz": 64e6, "uart_hz": 16e6}
    if driver == "rp2040":
        src, refdiv, fbdiv, pd1, pd2 = _need(c, "source_hz", "refdiv", "fbdiv", "postdiv1",
                                             "postdiv2")
        vco = src / refdiv * fbdiv
        core = vco / (pd1 * pd2)
        return {"core_hz": core, "vco_in_hz": src / refdiv, "vco_hz": vco, "uart_hz": core,
                "fbdiv": fbdiv, "postdiv1": pd1, "postdiv2": pd2}
    if driver == "esp32s3":
        pll, sel = _need(c, "pll_hz", "cpuperiod_sel")
        div = {0: 6, 1: 3, 2: 2}.get(sel, 0) if pll == 480_000_000 else {0: 4, 1: 2}.get(sel, 0)
        if not div:
            raise BuildError(f"[clock] esp32s3: CPUPERIOD_SEL {sel} with a {pll / 1e6:g} MHz "
                             "PLL is reserved (ESP32-S3 TRM 7.2)")
        dig, rtc, core, flash = _need(c, "dig_dbias", "rtc_dbias", "mspi_core_mhz",
                                      "flash_mhz")
        return {"core_hz": pll / div, "uart_hz": 80e6, "dig_dbias": dig, "rtc_dbias": rtc,
                "mspi_core_hz": core * 1e6, "flash_hz": flash * 1e6}
    raise BuildError(f"[clock] driver {driver!r} unknown; one of {', '.join(DRIVERS)}")


def check(board: Any) -> dict[str, float]:
    """The clock tree, after checking it against the vendor's limits and board.clock_hz."""
    t = tree(board)
    driver = (getattr(board, "clock", {}) or {}).get("driver", "none")
    bad = []

    def within(key: str, lo: float, hi: float) -> None:
        v = t[key]
        if not lo <= v <= hi:
            bad.append(f"{key} {v / 1e6:g} MHz outside {lo / 1e6:g}-{hi / 1e6:g} MHz")

    if driver == "stm32l4":
        within("vco_in_hz", 2.66e6, 16e6)
        within("vco_hz", 64e6, 344e6)
        within("core_hz", 0, 120e6)
    elif driver == "stm32f7":
        within("vco_in_hz", 0.95e6, 2.1e6)
        within("vco_hz", 100e6, 432e6)
        within("core_hz", 0, 216e6)
        within("apb1_hz", 0, 54e6)
        within("apb2_hz", 0, 108e6)
    elif driver == "rp2040":
        within("vco_in_hz", 5e6, 800e6)
        within("vco_hz", 750e6, 1600e6)
        within("core_hz", 0, 133e6)
        if not (16 <= t["fbdiv"] <= 320 and 1 <= t["postdiv1"] <= 7 and 1 <= t["postdiv2"] <= 7):
            bad.append("FBDIV 16-320 and post dividers 1-7")
    elif driver == "esp32s3":
        if t["core_hz"] == 240e6 and not (28 <= min(t["dig_dbias"], t["rtc_dbias"])
                                          and max(t["dig_dbias"], t["rtc_dbias"]) <= 31):
            bad.append("240 MHz needs dig_dbias and rtc_dbias 28-31 (ESP-IDF's 240 MHz "
                       "core voltage)")
        core, flash = t["mspi_core_hz"], t["flash_hz"]
        if core not in (80e6, 120e6, 160e6, 240e6) or not 0 < flash <= 120e6 \
                or core % flash:
            bad.append(f"MSPI core {core / 1e6:g} MHz / flash {flash / 1e6:g} MHz: core one "
                       "of 80/120/160/240, flash <= 120 and an integer divisor of it")
    uart = getattr(board, "uart", {}) or {}
    if uart.get("driver") == "stm32-usart" and uart.get("baud"):
        # the baud divider must fit its register at this bus clock (RM0432 / RM0385: LPUART
        # BRR 0x300-0xFFFFF at 256 * f / baud, USART BRR 16-0xFFFF at f / baud)
        scale = int(uart.get("brr_scale", 1))
        brr = round(t["uart_hz"] * scale / uart["baud"])
        lo, hi = (0x300, 0xFFFFF) if scale == 256 else (16, 0xFFFF)
        if not lo <= brr <= hi:
            bad.append(f"UART divider {brr} at {t['uart_hz'] / 1e6:g} MHz and {uart['baud']} "
                       f"baud outside {lo}-{hi}")
    if "flash_ws" in t and t["flash_ws"] < t["flash_ws_min"]:
        bad.append(f"{t['flash_ws']:g} flash wait states at {t['core_hz'] / 1e6:g} MHz "
                   f"(needs {t['flash_ws_min']:g})")
    if round(t["core_hz"]) != board.clock_hz:
        bad.append(f"its PLL gives {t['core_hz'] / 1e6:g} MHz but clock_hz is "
                   f"{board.clock_hz / 1e6:g} MHz")
    if bad:
        raise BuildError(f"board {board.name}: [clock] {driver}: " + "; ".join(bad))
    return t


def defines(board: Any) -> dict[str, int]:
    """EF_CLOCK_<FIELD> for ef_fw_info.h: every integer of the [clock] table."""
    c = getattr(board, "clock", {}) or {}
    return {f"EF_CLOCK_{k.upper()}": int(v) for k, v in c.items()
            if isinstance(v, int) and not isinstance(v, bool)}
