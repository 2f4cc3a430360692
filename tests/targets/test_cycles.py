"""The Cortex-M4 cycle estimate (targets/cycles.py) against loops whose cycle counts the
Cortex-M4 TRM fixes (3.3.1 Table 3-1, 3.3.2 load/store timings, 7.2.3 FPU table).

Each loop is assembled, run on QEMU mps2-an386 with `-d in_asm,exec,nochain`, and the
estimate for the loop's addresses must equal the count worked out by hand from the manual:
with P (pipeline refill) = 1 for a taken branch to a 16-bit or word-aligned target, 2 for a
32-bit target on a halfword boundary; the low/high bounds use P = 1 / 3 and, for divides,
2 / 12 cycles. One firmware run checks that the log's instruction count equals what the
firmware counted and that the per-op split adds up.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from edgeforge.targets import cycles
from tests.conftest import fixture, require

N = 25          # loop trips: N - 1 taken branches and one fall-through

# name -> (loop body without the counter and branch, cycles per trip of the body, extra
# cycles of the taken branch's refill above P = 1 (0: aligned target), divides per trip)
CASES = {
    # ALU: one cycle each (Table 3-1 "Add", "Logical", "Move")
    "alu": ("adds r2, #1\n eors r3, r2\n mov r4, r3\n lsls r4, r4, #2", 4, 0, 0),
    # 3.3.2: LDR 2 cycles, the next LDR pipelines behind it (1) unless it needs its result
    "ldr_pipelined": ("ldr r2, [r0]\n ldr r3, [r0, #4]\n ldr r4, [r0, #8]", 4, 0, 0),
    "ldr_dependent": ("ldr r2, [r0, #16]\n ldr r3, [r2]", 4, 0, 0),
    # 3.3.2: a load whose address comes from the ALU result just before stalls one cycle
    "addr_after_alu": ("adds r5, r0, #4\n ldr r3, [r5]", 4, 0, 0),
    # STR pipelines after LDR; nothing pipelines after STR
    "ldr_str": ("ldr r2, [r0]\n str r2, [r6]\n ldr r3, [r0, #4]", 5, 0, 0),
    # LDM / STM / PUSH / POP: 1 + N
    "ldm_stm": (("ldmia r0, {r2, r3, r4, r5}\n stmia r6, {r2, r3, r4, r5}\n"
                " push {r2, r3}\n pop {r2, r3}"), 16, 0, 0),
    # LDRD / STRD: 1 + N with N = 2, not pipelined
    "ldrd_strd": ("ldrd r2, r3, [r0]\n strd r2, r3, [r6]", 6, 0, 0),
    # multiplies and the DSP extension: single cycle on the M4 (MLA, SMULL, SMLAL, SMLAD)
    "mul_mac": (("muls r2, r3, r2\n mla r4, r2, r3, r4\n smull r2, r3, r4, r5\n"
                " smlal r2, r3, r4, r5\n smlad r4, r2, r3, r4\n smulbb r2, r3, r4"), 6, 0, 0),
    # SDIV / UDIV: 2-12 by early termination: nominal 7
    "udiv": ("udiv r2, r3, r4", 7, 0, 1),
    # FPU (7.2.3): VADD 1, VMLA 3, VDIV 14, VLDR 2
    "fpu": (("vadd.f32 s0, s1, s2\n vmla.f32 s3, s4, s5\n vdiv.f32 s6, s7, s8\n"
            " vldr s9, [r0]"), 20, 0, 0),
    # a taken branch to a 32-bit instruction on a halfword boundary refills in 2
    "unaligned_target": ("smlad r4, r2, r3, r4\n adds r2, #1", 2, 1, 0),
}


def _asm() -> str:
    out = [".syntax unified", ".thumb", ".section .isr_vector,\"a\"", ".word 0x20010000",
           ".word reset + 1", ".text", ".thumb_func", ".global reset", "reset:",
           "ldr r0, =data", "ldr r6, =sink", "ldr r4, =7", "ldr r3, =1000",
           # FPU on (CPACR) for the VFP case
           "ldr r1, =0xE000ED88", "ldr r2, [r1]", "orr r2, r2, #0xF00000", "str r2, [r1]",
           "dsb", "isb"]
    for name, (body, _, unaligned, _) in CASES.items():
        out += [f"movs r1, #{N}", ".balign 4"]
        if unaligned:
            out += ["nop"]                       # the loop starts at a halfword boundary
        out += [f".global {name}_start", f"{name}_start:", body, "subs r1, #1",
                f"bne {name}_start", f".global {name}_end", f"{name}_end:"]
    out += ["movs r0, #0x18", "ldr r1, =0x20026", "bkpt 0xab", "1: b 1b", ".ltorg",
            ".data", ".balign 8", "data: .word data + 4, 2, 3, 4, data, 6, 7, 8, 9",
            "sink: .space 64"]
    return "\n".join(out) + "\n"


LD = "SECTIONS { . = 0x0; .text : { KEEP(*(.isr_vector)) *(.text*) } " \
     ". = 0x20000000; .data : { *(.data*) } }\n"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    require("arm-none-eabi-gcc", "arm-none-eabi-objdump", "qemu-system-arm")
    d = tmp_path_factory.mktemp("cycles")
    (d / "mb.S").write_text(_asm())
    (d / "mb.ld").write_text(LD)
    elf = d / "mb.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                    "-mfpu=fpv4-sp-d16", "-nostdlib", "-nostartfiles", "-T", str(d / "mb.ld"),
                    str(d / "mb.S"), "-o", str(elf)], check=True, timeout=60)
    log_path = d / "exec.log"
    r = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
                        "-d", "in_asm,exec,nochain", "-D", str(log_path)],
                       capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr[-500:]
    code = cycles.disassemble(elf)
    with open(log_path) as f:
        log = cycles.consume(f, cycles.ExecLog(code), 1_000_000)
    syms = {n: a for a, _, n in cycles.functions(elf)}
    return log, syms


@pytest.mark.parametrize("name", list(CASES))
def test_loop_cycles_match_the_manual(bench, name):
    log, syms = bench
    body, per_trip, unaligned, divides = CASES[name]
    r = cycles.address_range(log, syms[f"{name}_start"], syms[f"{name}_end"])
    n_insns = body.count("\n") + 1 + 2
    assert r["instructions"] == N * n_insns
    # per trip: the body, SUBS (1), BNE (1, plus the refill P when taken)
    p = 1 + unaligned
    assert r["cycles"] == N * (per_trip + 2) + (N - 1) * p
    assert r["cycles_low"] == r["cycles"] - (N - 1) * (p - 1) - N * divides * 5
    assert r["cycles_high"] == r["cycles"] + (N - 1) * (3 - p) + N * divides * 5


def test_log_is_counted_per_block_not_stored(bench):
    """Memory is one entry per translation block and per (segment, taken) pair."""
    log, _ = bench
    assert len(log.blocks) < 40 and log.lines > N * len(CASES)
    total_runs = sum(len(s.runs) for s in (log.outside, log.glue, *log.segments))
    assert total_runs <= 2 * len(log.blocks)


@pytest.mark.parametrize("text,base", [("bls", "b"), ("lsls", "lsl"), ("ldr.w", "ldr"),
                                       ("vmla.f32", "vmla"), ("bne.n", "b"), ("adds", "add"),
                                       ("smlad", "smlad"), ("popeq", "pop"), ("teq", "teq"),
                                       ("ldrsb.w", "ldrsb"), ("blx", "blx"), ("subs.w", "sub")])
def test_mnemonic_classes(text, base):
    assert cycles._base_mnemonic(text) == base


def test_runaway_log_stops_at_its_bound():
    code = {0x100: cycles.Insn(0x100, 2, "b", "100", "b 100")}
    lines = ["IN:", "0x00000100:  e7fe       b #0x100", ""] + [
        "Trace 0: 0x7f0000 [00000000/00000100/00000000/00000000] "] * 50
    with pytest.raises(Exception, match="longer than 20 lines"):
        cycles.consume(iter(lines), cycles.ExecLog(code), 20)


@pytest.mark.slow
def test_firmware_estimate_adds_up(tmp_path):
    """KWS on the emulated M4: the log's instructions equal the firmware's own count (to a
    few dozen instructions of counter-read overhead), per-op parts sum to the whole, and the
    estimate is above the instruction count (loads take 2 cycles) but below 3x it."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    from edgeforge.compiler import compile_model
    from edgeforge.manifest import Manifest
    out = tmp_path / "kws"
    compile_model(fixture("kws_ds_cnn_int8.tflite"), out)
    m = Manifest.load(out)
    x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).reshape(m.inputs[0].shape)
    r = cycles.estimate(out, x)
    assert abs(r["instructions"] - r["instructions_counted"]) < 0.002 * r["instructions"]
    assert len(r["per_op"]) == len(m.ops)
    parts = sum(p["cycles"] for p in r["per_op"])
    assert parts <= r["cycles"] < parts * 1.01
    assert r["instructions"] < r["cycles_low"] <= r["cycles"] <= r["cycles_high"]
    assert r["cycles"] < 3 * r["instructions"]
    assert "DDI 0439B" in r["source"] and r["protocol_filtered"]
    # leaving the protocol loop out of the log (-dfilter) changes nothing inside the inference
    full = cycles.estimate(out, x, filter_protocol=False)
    assert not full["protocol_filtered"] and full["log_lines"] > r["log_lines"]
    assert [p["cycles"] for p in full["per_op"]] == [p["cycles"] for p in r["per_op"]]


def test_cycles_needs_qemu(tmp_path):
    """--cycles on a board with its own cycle counter is one clear error, before any work."""
    from edgeforge.compiler import compile_model
    from tests.unit.test_cli_errors import cli, user_error
    out = tmp_path / "kws"
    compile_model(fixture("kws_ds_cnn_int8.tflite"), out)
    r = cli("profile", out, "--target", "serial:///dev/null?board=nucleo-l4r5zi", "--cycles")
    user_error(r, "--cycles", "qemu://")
