"""Operators of issue 11/20's first group, end to end on small graphs: hard sigmoid rewritten
to int8 ops, 1-D windows and GlobalAveragePool on rank 3, channel splits, resizes, shape
computations folded at import. (Single-op byte equality with TFLM / LiteRT / C runs from
tests/opcases.py in test_reference_opcases and tests/c/test_kernels_opcases.)"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.ir import Graph, HardSigmoidAttrs, Node, Op, Tensor
from edgeforge.passes import run_passes
from edgeforge.runtime.reference import run


def _onnx_model(tmp_path, nodes, inputs, outputs, inits=(), name="m"):
    import onnx
    from onnx import helper
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, path)
    return path


def _ort(path, feeds):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _vi(name, shape):
    from onnx import TensorProto, helper
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


# ---------------------------------------------------------------- HARD_SIGMOID
@pytest.mark.parametrize("alpha,beta", [(1 / 6, 0.5), (0.2, 0.5), (0.25, 0.4)])
def test_hard_sigmoid_becomes_int8_ops_with_the_same_float_values(alpha, beta):
    g = Graph()
    g.add_tensor(Tensor("x", (1, 4, 4, 8)))
    g.add_tensor(Tensor("y", (1, 4, 4, 8)))
    g.nodes.append(Node(Op.HARD_SIGMOID, ("x",), ("y",), HardSigmoidAttrs(alpha, beta)))
    g.inputs, g.outputs = ["x"], ["y"]
    x = np.random.default_rng(0).normal(0, 4, (1, 4, 4, 8)).astype(np.float32)
    want = run(g, [x])["y"]
    run_passes(g)
    assert Op.HARD_SIGMOID not in {n.op for n in g.nodes}
    assert all(n.op in (Op.MUL, Op.ADD, Op.RELU6) for n in g.nodes)
    np.testing.assert_allclose(run(g, [x])["y"], want, atol=1e-6)


def test_squeeze_excite_with_hard_sigmoid_folds_into_the_conv(tmp_path):
    """conv -> HardSigmoid: the +3 goes into the bias and RELU6 into the act, one MUL left."""
    from onnx import helper, numpy_helper

    from edgeforge.frontends.onnx import read_onnx
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (8, 8, 1, 1)).astype(np.float32), "w")
    path = _onnx_model(tmp_path, [helper.make_node("Conv", ["x", "w"], ["c"]),
                                  helper.make_node("HardSigmoid", ["c"], ["s"], alpha=1 / 6),
                                  helper.make_node("Mul", ["x", "s"], ["y"])],
                       [_vi("x", (1, 8, 4, 4))], [_vi("y", (1, 8, 4, 4))], [w])
    g = read_onnx(path)
    assert sorted(n.op.value for n in g.nodes) == ["CONV2D", "MUL", "MUL"]
    x = rng.normal(0, 2, (1, 8, 4, 4)).astype(np.float32)
    [ref] = _ort(path, {"x": x})
    ours = run(g, [x.transpose(0, 2, 3, 1)])["y"].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- 1-D
def test_global_average_pool_on_rank_3(tmp_path):
    from onnx import helper

    from edgeforge.frontends.onnx import read_onnx
    path = _onnx_model(tmp_path, [helper.make_node("GlobalAveragePool", ["x"], ["y"])],
                       [_vi("x", (1, 6, 20))], [_vi("y", (1, 6, 1))])
    g = read_onnx(path)
    assert [n.op for n in g.nodes if n.op != Op.RESHAPE] == [Op.MEAN]
    x = np.random.default_rng(2).normal(size=(1, 6, 20)).astype(np.float32)
    [ref] = _ort(path, {"x": x})
    np.testing.assert_allclose(run(g, [x])["y"], ref, rtol=1e-6)
