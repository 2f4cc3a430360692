"""The emulated board's counter really counts instructions.

A hand-written package (the model.h glue contract, not a compiled model) whose "ops" are
assembly loops of known length runs on QEMU mps2-an386: SysTick ticks x 40 must equal the
executed instruction count to within one tick, per op and per run, for short loops and for
loops long enough to wrap the 24-bit SysTick counter.
"""
from __future__ import annotations

import pytest

from edgeforge.manifest import Manifest, TensorSpec
from edgeforge.targets import commands
from edgeforge.targets.qemu import QemuTarget
from tests.conftest import require

HASH = "5a" * 8 + "00" * 24
# loop trips: 10 k instructions, and 700 M, more than the 2^24 SysTick ticks x 40 = 671 M
# instructions after which the 24-bit counter wraps (the firmware counts wraps in SysTick_Handler)
SHORT, LONG = 5_000, 350_000_000

MODEL_H = """#ifndef EF_MODEL_MODEL_H
#define EF_MODEL_MODEL_H
#include <stdint.h>
int8_t *ef_model_input(int i);
int8_t *ef_model_output(int i);
int ef_model_invoke(void);
#define EF_MODEL_INVOKE() ef_model_invoke()
#define EF_MODEL_INPUT(i) ef_model_input(i)
#define EF_MODEL_OUTPUT(i) ef_model_output(i)
#define EF_MODEL_NUM_INPUTS 1
#define EF_MODEL_NUM_OUTPUTS 1
#define EF_MODEL_INPUT_BYTES(i) 4
#define EF_MODEL_OUTPUT_BYTES(i) 4
#define EF_MODEL_NUM_OPS 2
#define EF_MODEL_HASH {0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a}
#define EF_MODEL_ARENA_BYTES 16
#endif
"""

MODEL_C = """#include "model.h"
#ifndef EF_OP_BEGIN
#define EF_OP_BEGIN(i) ((void)0)
#define EF_OP_END(i) ((void)0)
#endif
static int8_t arena[16];
int8_t *ef_model_input(int i) { (void)i; return arena; }
int8_t *ef_model_output(int i) { (void)i; return arena + 8; }
/* exactly 2 instructions per trip: subs + bne */
static void spin(uint32_t n)
{
    __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
}
int ef_model_invoke(void)
{
    EF_OP_BEGIN(0);
    spin(SHORT_TRIPS);
    EF_OP_END(0);
    EF_OP_BEGIN(1);
    spin(LONG_TRIPS);
    EF_OP_END(1);
    for (int k = 0; k < 4; k++) arena[8 + k] = (int8_t)(arena[k] + 1);
    return 0;
}
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    d = tmp_path_factory.mktemp("spin")
    (d / "c").mkdir()
    (d / "c" / "model.h").write_text(MODEL_H)
    (d / "c" / "model.c").write_text(f"#define SHORT_TRIPS {SHORT}u\n#define LONG_TRIPS {LONG}u\n"
                                     + MODEL_C)
    (d / "model.tflite").write_bytes(b"")
    spec = [TensorSpec("x", [1, 4], "int8", 1.0, 0)]
    Manifest(name="model", model_sha256=HASH, source_sha256=HASH, sdk_version="test",
             numerics="tflm", inputs=spec, outputs=[TensorSpec("y", [1, 4], "int8", 1.0, 0)],
             arena_bytes=16, arena_lower_bound_bytes=16, weight_bytes=0,
             ops=["SPIN", "SPIN"]).save(d)
    return d


def test_systick_times_40_is_the_instruction_count(package):
    with QemuTarget.from_uri("qemu://mps2-an386") as t:
        info = t.open(package, Manifest.load(package))
        assert info["counter_unit"] == "instructions"
        dev = t.dev
        commands.write_input(dev, 0, bytes([1, 2, 3, 0x80]))
        (count,) = commands.invoke(dev, runs=1, warmup=0)     # one run: ~5 s of emulation
        assert commands.read_output(dev, 0) == bytes([2, 3, 4, 0x81])
        short, long = commands.layer_profile(dev)
    # the loops plus a few instructions of hook overhead, within one 40-instruction tick
    assert 2 * SHORT <= short <= 2 * SHORT + 80
    assert 2 * LONG <= long <= 2 * LONG + 200              # + the wrap interrupt's handler
    assert 2 * (SHORT + LONG) <= count <= 2 * (SHORT + LONG) + 400
