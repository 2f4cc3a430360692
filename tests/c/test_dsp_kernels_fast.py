"""The DSP kernels' fast paths (runtime/c/kernels/dsp/) give the reference bytes, on the host.

Compiled for the host, ef_dsp.h emulates each intrinsic (SXTB16, SMLAD, SMMULR, SSAT, ...)
in plain C, so the exact loop structure of the Cortex-M build runs here. This file covers
what tests/c/test_dsp_kernels.py does not reach:
  * the five-instruction requantization (SMMULR(2*acc, m) + rounding shift) against
    ef_requantize_double/single over its whole domain |acc| < 2^30, and the guard that
    keeps it there;
  * shapes through every branch of the engines: output channels beyond one accumulator
    block (64) and odd, columns shorter than 4 (no MAC groups), C_IN % 4 tails, partially
    padded row runs, clamps that are / are not the whole int8 range, depthwise widths that
    fall back to the reference, large ADD/SUB (the table path);
  * both MLPerf Tiny fixtures compiled by `edgeforge compile` (its real arena plan, with the
    in-place kernels) on 8 inputs: DSP package == runtime.reference byte for byte.
The same kernels with the real intrinsics run on QEMU in tests/targets/test_qemu.py.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeforge.ir import Act, BinaryAttrs, Op
from edgeforge.runtime import reference
from tests.c import cbuild
from tests.c.test_dsp_kernels import (
    DSP,
    assert_matches_reference,
    emit_c_dsp,
    harness_checked,
    use_dsp_kernels,
)
from tests.conftest import ROOT, fixture, require
from tests.opcases import _build, _conv, _dw, _Spec, random_inputs

REF = ROOT / "runtime" / "c" / "kernels" / "ref"

SMALL_HARNESS = r"""
#include <stdio.h>
#include "ef_dsp.h"
static uint32_t s = 2463534242u;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
    long bad = 0, n = 0;
    const int32_t lim = (1 << 30) - 1;
    static const int32_t edge[] = {0, 1, -1, 2, -2, 3, -3, (1 << 30) - 1, -((1 << 30) - 1),
                                   1 << 29, -(1 << 29), 12345, -12345};
    for (int32_t shift = -31; shift <= 30; ++shift) {
        for (int k = 0; k < 30000; ++k) {
            int32_t acc = k < 13 ? edge[k] : (int32_t)(rnd() % (2u * lim + 1u)) - lim;
            if (k % 3 == 1) acc >>= (rnd() % 30);
            int32_t mult = (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu));
            if (k % 61 == 0) mult = INT32_MAX;
            if (k % 67 == 0) mult = 1 << 30;
            for (int single = 0; single < 2; ++single) {
                int32_t want = single ? ef_requantize_single(acc, mult, shift)
                                      : ef_requantize_double(acc, mult, shift);
                int32_t got = ef_dsp_requantize_small(single, acc, mult, shift);
                int32_t got2 = shift < 0 && !single
                    ? ef_dsp_rq(acc, mult, -shift, (int32_t)1 << (-shift - 1)) : want;
                n++;
                if ((got != want || got2 != want) && bad++ < 5)
                    printf("acc %d mult %d shift %d single %d: %d/%d != %d\n", (int)acc,
                           (int)mult, (int)shift, single, (int)got, (int)got2, (int)want);
            }
        }
    }
    /* the guard: |bias| < 2^29 and taps < 2^14, nothing more */
    const int32_t ok[2] = {(1 << 29) - 1, -((1 << 29) - 1)};
    const int32_t big[2] = {0, 1 << 29}, neg[2] = {-(1 << 29), 0};
    int guard = ef_dsp_acc_small(ok, 2, (1 << 14) - 1) == 1 && ef_dsp_acc_small(0, 0, 9) == 1
        && ef_dsp_acc_small(big, 2, 9) == 0 && ef_dsp_acc_small(neg, 2, 9) == 0
        && ef_dsp_acc_small(ok, 2, 1 << 14) == 0;
    printf("checked %ld mismatches %ld guard %d\n", n, bad, guard);
    return bad != 0 || !guard;
}
"""


def test_fast_requantize_matches_ef_requantize_on_its_domain(tmp_path):
    out, checked = harness_checked(tmp_path, SMALL_HARNESS)
    assert "mismatches 0 guard 1" in out and checked > 3_000_000, out


def _binary(name: str, op: Op, shape: tuple[int, ...], act: Act = Act.NONE) -> _Spec:
    return _Spec(name, op, BinaryAttrs(act), [shape, shape], shape)


# shape -> the branch of the DSP engines it reaches
CASES = [
    _conv("fast_conv_oc67", (1, 5, 6, 16), 67, (3, 3),
          note="67 channels: a full 64-channel accumulator block + 3, the last one alone"),
    _conv("fast_conv_1x1_c3", (1, 4, 5, 3), 5, (1, 1), note="K = 3: no MAC group, tail only"),
    _conv("fast_conv_relu6", (1, 7, 7, 8), 6, (3, 3), act=Act.RELU6,
          note="clamp narrower than int8: no SSAT"),
    _conv("fast_conv_relu_s2", (1, 9, 9, 8), 8, (3, 3), s=(2, 2), act=Act.RELU,
          note="partially padded row runs, stride 2"),
    _conv("fast_conv_k5_c4", (1, 6, 8, 4), 4, (5, 5), note="row runs cut on both sides"),
    _conv("fast_conv_kws_first", (1, 12, 6, 1), 8, (10, 4), s=(2, 2),
          note="KWS first layer shape: C_IN 1, K = 40: shallow (transposed filter) + tmp"),
    _conv("fast_conv_c3_k27", (1, 8, 8, 3), 16, (3, 3), act=Act.RELU,
          note="ResNet-8 first layer shape: K = 27, tail of 3, shallow"),
    _conv("fast_conv_shallow_big", (1, 6, 6, 3), 200, (3, 3),
          note="shallow filter of 5400 B: over EF_DSP_SHALLOW_MAX, reference loops"),
    _dw("fast_dw_c12", (1, 6, 7, 12), 1, (3, 3), note="row engine, straight-line interior"),
    _dw("fast_dw_c8_valid", (1, 5, 5, 8), 1, (3, 3), padding="VALID"),
    _dw("fast_dw_c16_s2_relu6", (1, 9, 8, 16), 1, (3, 3), s=(2, 2), act=Act.RELU6),
    _dw("fast_dw_c260", (1, 3, 3, 260), 1, (3, 3), note="wider than EF_DSP_DW_CH_MAX: ref"),
    _dw("fast_dw_c6", (1, 4, 4, 6), 1, (3, 3), note="C % 4 != 0: ref"),
    _binary("fast_add_big", Op.ADD, (1, 16, 16, 8)),
    _binary("fast_add_relu_big", Op.ADD, (1, 8, 8, 16), Act.RELU),
    _binary("fast_sub_big", Op.SUB, (1, 16, 8, 8)),
]


@pytest.fixture(scope="module", params=["tflm", "litert"])
def fast_lib(request, tmp_path_factory):
    require("gcc")
    chosen = [_build(sp, "int8") for sp in CASES]
    root = tmp_path_factory.mktemp(f"dspfast_{request.param}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cbuild, "emit_c", emit_c_dsp)
        ml = cbuild.MultiLib({c.name: c.graph for c in chosen}, root, request.param)
    used = {p.name for p in root.glob("*/*.c") if str(DSP) in p.read_text()}
    assert {"conv2d_s8.c", "conv2d_1x1_s8.c", "conv2d_shallow_s8.c", "dwconv2d_3x3_s8.c",
            "add_s8.c"} <= used, used
    return request.param, ml, chosen


@pytest.mark.parametrize("idx", range(len(CASES)), ids=[sp.name for sp in CASES])
def test_fast_paths_match_reference(fast_lib, idx):
    numerics, ml, chosen = fast_lib
    assert_matches_reference(chosen[idx], ml, numerics, seed=11)


MODELS = {"kws": "kws_ds_cnn_int8.tflite", "resnet8": "ic_resnet8_int8.tflite"}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_fixture_with_dsp_kernels_equals_reference(model, tmp_path, monkeypatch):
    """`edgeforge compile` (its arena plan and in-place kernels), DSP kernels, 8 inputs."""
    require("gcc")
    from edgeforge.cli import main as cli
    from edgeforge.codegen.host import CModel
    from edgeforge.frontends import load

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # no stale shared libs
    d = tmp_path / model
    assert cli(["compile", str(fixture(MODELS[model])), "-o", str(d)]) == 0
    use_dsp_kernels(d / "c")
    swapped = [p.name for p in (d / "c").glob("*.c") if str(DSP) in p.read_text()]
    assert "ef_dsp_conv.c" in swapped and len(swapped) >= 4, swapped
    g = load(d / "model.tflite")
    x = np.stack([s[0] for s in random_inputs(g, n=8, seed=21)])
    got = CModel(d).run_batch([x])[0]
    for k in range(len(x)):
        want = reference.run(g, [x[k]])[g.outputs[0]]
        assert got[k].tobytes() == np.asarray(want, np.int8).tobytes(), f"{model} sample {k}"


def test_dsp_sources_build_at_every_opt_level_and_with_lto(tmp_path):
    """Every DSP file builds warning-free for a core without the DSP extension (Cortex-M0+:
    the reference kernels, or the emulated loops) and with it (Cortex-M4) at -O0/-Og/-Os/
    -O2/-O3 (the inline asm must always find its registers), and the set links under -flto."""
    require("arm-none-eabi-gcc")
    from edgeforge.codegen.c import emit_c
    from tests.c.cbuild import SeqPlan

    g = _build(CASES[0], "int8").graph
    emit_c(g, SeqPlan(g), tmp_path / "c")
    m4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    # the package's headers first; runtime/c for the 16x8 header an int8 package leaves out
    base = ["-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path / 'c'}",
            f"-I{ROOT / 'runtime' / 'c'}"]

    def cc(args: list[str]) -> None:
        r = subprocess.run(["arm-none-eabi-gcc", *args], capture_output=True, text=True,
                           timeout=120, check=False)
        assert r.returncode == 0, f"{' '.join(args[-4:])}:\n{r.stderr[-2000:]}"

    srcs = sorted(DSP.glob("*.c"))
    for cpu, opts in ((["-mcpu=cortex-m0plus", "-mthumb"], ["-O2", "-O2 -DEF_DSP_EMULATE"]),
                      (m4, ["-O0", "-Og", "-Os", "-O2", "-O3", "-O2 -DEF_DSP_EMULATE"])):
        for opt in opts:
            for src in srcs:
                cc([*cpu, *opt.split(), *base, "-c", str(src), "-o", str(tmp_path / "x.o")])
    objs = []
    for src in srcs:
        objs.append(str(tmp_path / f"{src.stem}.o"))
        cc([*m4, "-O2", "-flto", *base, "-c", str(src), "-o", objs[-1]])
    entry = ["-Wl,-e,ef_conv2d_s8"] + [f"-Wl,-u,{s}" for s in (
        "ef_conv2d_1x1_s8", "ef_conv2d_1x1_inplace_s8", "ef_conv2d_shallow_s8",
        "ef_dwconv2d_3x3_s8", "ef_dwconv2d_inplace_s8", "ef_add_s8", "ef_fc_s8")]
    cc([*m4, "-O2", "-flto", "-nostartfiles", "--specs=nosys.specs", "-Wl,--gc-sections",
        *entry, *objs, "-o", str(tmp_path / "lto.elf")])
    assert REF.is_dir() and shutil.which("arm-none-eabi-gcc")


def test_inplace_dsp_kernels_within_planner_scratch_under_asan(tmp_path):
    """The in-place DSP variants against the out-of-place reference kernels, y == x or
    below x, each with a ctx malloc'ed to exactly ef_*_inplace_s8_scratch_size() (the size
    sdk/plan/scratch.py plans) under AddressSanitizer: no byte written past it."""
    require("gcc")
    from tests.c import test_inplace_kernels as ik

    dw = ik.DW_CASES + [(6, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1), (3, 5, 12, 3, 3, 2, 1, 0, 1, 1, 1),
                        (4, 6, 16, 3, 3, 0, 1, 2, 1, 1, 1), (9, 2, 4, 3, 3, 1, 0, 1, 2, 1, 1)]
    pw = ik.PW_CASES + [(3, 3, 67, 67), (5, 1, 3, 2)]
    src = ik.TEST_C.replace("DW_CASES", ik._rows(dw)).replace("PW_CASES", ik._rows(pw))
    (tmp_path / "t.c").write_text(src)
    srcs = [DSP / "dwconv2d_inplace_s8.c", DSP / "conv2d_1x1_inplace_s8.c",
            DSP / "ef_dsp_conv.c", REF / "dwconv2d_s8.c", REF / "conv2d_1x1_s8.c"]
    exe = tmp_path / "t"
    r = subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-DEF_DSP_EMULATE",
                        "-fsanitize=address,undefined",
                        "-fno-sanitize-recover=all", "-Wall", "-Wextra", "-Werror",
                        "-I", str(ROOT / "runtime" / "c"), "-I", str(REF), "-I", str(DSP),
                        str(tmp_path / "t.c"), *map(str, srcs), "-o", str(exe)],
                       check=False, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.count("dw ") == len(dw) and r.stdout.count("pw ") == len(pw)


def test_without_dsp_extension_each_file_is_its_reference_kernel(tmp_path):
    """The portable fallback: compiled for the host without EF_DSP_EMULATE, every DSP kernel
    file defines exactly the symbols of ref/<same name>.c and no DSP engine code."""
    require("gcc", "nm")
    from edgeforge.codegen.c import emit_c
    from tests.c.cbuild import SeqPlan

    g = _build(CASES[0], "int8").graph
    emit_c(g, SeqPlan(g), tmp_path / "c")

    def symbols(src: Path) -> list[str]:
        obj = tmp_path / "x.o"
        r = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                            f"-I{tmp_path / 'c'}", f"-I{ROOT / 'runtime' / 'c'}", "-c",
                            str(src), "-o", str(obj)],
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        out = subprocess.run(["nm", str(obj)], capture_output=True, text=True, timeout=30,
                             check=True).stdout
        return sorted(ln.split()[-1] for ln in out.splitlines() if " T " in ln or " t " in ln)

    kernels = [p for p in sorted(DSP.glob("*.c")) if not p.name.startswith("ef_dsp_")]
    assert len(kernels) >= 8
    for src in kernels:
        got = symbols(src)
        assert got == symbols(REF / src.name), src.name
        assert not any(s.startswith("ef_dsp_") for s in got), (src.name, got)
    assert symbols(DSP / "ef_dsp_conv.c") == []
