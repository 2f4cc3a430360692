"""Block-sparse FULLY_CONNECTED and 1x1 stride-1 CONV2D (ef_fc_bsr_s8): codegen stores only the nonzero 4x4 weight
blocks where at most half are nonzero, and the C kernels (reference and DSP, the latter on
plain-C intrinsics here) give the reference's bytes. QEMU instruction counts:
tests/targets/test_fc_block_sparse_qemu.py."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.codegen import c as codegen_c
from edgeforge.ir import Act, Op
from edgeforge.plan import scratch
from edgeforge.runtime import reference
from tests.c import cbuild
from tests.c.test_dsp_kernels import _fc, emit_c_dsp
from tests.conftest import require
from tests.opcases import _build, _conv, random_inputs


def block_prune(w: np.ndarray, keep: float, seed: int, empty_row: bool = False) -> np.ndarray:
    """w with all but a `keep` fraction of its 4x4 blocks zeroed (random blocks)."""
    w = np.array(w, np.int8)
    cout, cin = w.shape
    rng = np.random.default_rng(seed)
    nz = rng.random((-(-cout // 4), cin // 4)) < keep
    if empty_row:
        nz[0] = False            # a block row with no stored block: bias only
    w *= np.kron(nz, np.ones((4, 4), bool)).astype(np.int8)[:cout]
    return w


def sparse_case(name, x, cout, keep, seed, act=Act.NONE, empty_row=False, note=""):
    """An FC on x = (rows, C_IN), or a 1x1 stride-1 CONV2D on x = (1, H, W, C_IN), with all
    but a `keep` fraction of its 4x4 weight blocks zero."""
    spec = _fc(name, x, cout, act, note) if len(x) == 2 else \
        _conv(name, x, cout, (1, 1), padding="VALID", act=act, note=note)
    case = _build(spec, "int8")
    node = next(n for n in case.graph.nodes if n.op in (Op.FC, Op.CONV2D))
    t = case.graph.tensors[node.inputs[1]]
    t.data = block_prune(t.data.reshape(cout, -1), keep, seed, empty_row).reshape(t.shape)
    return case


def test_block_sparse_fc_layout_and_choice():
    rng = np.random.default_rng(3)
    full = block_prune(rng.integers(-127, 128, (12, 20)).astype(np.int8), 0.3, 1, empty_row=True)
    for w in (full, full[:10]):                      # C_OUT % 4: a zero-padded last block row
        bptr, bcol, bval = codegen_c.block_sparse_fc(w)
        assert bptr[0] == 0 and bptr[1] == 0 and bptr[-1] == bcol.size == bval.size // 16
        got = np.zeros((12, 20), np.int8)
        for br in range(3):
            for k in range(bptr[br], bptr[br + 1]):
                got[4 * br:4 * br + 4, bcol[k]:bcol[k] + 4] = \
                    bval[16 * k:16 * k + 16].reshape(4, 4)
        assert np.array_equal(got[:w.shape[0]], w) and not got[w.shape[0]:].any()
    dense = rng.integers(1, 128, (8, 16)).astype(np.int8)
    assert codegen_c.block_sparse_fc(dense) is None                      # nothing to skip
    assert codegen_c.block_sparse_fc(block_prune(dense, 0.6, 0)[:, :14]) is None  # C_IN % 4
    half = dense.copy()
    half[:, 8:] = 0
    assert codegen_c.block_sparse_fc(half) is not None                   # exactly half
    half[0, 8] = 1
    assert codegen_c.block_sparse_fc(half) is None                       # past half
    # a 1x1 conv: only where the sparse kernel beats the engine (sizes from QEMU counts)
    assert scratch.bsr_conv_density(32) == 0.0
    assert 0.25 < scratch.bsr_conv_density(64) < 0.3 < scratch.bsr_conv_density(128) < 0.5
    assert scratch.bsr_conv_density(512) == scratch.BSR_MAX_DENSITY


@pytest.mark.parametrize("numerics", ["tflm", "single"])
@pytest.mark.parametrize("kernels", ["ref", "dsp"])
def test_block_sparse_fc_c_equals_reference(kernels, numerics, tmp_path, monkeypatch):
    require("gcc")
    chosen = [sparse_case("bsr_fc_64x32", (1, 64), 32, 0.25, 1),
              sparse_case("bsr_fc_rows3_relu", (3, 40), 12, 0.4, 2, Act.RELU, empty_row=True),
              sparse_case("bsr_fc_empty", (2, 16), 8, 0.0, 3),
              sparse_case("bsr_fc_head10", (2, 64), 10, 0.25, 5, note="C_OUT % 4 = 2"),
              sparse_case("bsr_fc_head7", (1, 32), 7, 0.3, 6, Act.RELU),
              sparse_case("bsr_fc_dense_kept", (1, 16), 8, 1.0, 4),
              sparse_case("bsr_pw_6x5x128", (1, 6, 5, 128), 24, 0.25, 7, Act.RELU6),
              sparse_case("bsr_pw_head6", (1, 3, 3, 96), 6, 0.2, 8, empty_row=True,
                          note="C_OUT % 4 = 2"),
              sparse_case("bsr_pw_dense_kept", (1, 4, 4, 16), 8, 1.0, 9),
              sparse_case("bsr_pw_c32_dense_kept", (1, 4, 4, 32), 8, 0.25, 9,
                          note="C_IN 32: the engine is faster at any density")]
    if kernels == "dsp":
        monkeypatch.setattr(cbuild, "emit_c", emit_c_dsp)
    ml = cbuild.MultiLib({c.name: c.graph for c in chosen}, tmp_path, numerics)
    for c in chosen:
        text = (tmp_path / c.name / "model.c").read_text()
        assert ("ef_fc_bsr_s8(" in text) == (not c.name.endswith("_dense_kept")), c.name
        samples = random_inputs(c.graph, n=3, seed=5)
        for s, ys in zip(samples, ml.run(c.name, samples)):
            want = reference.run(c.graph, s, numerics=numerics)[c.graph.outputs[0]]
            assert np.array_equal(ys[0], np.asarray(want).reshape(ys[0].shape)), c.name


def test_block_sparse_pointwise_convs_in_place_poisoned_arena(tmp_path):
    """KWS with its 1x1 convs (64 -> 64) at 20% of their blocks: every one runs ef_fc_bsr_s8
    over its pixels, the plan overlaps their outputs with their inputs (the lagged rule: a
    pixel is read before it is written), and with every free arena byte poisoned after each
    op the C output still equals the reference."""
    require("gcc")
    from edgeforge.frontends import load
    from edgeforge.plan.memory import plan_graph
    from tests.c import test_inplace_poison as poison
    from tests.conftest import fixture
    g = load(fixture("kws_ds_cnn_int8.tflite"))
    pw = [n for n in g.nodes if n.op == Op.CONV2D and scratch.conv_kernel(n, g) ==
          "ef_conv2d_1x1_s8"]
    for k, n in enumerate(pw):
        t = g.tensors[n.inputs[1]]
        t.data = block_prune(t.data.reshape(t.shape[0], -1), 0.2, k).reshape(t.shape)
    assert pw and all(scratch.conv_kernel(n, g) == "ef_fc_bsr_s8" for n in pw)
    plan = plan_graph(g, inplace_kernels=True)
    g = plan.schedule(g)
    pw_out = {n.outputs[0] for n in pw}
    assert any(s.used and s.output in pw_out for s in plan.shares), plan.shares
    samples = poison.inputs_for(g, 2, seed=3)
    exe = poison.build(g, plan, tmp_path / "poison", poison.free_table(plan, g))
    assert "ef_fc_bsr_s8(" in (tmp_path / "poison" / "model.c").read_text()
    poison.assert_same(poison.run_exe(exe, g, samples), poison.reference(g, samples),
                       "block-sparse KWS poisoned")
