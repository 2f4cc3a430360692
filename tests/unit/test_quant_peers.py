"""quantize_model on single-op float graphs, then its int8 .tflite: TFLM gives the same bytes
as our reference (profile tflm) and LiteRT BUILTIN_REF the same as our reference (profile
litert). Also the digits model end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeforge.codegen.tflite import write_tflite
from edgeforge.ir import Op
from edgeforge.quantize import quantize_model
from edgeforge.quantize.bias_correction import quantize_inputs
from tests.conftest import require
from tests.opcases import cases

ROOT = Path(__file__).resolve().parents[2]
FLOAT_CASES = {c.name: c for c in cases("float32")}


def _calib(graph, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    positive = graph.nodes[0].op in (Op.SQRT, Op.RSQRT)     # defined on x >= 0
    out = []
    for name in graph.inputs:
        shape = graph.tensors[name].shape
        sample = shape[1:] if shape[0] == 1 else shape
        x = (rng.standard_normal((n, *sample)) * 2.0).astype(np.float32)
        out.append(np.abs(x) + np.float32(0.01) if positive else x)
    return out


def _peer_check(qg, path: Path, feeds_f: list[np.ndarray], op: Op | None = None) -> None:
    """Ops TFLM has no int8 kernel for are checked against LiteRT alone (their tflm profile
    runs LiteRT's table); LiteRT's broken BUILTIN_REF SUM is replaced by its default kernel
    (tests/unit/test_reference_opcases.py keeps both reasons honest)."""
    from edgeforge.runtime import reference
    from edgeforge.runtime.peers import LitertRunner, TflmRunner
    from tests.unit.test_reference_opcases import LITERT_REF_BROKEN, TFLM_LACKS_INT8
    litert = LitertRunner(path, reference_kernels=op not in LITERT_REF_BROKEN)
    tflm = litert if op in TFLM_LACKS_INT8 else TflmRunner(path)
    q8 = quantize_inputs(qg, feeds_f)
    for i in range(q8[0].shape[0]):
        feeds = [x[i].reshape(qg.tensors[n].shape) for x, n in zip(q8, qg.inputs)]
        ours_t = reference.run(qg, feeds, numerics="tflm")
        ours_l = reference.run(qg, feeds, numerics="litert")
        for k, name in enumerate(qg.outputs):
            np.testing.assert_array_equal(tflm.run(feeds)[k], ours_t[name],
                                          err_msg=f"TFLM vs reference, sample {i}")
            np.testing.assert_array_equal(litert.run(feeds)[k], ours_l[name],
                                          err_msg=f"LiteRT vs reference, sample {i}")


@pytest.mark.parametrize("name", sorted(FLOAT_CASES))
def test_quantized_op_bit_exact_in_peers(name: str, tmp_path: Path) -> None:
    require("tflite_micro", "ai_edge_litert")
    case = FLOAT_CASES[name]
    qg = quantize_model(case.graph, _calib(case.graph, 48, 0), verbose=0)
    assert all(qg.tensors[t].dtype == "int8" for t in qg.inputs + qg.outputs)
    path = write_tflite(qg, tmp_path / f"{name}.tflite")
    _peer_check(qg, path, _calib(case.graph, 3, 1), case.op)


def test_digits_int8_bit_exact_and_accurate(tmp_path: Path) -> None:
    require("tflite_micro", "ai_edge_litert")
    from edgeforge.frontends.tflite import read_tflite
    from edgeforge.quantize.calibrate import batch_runner
    d = ROOT / "examples" / "digits"
    fg = read_tflite(d / "digits_float.tflite")
    qg = quantize_model(fg, d / "calib.npz", verbose=0)
    path = write_tflite(qg, tmp_path / "digits.tflite")
    test = np.load(d / "test.npz")
    _peer_check(qg, path, [test["x"][:4]])
    x, y = test["x"], test["y"]
    fr, qr = batch_runner(fg), batch_runner(qg)
    acc_f = np.mean(fr([x])[fg.outputs[0]].argmax(1) == y)
    acc_q = np.mean(qr(quantize_inputs(qg, [x]))[qg.outputs[0]].argmax(1) == y)
    assert acc_f > 0.95
    assert acc_q >= acc_f - 0.01, (acc_q, acc_f)


def test_concat_after_shared_quant_ops_needs_no_requant(tmp_path: Path) -> None:
    """CONCAT(maxpool(relu-conv(x)), conv(x)): the pool copies its input's quantization, so
    the conv feeding it takes the concat's range too; the result runs bit-exact."""
    require("tflite_micro", "ai_edge_litert")
    from edgeforge.ir import Act, ConcatAttrs, Conv2dAttrs, Graph, Node, Op, Pool2dAttrs, Tensor
    rng = np.random.default_rng(9)
    g = Graph(name="cat", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, 8, 8, 3)))
    for k, (name, scale) in enumerate((("a", 0.3), ("b", 3.0))):
        g.const(f"w{k}", (rng.standard_normal((4, 3, 3, 3)) * scale).astype(np.float32))
        g.const(f"b{k}", np.zeros(4, np.float32))
        g.add_tensor(Tensor(name, (1, 8, 8, 4)))
        g.nodes.append(Node(Op.CONV2D, ("x", f"w{k}", f"b{k}"), (name,),
                            Conv2dAttrs(pad=(1, 1, 1, 1), act=Act.RELU), f"conv_{name}"))
    g.add_tensor(Tensor("m", (1, 8, 8, 4)))
    g.nodes.append(Node(Op.MAXPOOL2D, ("a",), ("m",), Pool2dAttrs((3, 3), (1, 1),
                                                                 (1, 1, 1, 1)), "pool"))
    g.add_tensor(Tensor("y", (1, 8, 8, 8)))
    g.nodes.append(Node(Op.CONCAT, ("m", "b"), ("y",), ConcatAttrs(axis=3), "cat"))
    qg = quantize_model(g, _calib(g, 32, 3), verbose=0)
    assert [n.op for n in qg.nodes] == [n.op for n in g.nodes]      # no QUANTIZE inserted
    q = qg.tensors["y"].quant
    assert qg.tensors["m"].quant == q == qg.tensors["b"].quant == qg.tensors["a"].quant
    _peer_check(qg, write_tflite(qg, tmp_path / "cat.tflite"), _calib(g, 3, 4))


def test_constant_operands_and_activation_chain(tmp_path: Path) -> None:
    """ADD/MUL with float constants (quantized per tensor), then LEAKY_RELU and a
    depthwise conv with RELU6 and a mean: quantized and bit-exact in both peers."""
    require("tflite_micro", "ai_edge_litert")
    from edgeforge.ir import (
        Act,
        BinaryAttrs,
        DwConv2dAttrs,
        Graph,
        LeakyReluAttrs,
        MeanAttrs,
        Node,
        Op,
        Tensor,
    )
    rng = np.random.default_rng(10)
    g = Graph(name="consts", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, 6, 6, 4)))
    g.const("c_add", rng.uniform(-1, 1, (1, 1, 1, 4)).astype(np.float32))
    g.const("c_mul", rng.uniform(0.5, 2, (1, 1, 1, 4)).astype(np.float32))
    g.const("w", rng.standard_normal((1, 3, 3, 4)).astype(np.float32))
    g.const("b", rng.standard_normal(4).astype(np.float32) * 0.1)
    for name in ("a", "m", "l", "d"):
        g.add_tensor(Tensor(name, (1, 6, 6, 4)))
    g.add_tensor(Tensor("y", (1, 1, 1, 4)))
    g.nodes += [Node(Op.ADD, ("x", "c_add"), ("a",), BinaryAttrs(), "add"),
                Node(Op.MUL, ("a", "c_mul"), ("m",), BinaryAttrs(), "mul"),
                Node(Op.LEAKY_RELU, ("m",), ("l",), LeakyReluAttrs(0.1), "leaky"),
                Node(Op.DWCONV2D, ("l", "w", "b"), ("d",),
                     DwConv2dAttrs(pad=(1, 1, 1, 1), act=Act.RELU6), "dw"),
                Node(Op.MEAN, ("d",), ("y",), MeanAttrs((1, 2), True), "mean")]
    qg = quantize_model(g, _calib(g, 32, 5), verbose=0)
    consts = [i for n in qg.nodes if n.op in (Op.ADD, Op.MUL) for i in n.inputs
              if qg.tensors[i].is_const]
    assert len(consts) == 2                  # passes may reorder the chain; both stay const
    assert all(qg.tensors[c].dtype == "int8" and qg.tensors[c].quant for c in consts)
    _peer_check(qg, write_tflite(qg, tmp_path / "consts.tflite"), _calib(g, 3, 6))
