"""Every C kernel against runtime.reference on the single-op cases (tests/opcases.py),
bit-exact, in every numerics profile; ops without a C kernel get one clear error."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.codegen.c import EMITTERS, emit_c
from edgeforge.errors import UnsupportedOpError
from edgeforge.runtime import reference
from tests.c.cbuild import MultiLib, SeqPlan
from tests.conftest import require
from tests.opcases import cases, random_inputs

INT8 = cases("int8")
# ops the C package does not take, each with why (the compile error names them)
NO_C = {
    "quantize_float": "float input: the C package is int8 end to end",
    "dequantize": "float output: the C package is int8 end to end",
}
SUPPORTED = [c for c in INT8 if c.name not in NO_C]
N_SAMPLES = 6


@pytest.fixture(scope="module", params=["tflm", "litert", "single"])
def lib(request, tmp_path_factory):
    require("gcc")
    root = tmp_path_factory.mktemp(f"opcases_{request.param}")
    return request.param, MultiLib({c.name: c.graph for c in SUPPORTED}, root, request.param)


@pytest.mark.parametrize("case", SUPPORTED, ids=lambda c: c.name)
def test_kernel_matches_reference(lib, case):
    numerics, ml = lib
    samples = random_inputs(case.graph, n=N_SAMPLES, seed=7)
    got = ml.run(case.name, samples)
    for s, ys in zip(samples, got):
        ref = reference.run(case.graph, s, numerics=numerics)
        for name, y in zip(case.graph.outputs, ys):
            want = np.asarray(ref[name]).reshape(y.shape)
            assert np.array_equal(y, want), (
                f"{case.name} [{numerics}]: {int((y != want).sum())} of {y.size} bytes differ")


def test_every_c_op_has_a_case():
    covered = {c.op for c in SUPPORTED}
    assert set(EMITTERS) <= covered, set(EMITTERS) - covered


@pytest.mark.parametrize("name", sorted(NO_C))
def test_unsupported_case_is_one_clear_error(name, tmp_path):
    case = next(c for c in INT8 if c.name == name)
    with pytest.raises(UnsupportedOpError) as e:
        emit_c(case.graph, SeqPlan(case.graph), tmp_path / "c")
    assert case.op.value in str(e.value) or "int8" in str(e.value)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("name", ["add_bcast_channel", "mul_same_shape"])
def test_constant_operand_lives_in_weights(name, tmp_path):
    """A binary op whose second operand is a constant (e.g. a folded scale) reads it from
    weights.c; bytes equal the reference's in both profiles."""
    require("gcc")
    g = next(c for c in INT8 if c.name == name).graph.copy()
    const = g.nodes[0].inputs[1]
    rng = np.random.default_rng(11)
    g.tensors[const].data = rng.integers(-128, 128, size=g.tensors[const].shape).astype(np.int8)
    g.inputs = [i for i in g.inputs if i != const]
    samples = random_inputs(g, n=4, seed=3)
    for numerics in ("tflm", "litert"):
        ml = MultiLib({"cop": g}, tmp_path / numerics, numerics)
        assert "ef_cop_" + g.nodes[0].op.value.lower() + "0_c2" in (
            tmp_path / numerics / "cop" / "weights.c").read_text()
        for s, ys in zip(samples, ml.run("cop", samples)):
            want = reference.run(g, s, numerics=numerics)[g.outputs[0]]
            assert np.array_equal(ys[0], np.asarray(want).reshape(ys[0].shape))


@pytest.mark.parametrize("name", ["add_relu", "sub_same_shape"])
def test_large_add_sub_table_path(name, tmp_path):
    """>= 1024 same-shape elements take ef_add_s8's tabulated path: same bytes."""
    require("gcc")
    g = next(c for c in INT8 if c.name == name).graph.copy()
    for t in (*g.nodes[0].inputs, *g.nodes[0].outputs):
        g.tensors[t].shape = (1, 16, 16, 8)
    samples = random_inputs(g, n=3, seed=5)
    for numerics in ("tflm", "litert"):
        ml = MultiLib({"big": g}, tmp_path / numerics, numerics)
        for s, ys in zip(samples, ml.run("big", samples)):
            want = reference.run(g, s, numerics=numerics)[g.outputs[0]]
            assert np.array_equal(ys[0], np.asarray(want).reshape(ys[0].shape))


def _widen_conv(g, k: int = 2):
    """The conv case with its output channels tiled k times (filter w, -w, ...): enough
    output channels for codegen to pick ef_conv2d_shallow_s8 (transposed filter)."""
    from edgeforge.ir import QuantParams
    g = g.copy()
    n = g.nodes[0]
    wt, yt = g.tensors[n.inputs[1]], g.tensors[n.outputs[0]]
    w = np.concatenate([wt.data if j % 2 == 0 else np.clip(-wt.data.astype(np.int16), -127, 127)
                        .astype(np.int8) for j in range(k)])
    wt.data, wt.shape = w, w.shape
    if wt.quant.per_channel:
        wt.quant = QuantParams(np.tile(wt.quant.scale, k), np.tile(wt.quant.zero_point, k), 0)
    if len(n.inputs) > 2 and n.inputs[2]:
        bt = g.tensors[n.inputs[2]]
        bt.data = np.tile(bt.data, k)
        bt.shape = bt.data.shape
        if bt.quant is not None and bt.quant.per_channel:
            bt.quant = QuantParams(np.tile(bt.quant.scale, k), np.tile(bt.quant.zero_point, k))
    yt.shape = (*yt.shape[:-1], yt.shape[-1] * k)
    return g


SHALLOW = [c for c in SUPPORTED if c.op.value == "CONV2D" and c.name != "conv_1x1"]


@pytest.mark.parametrize("case", SHALLOW, ids=lambda c: c.name)
def test_shallow_conv_variant(case, tmp_path):
    require("gcc")
    g = _widen_conv(case.graph)
    samples = random_inputs(g, n=3, seed=9)
    for numerics in ("tflm", "litert"):
        ml = MultiLib({"sc": g}, tmp_path / numerics, numerics)
        assert "ef_conv2d_shallow_s8(" in (tmp_path / numerics / "sc" / "model.c").read_text()
        for s, ys in zip(samples, ml.run("sc", samples)):
            want = reference.run(g, s, numerics=numerics)[g.outputs[0]]
            assert np.array_equal(ys[0], np.asarray(want).reshape(ys[0].shape)), numerics
