"""The DSP kernels (runtime/c/kernels/dsp/) give the reference kernels' bytes, on the host.

Compiled without __ARM_FEATURE_DSP, ef_dsp.h maps each intrinsic to plain C with the same
result, so these tests check the algorithms (im2col, lane reordering, 2x2 blocking, tails,
fallbacks, the requantization rewrite, the in-place contract) bit for bit; the intrinsic
path itself runs end to end on the emulated Cortex-M4 in tests/targets/test_qemu.py.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeforge.codegen import c as codegen_c
from edgeforge.ir import Act, FcAttrs, Op
from edgeforge.runtime import reference
from tests.c import cbuild
from tests.c import test_inplace_poison as poison
from tests.conftest import ROOT, fixture, require
from tests.opcases import _build, _conv, _dw, _pool, _Spec, cases, lstm_case, random_inputs

DSP = ROOT / "runtime" / "c" / "kernels" / "dsp"
DSP_SOURCES = sorted(p.name for p in DSP.glob("*.c"))
MAIN_KERNELS = {"conv2d_s8.c", "conv2d_1x1_s8.c", "dwconv2d_3x3_s8.c", "fc_s8.c",
                "fc_packed_s8.c", "avgpool2d_s8.c"}


def use_dsp_kernels(out: Path, *_: object) -> None:
    """Swap the package's reference kernels for the DSP ones of the same file name, as
    targets/build.py does: each becomes a one-line #include of the DSP file, so the DSP
    file's own relative includes resolve from runtime/c/kernels/dsp/. EF_DSP_EMULATE (the
    test-only macro) makes the host build run the DSP loops on plain-C intrinsics; without
    it a host build of these files is the reference kernels."""
    for name in DSP_SOURCES:
        if (out / name).exists() or name.startswith("ef_dsp_"):   # + the shared engines
            (out / name).write_text(f'#define EF_DSP_EMULATE 1\n#include "{DSP / name}"\n')


def emit_c_dsp(graph, plan, out_dir, *args, **kw):
    pkg = codegen_c.emit_c(graph, plan, out_dir, *args, **kw)
    use_dsp_kernels(Path(out_dir))
    return pkg


REQUANT_HARNESS = r"""
#include <stdio.h>
#include "ef_dsp.h"
static uint32_t s = 12345u;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
    long bad = 0, n = 0;
    static const int32_t edge[] = {0, 1, -1, 2, -2, 127, -128, 1 << 20, -(1 << 20),
                                   INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
    for (int32_t shift = -31; shift <= 30; ++shift) {
        for (int k = 0; k < 40000; ++k) {
            int32_t acc = k < 13 ? edge[k] : (int32_t)rnd();
            if (k % 3 == 1) acc >>= (rnd() % 31);          /* realistic magnitudes too */
            int32_t mult = k % 97 == 0 ? 0 : (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu));
            if (k % 89 == 0) mult = INT32_MAX;
            for (int single = 0; single < 2; ++single) {
                if (single && (shift > 30 || 31 - shift > 62)) continue;
                int32_t want = single ? ef_requantize_single(acc, mult, shift)
                                      : ef_requantize_double(acc, mult, shift);
                int32_t got = ef_dsp_requantize(single, acc, mult, shift);
                n++;
                if (got != want && bad++ < 5)
                    printf("acc %d mult %d shift %d single %d: %d != %d\n",
                           (int)acc, (int)mult, (int)shift, single, (int)got, (int)want);
            }
        }
    }
    printf("checked %ld mismatches %ld\n", n, bad);
    return bad != 0;
}
"""


def harness_checked(tmp_path: Path, source: str, *flags: str) -> tuple[str, int]:
    """Build a C harness that includes ef_dsp.h (gcc -Werror, host), run it: its stdout and
    the count it printed after "checked " (it prints "mismatches N" and exits nonzero on one)."""
    require("gcc")
    (tmp_path / "t.c").write_text(source)
    exe = tmp_path / "t"
    r = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *flags,
                        f"-I{DSP}", f"-I{ROOT / 'runtime' / 'c'}", str(tmp_path / "t.c"),
                        "-o", str(exe)], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and "mismatches 0" in r.stdout, r.stdout
    return r.stdout, int(r.stdout.split("checked ")[1].split()[0])


def assert_matches_reference(case, ml: cbuild.MultiLib, numerics: str, seed: int) -> None:
    """The C build's outputs for 4 random inputs are the reference's bytes."""
    samples = random_inputs(case.graph, n=4, seed=seed)
    for s, ys in zip(samples, ml.run(case.name, samples)):
        ref = reference.run(case.graph, s, numerics=numerics)
        for name, y in zip(case.graph.outputs, ys):
            want = np.asarray(ref[name]).reshape(y.shape)
            assert np.array_equal(y, want), (
                f"{case.name} [{numerics}]: {int((y != want).sum())} of {y.size} bytes differ")


def test_requantize_rewrite_matches_ef_requantize(tmp_path):
    assert harness_checked(tmp_path, REQUANT_HARNESS)[1] > 4_000_000


def _fc(name: str, x: tuple[int, int], cout: int, act: Act = Act.NONE, note: str = "") -> _Spec:
    """FC per tensor (as the TFLite converter writes it) on [rows, C_IN]."""
    return _Spec(name, Op.FC, FcAttrs(act=act), [x], (x[0], cout), weight=(cout, x[1]),
                 per_channel=False, note=note)


# shapes that reach every path: fast/slow im2col (C_IN % 4), odd C_OUT and pixel counts,
# a column longer than EF_DSP_COL_MAX (plain fallback), strides, dilation, channel tails
EXTRA = [
    _conv("dsp_conv_c16_odd", (1, 7, 5, 16), 9, (3, 3), note="fast im2col, odd C_OUT, odd npix"),
    _conv("dsp_conv_c3_s2", (1, 9, 11, 3), 8, (3, 3), s=(2, 2), note="slow im2col + reorder"),
    _conv("dsp_conv_c5_k10x4", (1, 12, 6, 5), 6, (4, 2), s=(2, 1), padding="VALID"),
    _conv("dsp_conv_long_col", (1, 4, 4, 132), 3, (3, 3), note="K = 1188 > EF_DSP_COL_MAX"),
    _conv("dsp_conv_dil", (1, 8, 8, 8), 4, (3, 3), d=(2, 2)),
    _conv("dsp_conv_1x1_c20", (1, 5, 3, 20), 7, (1, 1)),
    _conv("dsp_conv_1x1_s2", (1, 6, 6, 12), 10, (1, 1), s=(2, 2), padding="VALID"),
    _dw("dsp_dw_c11", (1, 7, 6, 11), 1, (3, 3), note="4-channel groups + a tail of 3"),
    _dw("dsp_dw_c16_s2", (1, 9, 9, 16), 1, (3, 3), s=(2, 2)),
    _pool("dsp_avgpool_c10", Op.AVGPOOL2D, (1, 9, 7, 10), (3, 3), (2, 2), "SAME",
          note="4-channel groups + a tail, padded windows"),
    _pool("dsp_avgpool_kws", Op.AVGPOOL2D, (1, 25, 5, 64), (25, 5), (25, 5), "VALID",
          note="125 taps: int16 lanes"),
    _pool("dsp_avgpool_big", Op.AVGPOOL2D, (1, 16, 17, 8), (16, 17), (16, 17), "VALID",
          note="272 taps > 255: the int32 loop"),
    # ef_fc_packed_s8: fused four-row blocks + a row left over; C_IN tails (the general
    # block path); C_IN < 4 (no blocks of groups); several rows; ReLU clamp
    _fc("dsp_fc_packed_40x13", (1, 40), 13, note="fused pass, odd group count, 1 row left"),
    _fc("dsp_fc_packed_tail", (3, 19), 8, Act.RELU, note="C_IN % 4 = 3, three rows"),
    _fc("dsp_fc_packed_tiny", (2, 3), 6, note="C_IN < 4: tails only"),
    _fc("dsp_fc_packed_wide", (1, 640), 8, Act.RELU, note="the autoencoder's first depth"),
    # row sums too big for the packed pair trick (|sum| >= 2^23): ef_fc_s8 runs it
    _fc("dsp_fc_plain_deep", (1, 3000), 5, note="no packing: the plain DSP kernel"),
]
OPS = {"CONV2D", "DWCONV2D", "FC", "AVGPOOL2D", "LSTM"}


def test_pack_fc_layout_decodes_to_the_weights():
    """pack_fc's words give back every weight (low byte row a, high byte row b with its
    borrow), the folded bias is bias + in_offset * row sums; out-of-bound layers and fewer
    than four rows refuse."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (11, 23)).astype(np.int8)
    b = rng.integers(-5000, 5000, 11).astype(np.int32)
    pw, pb, small = codegen_c.pack_fc(w, b, 77)
    assert pw.size == w.size and small == 1
    assert np.array_equal(pb, b + 77 * w.astype(np.int64).sum(axis=1))
    got = np.zeros_like(w, np.int64)
    u = pw.view(np.uint8).astype(np.int64)
    pos = 0
    for o in range(0, 8, 4):
        for k in range(0, 20, 4):
            for v in range(4):
                ra, k0 = o + 2 * (v >> 1), k + (v & 1)
                for lane in range(2):
                    lo, hi = u[pos + 2 * lane], u[pos + 2 * lane + 1]
                    e = lo - 256 * (lo > 127)
                    got[ra, k0 + 2 * lane] = e
                    got[ra + 1, k0 + 2 * lane] = hi - 256 * (hi > 127) + (e < 0)
                pos += 4
        got[o:o + 4, 20:] = pw[pos:pos + 12].reshape(4, 3)
        pos += 12
    got[8:] = pw[pos:].reshape(3, 23)
    assert np.array_equal(got, w)
    assert codegen_c.pack_fc(np.full((4, 600), 127, np.int8), None, 0) is None   # 2^23
    assert codegen_c.pack_fc(np.full((4, 8), -128, np.int8), None, 0) is None    # -128
    assert codegen_c.pack_fc(w[:3], b[:3], 0) is None                 # no block of 4


@pytest.fixture(scope="module", params=["tflm", "litert", "single"])
def dsp_lib(request, tmp_path_factory):
    require("gcc")
    chosen = [c for c in cases("int8") if c.op.name in OPS]
    chosen += [_build(sp, "int8") for sp in EXTRA]
    # the DSP LSTM's paths: an odd cell count (a lone last row), input tails of 1..3, a clip
    chosen += [lstm_case("dsp_lstm_f13_h7", "int8", steps=6, features=13, hidden=7,
                         cell_clip=2.0),
               lstm_case("dsp_lstm_f32_h24_b2", "int8", batch=2, steps=3, features=32,
                         hidden=24, time_major=True)]
    root = tmp_path_factory.mktemp(f"dsp_{request.param}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cbuild, "emit_c", emit_c_dsp)
        ml = cbuild.MultiLib({c.name: c.graph for c in chosen}, root, request.param)
    used = {p.name for p in root.glob("*/*.c") if str(DSP) in p.read_text()}
    assert MAIN_KERNELS <= used, f"cases never reach {MAIN_KERNELS - used}"
    return request.param, ml, chosen


def test_dsp_kernels_match_reference_bit_exact(dsp_lib):
    numerics, ml, chosen = dsp_lib
    assert len(chosen) >= 20
    for case in chosen:
        assert_matches_reference(case, ml, numerics, seed=3)


@pytest.mark.parametrize("model", sorted(poison.MODELS))
def test_dsp_kernels_keep_the_inplace_contract(model, tmp_path):
    """The planner's in-place overlaps + a poisoned free arena, with the DSP kernels."""
    require("gcc")
    from edgeforge.frontends import load
    from edgeforge.plan.memory import plan_graph

    g = load(fixture(poison.MODELS[model]))
    plan = plan_graph(g)
    g = plan.schedule(g)
    assert any(s.used for s in plan.shares)
    samples = poison.inputs_for(g, 2, seed=5)
    exe = poison.build(g, plan, tmp_path / "p", poison.free_table(plan, g),
                       patch=use_dsp_kernels)
    swapped = [f.name for f in (tmp_path / "p").glob("*.c") if str(DSP) in f.read_text()]
    assert "ef_dsp_conv.c" in swapped and len(swapped) >= 3, swapped
    poison.assert_same(poison.run_exe(exe, g, samples), poison.reference(g, samples),
                       f"{model} dsp poisoned")
