"""16x8 and mixed precision on the emulated Cortex-M4: resnet_tiny.onnx compiled with
--activations int16 and auto (int16 C kernels, QUANTIZE int8 <-> int16 between layers), built
for QEMU mps2-an386 (both kernel sets; the dsp set has its own 16x8 CONV_2D and FC,
tests/targets/test_dsp_s16_qemu.py); the firmware's outputs equal the host reference byte for
byte on every sample."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.targets.profile import profile
from tests.conftest import require

SRC = Path(__file__).resolve().parents[1] / "models" / "resnet_tiny.onnx"


@pytest.mark.parametrize("mode,kernels", [("int16", "ref"), ("auto", "dsp")])
def test_16x8_firmware_equals_reference(mode, kernels, tmp_path):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    g = load(SRC)
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "calib.npz",
             x=rng.normal(0, 1, (64, *shape[1:])).astype(np.float32))
    res = compile_model(SRC, tmp_path / "dir", calib=tmp_path / "calib.npz", activations=mode,
                        ram_budget=32768)
    assert res.report["precision"]["int16_layers"] > 0
    dt = res.manifest.inputs[0].dtype               # int16 where the first layer is
    assert mode != "int16" or (dt, res.manifest.outputs[0].dtype) == ("int16", "int16")
    lim = np.iinfo(dt)
    x = rng.integers(lim.min, lim.max + 1, (3, *shape)).astype(dt)
    out = profile(res.dir, "qemu://mps2-an386", runs=1, warmup=0, inputs=x, kernels=kernels)
    assert out["outputs_match_reference"] is True, out["mismatches"]
