"""Every single-op case of tests/opcases.py: the int8 reference is bit-exact to TFLM under
profile tflm and to LiteRT BUILTIN_REF under profile litert; float cases match LiteRT."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge import qparams
from edgeforge.ir import OPS, Op
from edgeforge.qmath import Numerics
from edgeforge.runtime import peers
from edgeforge.runtime import reference as R
from tests.conftest import require
from tests.opcases import cases, float_only_cases, random_inputs, tflm_arena_size, write_case

N_INPUTS = 20
INT8 = cases("int8")
FLOAT = cases("float32") + float_only_cases()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Each case's .tflite, written once per test session."""
    d = tmp_path_factory.mktemp("opcases")
    paths: dict[tuple[str, str], object] = {}

    def get(case):
        key = (case.name, case.dtype)
        if key not in paths:
            paths[key] = write_case(case, d)
        return paths[key]
    return get


# int8 ops TFLM has no kernel for: the tflm profile runs LiteRT's algorithm, checked there
TFLM_LACKS_INT8 = {Op.SQRT: "elementwise.cc: float only", Op.EXP: "exp.cc: float only",
                   Op.GELU: "no GELU kernel"}


# int8 ops whose LiteRT BUILTIN_REF kernel is wrong: the litert profile follows LiteRT's
# default kernel instead (sdk/qparams.py SINGLE_ROUNDING_OPS says how)
LITERT_REF_BROKEN = {Op.SUM: "BUILTIN_REF int8 SUM writes -1 whatever the input"}


@pytest.mark.parametrize("numerics", [Numerics.TFLM, Numerics.LITERT])
@pytest.mark.parametrize("case", INT8, ids=[c.name for c in INT8])
def test_int8_case_bit_exact(case, numerics, written):
    require("tflite_micro", "ai_edge_litert")
    path = written(case)
    if numerics == Numerics.TFLM and case.op not in TFLM_LACKS_INT8:
        peer = peers.TflmRunner(path, arena_size=tflm_arena_size(case.graph))
    else:
        peer = peers.LitertRunner(path, reference_kernels=case.op not in LITERT_REF_BROKEN)
    g = case.graph
    params = R.prepare_graph(g, numerics)
    for k, feeds in enumerate(random_inputs(g, n=N_INPUTS, seed=11)):
        ours = R.run(g, feeds, numerics=numerics, params=params)[g.outputs[0]]
        theirs = peer.run(feeds)[0].reshape(ours.shape)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{case.name} input {k}")


# LRN: LiteRT's *reference* kernel sums channels [c-r, c+r) (an off-by-one against TF's
# documented [c-r, c+r]); we follow the documented window, as LiteRT's default kernels do.
OPTIMIZED_PEER = {Op.LRN}


@pytest.mark.parametrize("case", FLOAT, ids=[c.name for c in FLOAT])
def test_float_case_matches_litert(case, written):
    require("ai_edge_litert")
    peer = peers.LitertRunner(written(case), reference_kernels=case.op not in OPTIMIZED_PEER)
    g = case.graph
    for feeds in random_inputs(g, n=5, seed=12):
        ours = R.run(g, feeds)[g.outputs[0]]
        theirs = peer.run(feeds)[0].reshape(ours.shape)
        scale = max(float(np.abs(theirs).max()), 1e-30)
        assert float(np.abs(ours.astype(np.float64) - theirs).max()) <= 1e-5 * scale, case.name


def test_every_op_has_kernels_and_prepare():
    assert set(R.REFERENCE) == set(OPS)
    int8_ops = {op for op, info in OPS.items() if info.int8}
    assert set(R.REFERENCE_S8) == int8_ops
    assert set(qparams.PREPARE) == int8_ops
    missing = int8_ops - {c.op for c in INT8}
    assert not missing, f"int8 ops without an opcase: {missing}"


@pytest.mark.parametrize("op", sorted(TFLM_LACKS_INT8))
def test_tflm_lacks_the_int8_kernel(op, written):
    """The reason in TFLM_LACKS_INT8 stays true: TFLM refuses the int8 op."""
    require("tflite_micro")
    case = next(c for c in INT8 if c.op == op)
    with pytest.raises(RuntimeError):
        peers.TflmRunner(written(case)).run(random_inputs(case.graph, n=1, seed=0)[0])


@pytest.mark.parametrize("op", sorted(LITERT_REF_BROKEN))
def test_litert_reference_kernel_still_broken(op, written):
    """The reason in LITERT_REF_BROKEN stays true (when LiteRT fixes it, use BUILTIN_REF)."""
    require("ai_edge_litert")
    case = next(c for c in INT8 if c.op == op)
    feeds = random_inputs(case.graph, n=1, seed=0)[0]
    ref = peers.LitertRunner(written(case)).run(feeds)[0]
    ours = R.run(case.graph, feeds, numerics=Numerics.LITERT)[case.graph.outputs[0]]
    assert (ref == -1).all() and not (ours.ravel() == -1).all()


def test_quantize_float_at_rounding_ties(written):
    """Inputs one ulp around (k + 0.5) * scale: std::round on the float quotient decides."""
    require("tflite_micro", "ai_edge_litert")
    case = next(c for c in INT8 if c.name == "quantize_float")
    g, path = case.graph, written(case)
    tflm = peers.TflmRunner(path, arena_size=tflm_arena_size(g))
    litert = peers.LitertRunner(path)
    scale = float(g.tensors[g.outputs[0]].quant.scale[0])
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(5)
    for _ in range(20):
        x = ((rng.integers(-130, 130, shape) + 0.5) * scale).astype(np.float32)
        x = np.nextafter(x, rng.choice([-np.inf, np.inf], shape)).astype(np.float32)
        ours = R.run(g, [x])[g.outputs[0]]
        np.testing.assert_array_equal(ours, tflm.run([x])[0])
        np.testing.assert_array_equal(ours, litert.run([x])[0])
