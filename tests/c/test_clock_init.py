"""Each board's clock bring-up (firmware_templates/cortex-m/ef_clock_<driver>.c), compiled on
the host against a simulated register block, must leave the clock tree at the board's rated
clock: the final register values are decoded here, independently of the C, with the field
layouts of the vendor's reference manual; the order of the writes is checked where the
manual demands one (wait states before the faster clock, Over-drive before 216 MHz); and
targets/clock.py, which computes the same tree from the profile's constants, refuses
profiles outside the vendor's limits.

The simulated block stores every register the driver touches; a small model per chip sets
the status bits the hardware would (ready flags follow enables, switch status follows
switch), and every change is logged in order.
"""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from edgeforge.errors import BuildError
from edgeforge.targets import clock
from edgeforge.targets.board import load_board
from tests.conftest import require

TEMPLATES = Path(__file__).resolve().parents[2] / "firmware_templates"
TEMPLATE = TEMPLATES / "cortex-m"
# the template a driver belongs to (the one its board's build would compile it from)
DRIVER_TEMPLATE = {"esp32s3": TEMPLATES / "esp32-s3"}

HARNESS = r"""
#include <stdint.h>
#include <stdio.h>
#include "ef_clock.h"
#define NREG 512
static uint32_t addr[NREG], val[NREG], snap[NREG];
static int n;
static uint32_t *find(uint32_t a);
static void hw(uint32_t a, uint32_t v);
MODEL
static uint32_t *find(uint32_t a)
{
    for (int i = 0; i < n; i++) {
        if (addr[i] == a) {
            return &val[i];
        }
    }
    addr[n] = a;
    val[n] = INIT(a);
    snap[n] = val[n];
    return &val[n++];
}
static void hw(uint32_t a, uint32_t v)   /* a status bit the hardware sets: not a write */
{
    uint32_t *p = find(a);
    *p = v;
    snap[p - val] = v;
}
volatile uint32_t *ef_sim_reg(uint32_t a)
{
    for (int i = 0; i < n; i++) {
        if (val[i] != snap[i]) {
            printf("W %08x %08x\n", addr[i], val[i]);
            snap[i] = val[i];
        }
    }
    model();
    return find(a);
}
int main(void)
{
    uint32_t core = ef_clock_init();
    uint32_t uart = ef_clock_uart_hz();
    (void)ef_sim_reg(0);
    for (int i = 0; i < n; i++) {
        printf("R %08x %08x\n", addr[i], val[i]);
    }
    printf("HZ %u %u\n", core, uart);
    return 0;
}
"""

# per chip: the reset values that matter and the hardware's answers to the driver
MODELS = {
    "stm32l4": """
/* reset values: RCC_CR MSI on and ready, PWR_CR5.R1MODE = 1 (Range 1 normal) */
#define INIT(a) ((a) == 0x40021000u ? 0x63u : (a) == 0x40007080u ? 0x100u : 0u)
static void model(void)
{
    uint32_t cr = *find(0x40021000u), cfgr = *find(0x40021008u);
    hw(0x40021000u, (cr & ~((1u << 10) | (1u << 25))) | ((cr & (1u << 8)) << 2)
                    | ((cr & (1u << 24)) << 1));
    hw(0x40021008u, (cfgr & ~0xCu) | ((cfgr & 3u) << 2));
    hw(0x40007014u, 0u);                             /* PWR_SR2.VOSF: done at once */
}
""",
    "stm32f7": """
/* reset values: RCC_CR HSI on and ready; DCISW (write-only) reads as all ones here, so a
 * write of 0 (set 0, way 0) shows as a change */
#define INIT(a) ((a) == 0x40023800u ? 0x83u : (a) == 0xE000EF60u ? 0xFFFFFFFFu : 0u)
static void model(void)
{
    uint32_t cr = *find(0x40023800u), cfgr = *find(0x40023808u), cr1 = *find(0x40007000u);
    hw(0x40023800u, (cr & ~((1u << 1) | (1u << 25))) | ((cr & 1u) << 1) | ((cr & (1u << 24)) << 1));
    hw(0x40023808u, (cfgr & ~0xCu) | ((cfgr & 3u) << 2));
    hw(0x40007004u, cr1 & (3u << 16));               /* ODRDY / ODSWRDY follow ODEN / ODSWEN */
    hw(0xE000ED80u, (31u << 13) | (3u << 3) | 1u);   /* CCSIDR: 4 KB, 4 ways, 32 B lines */
}
""",
    "nrf52": """
#define INIT(a) 0u
static void model(void)
{
    if (*find(0x40000000u) == 1u) {                  /* TASKS_HFCLKSTART */
        hw(0x40000100u, 1u);
        hw(0x4000040Cu, 0x10001u);                   /* HFCLKSTAT: Xtal, running */
    }
}
""",
    "rp2040": """
#define INIT(a) ((a) == 0x4000C000u ? 0x01FFFFFFu : (a) == 0x40028004u ? 0x2Du : \
                 (a) == 0x40028000u ? 1u : 0u)
static void model(void)
{
    uint32_t ctrl = *find(0x40024000u), pwr = *find(0x40028004u), cs = *find(0x40028000u);
    hw(0x40024004u, ((ctrl >> 12) & 0xFFFu) == 0xFABu ? 1u << 31 : 0u);
    hw(0x40008044u, 1u << (*find(0x4000803Cu) & 1u));        /* CLK_SYS_SELECTED */
    hw(0x40008038u, 1u << (*find(0x40008030u) & 3u));        /* CLK_REF_SELECTED */
    hw(0x4000C008u, ~*find(0x4000C000u));                    /* RESET_DONE */
    hw(0x40028000u, (cs & ~(1u << 31)) | ((pwr & 0x21u) == 0u ? 1u << 31 : 0u));
}
""",
    # as ESP-IDF's second-stage bootloader leaves it: CPU at 80 MHz on the calibrated 480 MHz
    # BBPLL (EF_SIM_XTAL: still on the 40 MHz crystal), 3 LDO slaves off, flash at 20 MHz.
    # The REGI2C analog writes and ROM delays are logged in order with the register writes.
    "esp32s3": """
#ifdef EF_SIM_XTAL
#define SYSCLK 0x28000u
#else
#define SYSCLK 0x28400u
#endif
#define INIT(a) ((a) == 0x600C0010u ? 0x4u : (a) == 0x600C0060u ? SYSCLK : \\
                 (a) == 0x600081FCu ? (3u << 13) : (a) == 0x60003014u ? 0x00030103u : 0u)
static void model(void)   /* no ready flags to model: the CPU clock mux switches at once */
{
    (void)hw;
}
void sim_regi2c(uint8_t block, uint8_t host, uint8_t reg, uint8_t msb, uint8_t lsb, uint8_t v)
{
    (void)ef_sim_reg(0);
    printf("I %x %u %u %u %u %u\\n", block, host, reg, msb, lsb, v);
}
void sim_delay_us(uint32_t us)
{
    (void)ef_sim_reg(0);
    printf("D %u\\n", us);
}
""",
}

BOARDS = {"nucleo-l4r5zi": "stm32l4", "stm32f746g-disco": "stm32f7", "nrf52840-dk": "nrf52",
          "rpi-pico": "rp2040"}


@dataclasses.dataclass
class Run:
    writes: list[tuple[int, int]]
    regs: dict[int, int]
    core_hz: int
    uart_hz: int
    # REGI2C writes and delays, each with the number of register writes logged before it
    analog: list[tuple[int, str, tuple[int, ...]]] = dataclasses.field(default_factory=list)

    def first(self, a: int, pred) -> int:
        """Index of the first write to register a whose value satisfies pred."""
        return next(i for i, (w, v) in enumerate(self.writes) if w == a and pred(v))


def run_driver(board_name: str, tmp_path: Path, cflags: tuple[str, ...] = ()) -> Run:
    require("gcc")
    b = load_board(board_name)
    driver = b.clock["driver"]
    template = DRIVER_TEMPLATE.get(driver, TEMPLATE)
    (tmp_path / "ef_fw_info.h").write_text(
        "".join(f"#define {k} {v}u\n" for k, v in clock.defines(b).items()))
    (tmp_path / "sim.c").write_text(HARNESS.replace("MODEL", MODELS[driver]))
    (tmp_path / "decl.h").write_text(
        "volatile uint32_t *ef_sim_reg(uint32_t a);\n"
        "void sim_regi2c(uint8_t, uint8_t, uint8_t, uint8_t, uint8_t, uint8_t);\n"
        "void sim_delay_us(uint32_t us);\n")
    exe = tmp_path / "sim"
    r = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
                        "-DEF_REG(a)=(*ef_sim_reg((uint32_t)(a)))", "-DEF_DSB()=", "-DEF_ISB()=",
                        "-DEF_REGI2C_WRITE_MASK=sim_regi2c", "-DEF_DELAY_US=sim_delay_us", *cflags,
                        "-include", "stdint.h", "-include", str(tmp_path / "decl.h"),
                        f"-I{tmp_path}", f"-I{template}", str(tmp_path / "sim.c"),
                        str(template / f"ef_clock_{driver}.c"), "-o", str(exe)],
                       timeout=60, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10, check=True)
    writes, regs, hz, analog = [], {}, (0, 0), []
    for line in out.stdout.splitlines():
        tag, *f = line.split()
        if tag == "W":
            writes.append((int(f[0], 16), int(f[1], 16)))
        elif tag == "R":
            regs[int(f[0], 16)] = int(f[1], 16)
        elif tag == "HZ":
            hz = (int(f[0]), int(f[1]))
        elif tag in ("I", "D"):    # block in hex, the rest decimal
            analog.append((len(writes), tag, tuple(int(x, 16 if (tag, i) == ("I", 0) else 10)
                                                    for i, x in enumerate(f))))
    return Run(writes, regs, *hz, analog)


def test_stm32l4r5_runs_at_120_mhz_in_boost_with_5_wait_states(tmp_path):
    r = run_driver("nucleo-l4r5zi", tmp_path)
    pll = r.regs[0x4002100C]
    assert pll & 3 == 2 and pll >> 24 & 1                     # PLLSRC = HSI16, PLLREN
    m, n, div_r = (pll >> 4 & 0xF) + 1, pll >> 8 & 0x7F, 2 * ((pll >> 25 & 3) + 1)
    sysclk = 16_000_000 // m * n // div_r
    cfgr = r.regs[0x40021008]
    assert cfgr & 3 == 3 and cfgr >> 4 & 0xF < 8                # on the PLL, HCLK undivided
    assert sysclk == r.core_hz == 120_000_000 == load_board("nucleo-l4r5zi").clock_hz
    assert r.uart_hz == 120_000_000                            # LPUART1 on PCLK1
    acr = r.regs[0x40022000]
    assert acr & 0xF == 5 and acr >> 8 & 7 == 7                # 5 WS, prefetch, I/D cache
    assert not r.regs[0x40007080] >> 8 & 1                     # R1MODE = 0: Range 1 boost
    switch = r.first(0x40021008, lambda v: v & 3 == 3)
    assert r.first(0x40022000, lambda v: v & 0xF == 5) < switch
    assert r.first(0x40007080, lambda v: not v >> 8 & 1) < switch
    # HCLK / 2 while switching, / 1 only after (RM0432 5.1.8)
    assert r.writes[switch][1] >> 4 & 0xF == 8
    assert r.first(0x40021008, lambda v: v & 3 == 3 and v >> 4 & 0xF == 0) > switch


def test_stm32f746_runs_at_216_mhz_with_overdrive_and_caches(tmp_path):
    r = run_driver("stm32f746g-disco", tmp_path)
    pll = r.regs[0x40023804]
    assert not pll >> 22 & 1                                   # PLLSRC = HSI
    m, n, p = pll & 0x3F, pll >> 6 & 0x1FF, 2 * ((pll >> 16 & 3) + 1)
    assert 16_000_000 // m * n // p == r.core_hz == 216_000_000
    assert 16_000_000 // m * n // (pll >> 24 & 0xF) == 48_000_000
    cfgr = r.regs[0x40023808]
    assert cfgr & 3 == 2 and cfgr >> 10 & 7 == 5 and cfgr >> 13 & 7 == 4   # APB1 /4, APB2 /2
    assert r.uart_hz == 108_000_000
    assert r.regs[0x40023C00] & 0xF == 7
    switch = r.first(0x40023808, lambda v: v & 3 == 2)
    assert r.first(0x40023C00, lambda v: v & 0xF == 7) < switch
    assert r.first(0x40007000, lambda v: v >> 17 & 1) < switch        # ODSWEN before 216 MHz
    assert r.first(0x40007000, lambda v: v >> 16 & 1) < r.first(0x40007000, lambda v: v >> 17 & 1)
    assert r.regs[0x40007000] >> 14 & 3 == 3                   # VOS scale 1
    assert r.regs[0xE000ED14] >> 16 & 3 == 3                   # CCR.DC | CCR.IC
    dcisw = [v for a, v in r.writes if a == 0xE000EF60]
    assert len(set(dcisw)) == 32 * 4                           # every set of every way
    assert r.first(0xE000ED14, lambda v: v >> 16 & 1) > max(
        i for i, (a, _) in enumerate(r.writes) if a == 0xE000EF60)   # invalidate first


def test_nrf52840_runs_from_the_crystal_with_its_icache(tmp_path):
    r = run_driver("nrf52840-dk", tmp_path)
    assert r.regs[0x40000000] == 1 and r.regs[0x4001E540] & 1
    assert r.core_hz == 64_000_000 == load_board("nrf52840-dk").clock_hz


def test_rp2040_runs_at_125_mhz_from_pll_sys(tmp_path):
    r = run_driver("rpi-pico", tmp_path)
    refdiv, fbdiv, prim = r.regs[0x40028000] & 0x3F, r.regs[0x40028008], r.regs[0x4002800C]
    pd1, pd2 = prim >> 16 & 7, prim >> 12 & 7
    vco = 12_000_000 // refdiv * fbdiv
    assert 750e6 <= vco <= 1600e6 and pd1 >= pd2
    assert vco // (pd1 * pd2) == r.core_hz == r.uart_hz == 125_000_000
    assert r.regs[0x40028004] & 0x29 == 0                      # PD, POSTDIVPD, VCOPD off
    assert r.regs[0x40008030] & 3 == 2                         # clk_ref = XOSC
    ctrl = r.regs[0x4000803C]
    assert ctrl & 1 and not ctrl >> 5 & 7                      # clk_sys = aux = pll_sys
    assert r.regs[0x40008048] >> 11 & 1                        # clk_peri on
    assert r.first(0x4002800C, lambda v: v) > r.first(0x40028008, lambda v: v)
    assert r.first(0x4000803C, lambda v: v & 1) > r.first(0x40028004, lambda v: not v & 8)


def test_esp32s3_runs_at_240_mhz_with_its_core_voltage_raised_first(tmp_path):
    r = run_driver("esp32-s3", tmp_path)
    per, sysclk = r.regs[0x600C0010], r.regs[0x600C0060]
    assert sysclk >> 10 & 3 == 1 and sysclk & 0x3FF == 0        # SOC_CLK_SEL = PLL, PRE_DIV 1
    assert per >> 2 & 1 and per & 3 == 2                        # 480 MHz PLL, CPUPERIOD_SEL 2
    assert 480_000_000 // {0: 6, 1: 3, 2: 2}[per & 3] == r.core_hz == 240_000_000
    assert r.core_hz == load_board("esp32-s3").clock_hz and r.uart_hz == 80_000_000
    assert r.regs[0x600081FC] >> 13 & 0x3F == 0                 # all six LDO slaves on
    # the 240 MHz core voltage (REGI2C I2C_DIG_REG 0x6D host 1: EXT_RTC_DREG 4, EXT_DIG_DREG
    # 6, bits 4:0) and its 40 us settling come before the CPU goes to 240 MHz
    switch = r.first(0x600C0010, lambda v: v & 3 == 2)
    i2c = {e[2]: (at, e[3:]) for at, tag, e in r.analog if tag == "I" and e[:2] == (0x6D, 1)}
    assert {reg: args for reg, (_, args) in i2c.items()} == {4: (4, 0, 28), 6: (4, 0, 28)}
    delay = [(at, e) for at, tag, e in r.analog if tag == "D"]
    assert delay and delay[0][1][0] >= 40
    assert max(at for at, _ in i2c.values()) <= delay[0][0] <= switch
    assert r.first(0x600081FC, lambda v: not v >> 13 & 0x3F) <= switch
    # flash: MSPI core clock 80 MHz (SPI_MEM_CORE_CLK_SEL 0), SPI0 clock = core (80 MHz STR)
    assert r.regs.get(0x600030EC, 0) & 3 == 0 and r.regs[0x60003014] == 1 << 31


def test_esp32s3_left_on_the_crystal_is_not_touched(tmp_path):
    """No calibrated BBPLL (CPU still on XTAL): nothing is written, the 40 MHz read back."""
    r = run_driver("esp32-s3", tmp_path, ("-DEF_SIM_XTAL",))
    assert r.writes == [] and r.analog == [] and r.core_hz == 40_000_000


def test_esp32s3_clock_driver_lives_in_its_own_template():
    """The Xtensa build would compile firmware_templates/esp32-s3/ (the board's template);
    without the toolchain, build stops first with the one toolchain error (test_qemu)."""
    from edgeforge.targets import build
    b = load_board("esp32-s3")
    assert (TEMPLATES / b.template / f"ef_clock_{b.clock['driver']}.c").is_file()
    with pytest.raises(BuildError, match="has no startup.c, main.c.*no esp32-s3 port yet"):
        build._template_sources(b)          # what a build with the toolchain would say


def test_every_profile_clock_tree_is_within_the_vendor_limits():
    from edgeforge.targets.board import board_names
    for name in board_names():
        b = load_board(name)
        t = clock.check(b)
        assert round(t["core_hz"]) == b.clock_hz
    assert load_board("nucleo-l4r5zi").clock_hz == 120_000_000      # not the 4 MHz MSI
    assert load_board("stm32f746g-disco").clock_hz == 216_000_000
    assert load_board("esp32-s3").clock_hz == 240_000_000


@pytest.mark.parametrize("board,change,words", [
    ("nucleo-l4r5zi", {"flash_ws": 4}, "needs 5"),
    ("nucleo-l4r5zi", {"plln": 40}, "core_hz 160 MHz outside 0-120"),
    ("nucleo-l4r5zi", {"pllm": 8}, "vco_in_hz 2 MHz"),
    ("stm32f746g-disco", {"apb2_div": 1}, "apb2_hz 216"),
    ("stm32f746g-disco", {"pllp": 4}, "gives 108 MHz but clock_hz is 216"),
    ("rpi-pico", {"fbdiv": 50}, "vco_hz 600"),
    ("esp32-s3", {"cpuperiod_sel": 3}, "reserved"),
    ("esp32-s3", {"dig_dbias": 27}, "needs dig_dbias and rtc_dbias 28-31"),
    ("esp32-s3", {"flash_mhz": 60}, "integer divisor"),
    ("nucleo-l4r5zi", {"baud": 1200}, "UART divider 25600000"),       # LPUART BRR > 20 bits
    ("stm32f746g-disco", {"baud": 921600 * 8}, "UART divider 15 "),    # USART BRR < 16
])
def test_profiles_outside_the_limits_are_refused(board, change, words):
    b = load_board(board)
    if "baud" in change:
        bad = dataclasses.replace(b, uart={**b.uart, **change})
    else:
        bad = dataclasses.replace(b, clock={**b.clock, **change})
    with pytest.raises(BuildError, match=words):
        clock.check(bad)


def test_build_hands_the_profile_constants_to_the_driver():
    """ef_fw_info.h carries every [clock] integer as EF_CLOCK_<NAME>; no [clock]: none."""
    from edgeforge.manifest import Manifest
    from edgeforge.targets import build
    m = Manifest.__new__(Manifest)
    m.inputs, m.outputs = [], []
    text = build._info_header(m, load_board("nucleo-l4r5zi"))
    for k, v in load_board("nucleo-l4r5zi").clock.items():
        if isinstance(v, int):
            assert f"#define EF_CLOCK_{k.upper()} {v}u" in text
    assert "EF_CLOCK_" not in build._info_header(m, load_board("mps2-an386"))
