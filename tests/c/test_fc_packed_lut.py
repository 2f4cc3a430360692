"""Clustered FULLY_CONNECTED (compile --cluster): ef_fc_packed_lut_s8 expands one index per
int16 lane of ef_fc_packed_s8's layout through a lane table and runs that kernel on four or
more rows at a time. The layout matches pack_fc byte for byte, and the C kernels (reference
and DSP, the latter on plain-C intrinsics here) give the reference's bytes. QEMU instruction
counts: benchmarks/sparse_mcu.py (README)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.codegen import c as codegen_c
from edgeforge.ir import Act, Op
from edgeforge.plan.scratch import unpacked_bytes
from edgeforge.runtime import reference
from tests.c import cbuild
from tests.c.test_dsp_kernels import _fc, emit_c_dsp
from tests.conftest import require
from tests.opcases import _build, random_inputs


def _clustered(w: np.ndarray, k: int, seed: int) -> np.ndarray:
    """w with every value replaced by the nearest of k random int8 values (0 among them)."""
    rng = np.random.default_rng(seed)
    vals = np.unique(np.concatenate([[0], rng.choice(np.arange(-127, 128), k - 1, False)]))
    return vals[np.abs(w.astype(np.int64)[..., None] - vals).argmin(-1)].astype(np.int8)


def lut_case(name, x, cout, k, seed, act=Act.NONE):
    case = _build(_fc(name, x, cout, act), "int8")
    node = next(n for n in case.graph.nodes if n.op == Op.FC)
    t = case.graph.tensors[node.inputs[1]]
    t.data = _clustered(t.data, k, seed)
    case.graph.meta["cluster"] = k
    return case


def _lanes(table: np.ndarray, bits: int) -> np.ndarray:
    """ef_fc_packed_lut_s8's lane table, in Python: lane (a, b) as two bytes."""
    n = 1 << bits
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="xy")   # [b, a]
    lo, hi = table[a].astype(np.int64), table[b].astype(np.int64) - (table[a] < 0)
    out = np.zeros((n * n, 2), np.uint8)
    out[(a | b << bits).ravel()] = np.stack([lo & 0xFF, hi & 0xFF], -1).reshape(-1, 2)
    return out


@pytest.mark.parametrize("bits", [4, 2])
def test_lane_indices_expand_to_pack_fc_layout(bits):
    rng = np.random.default_rng(bits)
    w = _clustered(rng.integers(-127, 128, (12, 20)).astype(np.int8), 1 << bits, 3)
    table, idx = codegen_c.pack_fc_lut(w, bits)
    lanes = idx if bits == 4 else np.stack([idx & 0xF, idx >> 4], -1).ravel()
    got = _lanes(table, bits)[lanes].ravel().view(np.int8)
    packed, _, _ = codegen_c.pack_fc(w, None, 0)
    assert np.array_equal(got, packed)
    assert idx.size == w.size * bits // 8                        # an index per lane, no more
    assert codegen_c.pack_fc_lut(w[:10], bits) is None           # C_OUT % 4: ef_fc_lut_s8
    assert codegen_c.pack_fc_lut(w[:, :18], bits) is None        # C_IN % 4


@pytest.mark.parametrize("numerics", ["tflm", "single"])
@pytest.mark.parametrize("kernels", ["ref", "dsp"])
def test_packed_lut_fc_c_equals_reference(kernels, numerics, tmp_path, monkeypatch):
    require("gcc")
    chosen = [lut_case("lut_fc_64x32", (3, 64), 32, 16, 1),
              lut_case("lut_fc_k4_relu", (2, 128), 8, 4, 2, Act.RELU),
              lut_case("lut_fc_chunks", (1, 640), 12, 16, 3),     # 4 rows a chunk: 3 chunks
              lut_case("lut_fc_head10", (2, 32), 10, 16, 4)]      # C_OUT % 4: ef_fc_lut_s8
    if kernels == "dsp":
        monkeypatch.setattr(cbuild, "emit_c", emit_c_dsp)
    ml = cbuild.MultiLib({c.name: c.graph for c in chosen}, tmp_path, numerics)
    for c in chosen:
        text = (tmp_path / c.name / "model.c").read_text()
        assert ("ef_fc_packed_lut_s8(" in text) == (c.name != "lut_fc_head10"), c.name
        if c.name == "lut_fc_chunks":                            # rows at a time, not all
            assert unpacked_bytes(c.graph.nodes[0], c.graph) == 512 + 4 * 640
        samples = random_inputs(c.graph, n=3, seed=5)
        for s, ys in zip(samples, ml.run(c.name, samples)):
            want = reference.run(c.graph, s, numerics=numerics)[c.graph.outputs[0]]
            assert np.array_equal(ys[0], np.asarray(want).reshape(ys[0].shape)), c.name
