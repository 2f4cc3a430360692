"""Hybrid (dynamic-range) layers: float activations, int8 weights with scales.

Single-layer models for every hybrid kernel LiteRT has (CONV_2D per tensor / per channel,
DEPTHWISE_CONV_2D per channel, FULLY_CONNECTED per tensor / per channel) are written by our
.tflite writer (which stores the weight as int8 again) and run by LiteRT's builtin kernels,
reference and optimized; the float reference must agree to float32 rounding of the final
rescale (the two LiteRT kernels multiply acc * w_scale * in_scale in different orders).
"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.codegen.tflite import tflite_bytes
from edgeforge.frontends.tflite import graph_from_bytes
from edgeforge.ir import (
    Act,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    Graph,
    Node,
    Op,
    QuantParams,
    Tensor,
    hybrid_int8,
)
from edgeforge.quantize import prepare_float
from edgeforge.runtime import reference as R
from tests.conftest import require

# name -> (op, input shape, weight shape, output shape, attrs, per-channel?)
LAYERS = {
    "conv_per_tensor": (Op.CONV2D, (2, 7, 6, 4), (5, 3, 3, 4), (2, 4, 6, 5),
                        Conv2dAttrs(stride=(2, 1), pad=(1, 1, 1, 1), act=Act.RELU6), False),
    "conv_per_channel": (Op.CONV2D, (2, 7, 6, 4), (5, 3, 3, 4), (2, 7, 6, 5),
                         Conv2dAttrs(pad=(1, 1, 1, 1)), True),
    "dwconv_per_channel": (Op.DWCONV2D, (2, 7, 6, 4), (1, 3, 3, 8), (2, 7, 6, 8),
                           DwConv2dAttrs(pad=(1, 1, 1, 1), depth_multiplier=2), True),
    "fc_per_tensor": (Op.FC, (3, 20), (7, 20), (3, 7), FcAttrs(act=Act.RELU), False),
    "fc_per_channel": (Op.FC, (3, 20), (7, 20), (3, 7), FcAttrs(), True),
}


def _layer(name: str) -> Graph:
    op, xs, ws, ys, attrs, per_channel = LAYERS[name]
    rng = np.random.default_rng(len(name))
    axis = 3 if op == Op.DWCONV2D else 0
    cout = ws[axis]
    q = rng.integers(-127, 128, ws).astype(np.int8)
    scale = rng.uniform(0.005, 0.02, cout if per_channel else 1).astype(np.float32)
    shape = [1] * len(ws)
    shape[axis] = -1 if per_channel else 1
    g = Graph(name=name)
    g.add_tensor(Tensor("x", xs))
    g.add_tensor(Tensor("w", ws, "float32", QuantParams(scale, np.zeros(scale.size), axis),
                        scale.reshape(shape) * q.astype(np.float32)))
    g.const("b", rng.normal(0, 0.1, cout).astype(np.float32))
    g.add_tensor(Tensor("y", ys))
    g.nodes = [Node(op, ("x", "w", "b"), ("y",), attrs, name)]
    g.inputs, g.outputs = ["x"], ["y"]
    return g


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("reference", [True, False], ids=["builtin_ref", "builtin_opt"])
def test_hybrid_layer_matches_litert(name, reference):
    require("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    g = _layer(name)
    buf = tflite_bytes(g)
    g2 = graph_from_bytes(buf)
    assert np.array_equal(hybrid_int8(g2.tensors["w"]), hybrid_int8(g.tensors["w"]))
    params = R.prepare_graph(g2)
    assert any(isinstance(q, R.HybridWeight) for q in params)
    kind = (OpResolverType.BUILTIN_REF if reference
            else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it = Interpreter(model_content=buf, experimental_op_resolver_type=kind, num_threads=1)
    it.allocate_tensors()
    rng = np.random.default_rng(5)
    for k in range(20):
        x = rng.normal(0.5, 2, g.tensors["x"].shape).astype(np.float32)
        if k == 0:
            x[:] = 0          # all-zero input: scale 1 (symmetric) / 0 (asymmetric), y = bias
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        z = it.get_tensor(it.get_output_details()[0]["index"])
        y = R.run(g2, [x], params=params)["y"]
        assert y.dtype == np.float32
        assert np.abs(y - z).max() <= 2.5e-7 * max(np.abs(z).max(), 1e-30), k


def test_off_grid_weight_runs_float_and_quantizer_sees_float():
    g = _layer("conv_per_channel")
    assert isinstance(R.prepare_graph(g)[0], R.HybridWeight)
    p = prepare_float(g)
    assert all(t.quant is None for t in p.tensors.values() if t.dtype == "float32")
    assert g.tensors["w"].quant is not None           # the caller's graph is untouched
    g.tensors["w"].data = g.tensors["w"].data * np.float32(0.999)   # as a pass might
    assert R.prepare_graph(g)[0] is None
    x = np.random.default_rng(1).normal(0, 1, g.tensors["x"].shape).astype(np.float32)
    want = R.conv2d(x, g.tensors["w"].data, g.tensors["b"].data, g.nodes[0].attrs)
    np.testing.assert_array_equal(R.run(g, [x])["y"], want)


def test_asymmetric_fc_inputs_stay_plain_float():
    """FULLY_CONNECTED's asymmetric_quantize_inputs has no IR attr, so such a weight is read
    as plain float (dequantized), never run with the symmetric hybrid kernel."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes(_layer("fc_per_tensor"))), 0)
    assert graph_from_bytes(_pack(model)).tensors["w"].quant is not None
    model.subgraphs[0].operators[0].builtinOptions.asymmetricQuantizeInputs = True
    g = graph_from_bytes(_pack(model))
    assert g.tensors["w"].quant is None and "w" in g.meta["dequantized_weights"]
    assert R.prepare_graph(g) == [None]


def _pack(model) -> bytes:
    import flatbuffers
    b = flatbuffers.Builder(4096)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
