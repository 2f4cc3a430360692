"""The DSP kernels with the real Armv7E-M intrinsics, end to end on QEMU mps2-an386.

Both MLPerf Tiny int8 fixtures are compiled once, built twice (kernels/dsp and kernels/ref)
and profiled under `-icount shift=0` (counts are instructions, deterministic up to the
40-instruction SysTick granularity). Checked: the DSP firmware's outputs equal the
reference-kernel firmware's and TFLM's byte for byte on real and random inputs; every conv
and depthwise op runs in fewer instructions than its reference kernel; and the whole
inference stays below TFLM + CMSIS-NN measured on this very board (the issue's goal:
KWS 7.70 M, ResNet-8 29.86 M instructions).
"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.manifest import Manifest
from edgeforge.targets.profile import profile
from tests.conftest import fixture, require
from tests.targets.test_qemu import MODELS, compile_fixture, samples

# TFLM + CMSIS-NN on QEMU mps2-an386, instructions per inference (issue 12 constants;
# benchmarks/mcu.py rebuilds and measures them from source checkouts)
CMSIS_NN = {"kws": 7.70e6, "rn8": 29.86e6}
N = 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """model -> {kernels: profile report with outputs}, each model compiled once."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    root = tmp_path_factory.mktemp("dspq")
    out = {}
    for model in ("kws", "rn8"):
        d = compile_fixture(fixture(MODELS[model]), root / model, "tflm")
        x = samples(model, Manifest.load(d).inputs[0].shape)[:N]
        out[model] = {k: profile(d, "qemu://mps2-an386", runs=2, warmup=0, inputs=x,
                                 keep_outputs=True, kernels=k) for k in ("dsp", "ref")}
        out[model]["dir"], out[model]["x"] = d, x
    return out


@pytest.mark.parametrize("model", ["kws", "rn8"])
def test_dsp_firmware_outputs_equal_ref_firmware_and_tflm(runs, model):
    require("tflite_micro")
    from edgeforge.runtime import peers

    r = runs[model]
    dsp, ref = r["dsp"], r["ref"]
    assert dsp["outputs_match_reference"] is True, dsp["mismatches"]
    assert ref["outputs_match_reference"] is True, ref["mismatches"]
    assert len(dsp["outputs"]) == N
    for k, (a, b) in enumerate(zip(dsp["outputs"], ref["outputs"])):
        want = peers.run_tflm(r["dir"] / "model.tflite", [r["x"][k]])
        for got, same, w in zip(a, b, want):
            assert got.tobytes() == same.tobytes(), f"{model} sample {k}: dsp != ref firmware"
            assert got.tobytes() == np.asarray(w).tobytes(), f"{model} sample {k}: dsp != TFLM"


@pytest.mark.parametrize("model", ["kws", "rn8"])
def test_dsp_kernels_cut_instructions(runs, model):
    dsp, ref = runs[model]["dsp"], runs[model]["ref"]
    assert dsp["count_unit"] == ref["count_unit"] == "instructions"
    ours, theirs = dsp["instructions"]["p50"], ref["instructions"]["p50"]
    assert ours < 0.5 * theirs, (ours, theirs)
    assert ours < CMSIS_NN[model], f"{model}: {ours / 1e6:.2f} M >= TFLM + CMSIS-NN"
    # per op: every conv / depthwise conv is faster than its reference kernel
    for a, b in zip(dsp["per_op"], ref["per_op"]):
        assert a["op"] == b["op"]
        if "runs_in" in a:          # plan.fuse ran this conv inside its residual ADD's step
            assert dsp["per_op"][a["runs_in"]]["op"] in ("ADD", "SUB"), (model, a)
        elif a["op"] in ("CONV2D", "DWCONV2D"):
            assert a["instructions"] < b["instructions"], (model, a, b)


def test_fc_autoencoder_packed_fc_on_the_m4(tmp_path):
    """The MLPerf Tiny anomaly-detection shape (tests/models/fc_autoencoder_int8.tflite, all
    FULLY_CONNECTED) through ef_fc_packed_s8 on QEMU: byte-equal to the reference-kernel
    firmware and to TFLM, and at most 1.25 instructions per MAC including the output stage
    (the plain two-row DSP kernel took 3.6; TFLM + CMSIS-NN about 2.2 on this shape)."""
    require("arm-none-eabi-gcc", "qemu-system-arm", "tflite_micro")
    from edgeforge.runtime import peers
    from tests.conftest import ROOT

    d = compile_fixture(ROOT / "tests" / "models" / "fc_autoencoder_int8.tflite",
                        tmp_path / "ad", "tflm")
    x = np.random.default_rng(3).integers(-128, 128, (3, 1, 640)).astype(np.int8)
    dsp, ref = (profile(d, "qemu://mps2-an386", runs=2, warmup=0, inputs=x, keep_outputs=True,
                        kernels=k) for k in ("dsp", "ref"))
    assert dsp["outputs_match_reference"] is True, dsp["mismatches"]
    for k, (a, b) in enumerate(zip(dsp["outputs"], ref["outputs"])):
        assert a[0].tobytes() == b[0].tobytes(), f"sample {k}: dsp != ref firmware"
        want = peers.run_tflm(d / "model.tflite", [x[k]])[0]
        assert a[0].tobytes() == np.asarray(want).tobytes(), f"sample {k}: dsp != TFLM"
    macs = sum(p["macs"] for p in dsp["per_op"])
    assert macs == 264_192
    assert dsp["instructions"]["p50"] < 1.25 * macs, dsp["instructions"]
    assert dsp["instructions"]["p50"] < 0.5 * ref["instructions"]["p50"]
