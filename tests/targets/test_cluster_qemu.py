"""compile --cluster on the emulated Cortex-M4: the packed weights (value table + bit-packed
indices, unpacked by ef_unpack_s8 into the arena before each layer) give the host
reference's bytes on QEMU mps2-an386 with both kernel sets, and the firmware's flash shrinks.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.api import build
from edgeforge.compiler import compile_model
from edgeforge.targets.profile import profile
from tests.conftest import fixture, require


@pytest.mark.slow
@pytest.mark.parametrize("k", [16, 4])
def test_clustered_kws_on_the_m4_equals_the_reference(k, tmp_path):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    src = fixture("kws_ds_cnn_int8.tflite")
    res = compile_model(src, tmp_path / f"c{k}", cluster=k)
    shape = res.manifest.inputs[0].shape
    x = np.random.default_rng(k).integers(-128, 128, (2, *shape)).astype(np.int8)
    for kernels in ("dsp", "ref"):
        rep = profile(res.dir, "qemu://mps2-an386", runs=1, warmup=0, inputs=x,
                      kernels=kernels)
        assert rep["outputs_match_reference"] is True, (kernels, rep["mismatches"])
    dense = compile_model(src, tmp_path / "dense")
    flash = [build(d, "mps2-an386")["sizes"]["flash"] for d in (dense.dir, res.dir)]
    saved = res.report["cluster"]["saved_bytes"]
    assert flash[1] < flash[0] - saved // 2, flash      # the firmware feels most of it


@pytest.mark.slow
def test_clustered_fc_on_the_m4_costs_a_few_times_dense(tmp_path):
    """A clustered 512 -> 256 FC (16 values) runs ef_fc_packed_lut_s8: lanes expanded four
    rows at a time into ef_fc_packed_s8's layout. Each weight is used once per row, so the
    expansion is the cost; ef_fc_lut_s8 + ef_fc_s8 (the path before) took ~9x dense."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    from tests.c.test_fc_packed_lut import lut_case
    from tests.opcases import write_case
    x = np.random.default_rng(0).integers(-128, 128, (2, 1, 512)).astype(np.int8)
    case = lut_case("lut_m4", (1, 512), 256, 16, 7)        # weights of 16 values already
    src = write_case(case, tmp_path)
    got = {}
    for k in (0, 16):
        res = compile_model(src, tmp_path / f"k{k}", cluster=k or None)
        kernels = res.report["c"]["kernels"]
        assert ("ef_fc_packed_lut_s8" in kernels) == bool(k), kernels
        rep = profile(res.dir, "qemu://mps2-an386", runs=1, warmup=0, inputs=x, kernels="dsp")
        assert rep["outputs_match_reference"] is True, (k, rep["mismatches"])
        got[k] = rep["instructions"]["p50"]
    assert got[16] <= 4 * got[0], got      # measured 510,840 vs 145,160 (3.5x)
