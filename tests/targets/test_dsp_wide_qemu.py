"""The no-table requantization asm (EF_DSP_MQ_ONE: SMULL, any int32 accumulator), the
128-channel depthwise table and the any-size depthwise kernel on the emulated Cortex-M4, on
the layers of
tests/c/test_dsp_wide_requant.py: each written as .tflite, compiled by `edgeforge compile`,
built with the DSP kernels and run on QEMU mps2-an386; the firmware's outputs must equal the
host reference byte for byte (profile checks every sample), and for the wide layers the DSP
build must also beat the reference kernels (it took a cold C pass before).
"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.targets.profile import profile
from tests.c.test_dsp_wide_requant import CASES
from tests.conftest import require
from tests.opcases import write_case
from tests.targets.test_qemu import compile_fixture


@pytest.mark.parametrize("idx", range(len(CASES)), ids=[c.name for c, _ in CASES])
def test_wide_layers_on_the_m4_equal_the_reference(idx, tmp_path):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    case, note = CASES[idx]
    src = write_case(case, tmp_path)
    d = compile_fixture(src, tmp_path / "dir", "tflm")
    shape = case.graph.tensors[case.graph.inputs[0]].shape
    x = np.random.default_rng(idx).integers(-128, 128, (3, *shape)).astype(np.int8)
    dsp = profile(d, "qemu://mps2-an386", runs=1, warmup=0, inputs=x, kernels="dsp")
    assert dsp["outputs_match_reference"] is True, (case.name, dsp["mismatches"])
    if "reference" not in note:           # the DSP path, not its reference fallback
        ref = profile(d, "qemu://mps2-an386", runs=1, warmup=0, inputs=x[:1], kernels="ref")
        assert dsp["instructions"]["p50"] < ref["instructions"]["p50"], case.name
