"""The DSP conv engine's no-table requantization (EF_DSP_MQ_ONE, ef_dsp_out_pairs_mq) on the
host: layers wider than one 64-channel block, and layers whose biases reach 2^30 (real
MobileNet exports: MLPerf Tiny's VWW has them on most pointwise channels, where the weight
scale is tiny), which the five-instruction SMMULR(2 * acc) pass cannot take.

  * ef_dsp_mq (the C twin of the asm, same arithmetic) == ef_requantize_double + offset +
    SSAT over the whole int32 accumulator range, shifts -31..-2 and dead channels (mult 0);
  * conv layers built to reach the pass, emulated DSP package == runtime.reference.
The asm itself runs on QEMU in tests/targets/test_dsp_wide_qemu.py, on these same layers.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.ir import Act
from edgeforge.runtime import reference
from tests.c import cbuild
from tests.c.test_dsp_kernels import emit_c_dsp, harness_checked
from tests.conftest import require
from tests.opcases import _build, _conv, _dw, random_inputs

MQ_HARNESS = r"""
#include <stdio.h>
#include "ef_dsp.h"
static uint32_t s = 88172645u;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
    long bad = 0, n = 0;
    static const int32_t edge[] = {0, 1, -1, 2, -2, 1 << 30, -(1 << 30), (1 << 30) + 128,
                                   INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
    for (int32_t shift = -31; shift <= -2; ++shift) {
        for (int k = 0; k < 40000; ++k) {
            int32_t acc = k < 12 ? edge[k] : (int32_t)rnd();
            if (k % 3 == 1) acc >>= (rnd() % 31);
            int32_t mult = (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu));
            if (k % 89 == 0) mult = INT32_MAX;
            if (k % 83 == 0) mult = 1 << 30;
            int32_t off = (int32_t)(rnd() % 256) - 128;
            int32_t v = ef_requantize_double(acc, mult, shift) + off;
            int8_t want = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
            int8_t got = ef_dsp_mq(acc, mult, shift, off);
            n++;
            if (got != want && bad++ < 5)
                printf("acc %d mult %d shift %d off %d: %d != %d\n", (int)acc, (int)mult,
                       (int)shift, (int)off, got, want);
        }
    }
    /* a dead channel (mult 0) gives the offset whatever its shift */
    for (int32_t shift = -31; shift <= 31; ++shift) {
        n++;
        if (ef_dsp_mq((int32_t)rnd(), 0, shift, -7) != -7 && bad++ < 5)
            printf("mult 0 shift %d\n", (int)shift);
    }
    const int32_t m[3] = {0, 1 << 30, 1 << 30}, ok[3] = {5, -2, -31}, one[3] = {0, -1, -2};
    const ef_quant qok = {m, ok}, qone = {m, one};
    int guard = ef_dsp_mq_ok(&qok, 3) == 1 && ef_dsp_mq_ok(&qone, 3) == 0;
    printf("checked %ld mismatches %ld guard %d\n", n, bad, guard);
    return bad != 0 || !guard;
}
"""


def test_mq_requantization_matches_ef_requantize_double(tmp_path):
    out, checked = harness_checked(tmp_path, MQ_HARNESS, "-DEF_DSP_EMULATE=1")
    assert "mismatches 0 guard 1" in out and checked > 1_000_000, out


def big_bias(case, every: int = 2, seed: int = 5):
    """Every `every`-th output channel gets a bias of 2^29..2^31 - 2^24 in magnitude and a
    weight scale so small that bias * scale lands inside the int8 output range, as the
    tiny-scale channels of real exports do (multiplier shifts near -28)."""
    g = case.graph
    rng = np.random.default_rng(seed)
    node = g.nodes[0]
    b, w, y = (g.tensors[node.inputs[2]], g.tensors[node.inputs[1]], g.tensors[g.outputs[0]])
    s_in = float(g.tensors[node.inputs[0]].quant.scale[0])
    s_out = float(y.quant.scale[0])
    wscale = w.quant.scale.astype(np.float32).copy()
    bias = b.data.astype(np.int64).copy()
    for c in range(0, bias.size, every):
        mag = int(rng.integers(1 << 29, (1 << 31) - (1 << 24)))
        bias[c] = mag if rng.random() < 0.5 else -mag
        target = rng.uniform(0.3, 90.0)               # |bias| * s_in * s_w / s_out
        wscale[c] = np.float32(target * s_out / (mag * s_in))
    w.quant.scale = wscale
    b.data = bias.astype(np.int32)
    b.quant.scale = (s_in * wscale).astype(np.float32)
    return case


def cases():
    """(case, note): layers that reach the no-table pass (or the widened depthwise table)."""
    return [
        (_build(_conv("wide_pw_oc130", (1, 5, 4, 32), 130, (1, 1)), "int8"),
         "130 channels: three blocks (64, 64, 2), small biases"),
        (big_bias(_build(_conv("wide_pw_bigbias", (1, 6, 6, 16), 48, (1, 1)), "int8")),
         "one block, |bias| >= 2^29 on every other channel"),
        (big_bias(_build(_conv("wide_conv3x3_bigbias", (1, 5, 6, 12), 96, (3, 3)), "int8"), 3),
         "3x3 (KW * C_IN 36: ef_conv2d_s8), 96 channels, large biases"),
        (big_bias(_build(_conv("wide_shallow_bigbias", (1, 7, 6, 3), 40, (3, 3), s=(2, 2)),
                         "int8")),
         "a first layer (shallow, K = 27 with a tail of 3), large biases"),
        (_build(_dw("wide_dw_c128", (1, 6, 6, 128), 1, (3, 3)), "int8"),
         "depthwise, 128 channels: the requantization table now covers it"),
        # the DSP ef_dwconv2d_s8 (any filter size; MCUNet's 5x5 / 7x7 layers)
        (_build(_dw("dwk_7x7_s2_c24", (1, 11, 10, 24), 1, (7, 7), s=(2, 2)), "int8"),
         "7x7 stride 2, SAME: windows cut on every side"),
        (_build(_dw("dwk_5x5_s2_c16_relu6", (1, 9, 10, 16), 1, (5, 5), s=(2, 2),
                    act=Act.RELU6), "int8"), "5x5 stride 2, clamp narrower than int8"),
        (_build(_dw("dwk_3x3_d2_s2_c8", (1, 9, 9, 8), 1, (3, 3), s=(2, 2), d=(2, 2)), "int8"),
         "dilation 2: the generic kernel (stride 1 would take the in-place kernel)"),
        (_build(_dw("dwk_5x5_valid_nobias", (1, 8, 6, 12), 1, (5, 5), padding="VALID",
                    bias=False), "int8"), "VALID, no bias"),
        (_build(_dw("dwk_5x5_c6", (1, 6, 6, 6), 1, (5, 5)), "int8"), "C % 4 != 0: reference"),
    ]


CASES = cases()


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    require("gcc")
    root = tmp_path_factory.mktemp("dspwide")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cbuild, "emit_c", emit_c_dsp)
        return cbuild.MultiLib({c.name: c.graph for c, _ in CASES}, root, "tflm")


def test_big_bias_cases_reach_the_wide_pass():
    for case, _ in CASES[1:4]:
        b = case.graph.tensors[case.graph.nodes[0].inputs[2]].data
        assert (np.abs(b.astype(np.int64)) >= 1 << 29).sum() >= b.size // 3, case.name


@pytest.mark.parametrize("idx", range(len(CASES)), ids=[c.name for c, _ in CASES])
def test_wide_layers_match_reference(lib, idx):
    case, _ = CASES[idx]
    samples = random_inputs(case.graph, n=4, seed=17)
    for s, ys in zip(samples, lib.run(case.name, samples)):
        ref = reference.run(case.graph, s, numerics="tflm")
        want = np.asarray(ref[case.graph.outputs[0]]).reshape(ys[0].shape)
        assert np.array_equal(ys[0], want), (
            f"{case.name}: {int((ys[0] != want).sum())} of {want.size} bytes differ")
        # the outputs use the int8 range (not all saturated): the rounding is exercised
        assert len(np.unique(want)) > 6, case.name
