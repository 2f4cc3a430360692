"""Issue 11's second group of ops (transformer set, TRANSPOSE_CONV, ...): ONNX import against
onnxruntime, the Erf-GELU fusion, and small multi-op int8 models written by our .tflite
writer, byte-equal with TFLM and LiteRT and with the generated C. The single-op cases live in
tests/opcases.py (so test_reference_opcases and tests/c/test_kernels_opcases cover them)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.unit.test_onnx_import import _check, _init, _ops, _save

D = 16
RNG = np.random.default_rng(11)


def _layernorm_nodes(x: str, out: str, opset: int) -> tuple[list, list]:
    g, b = RNG.normal(1, 0.2, D), RNG.normal(0, 0.2, D)
    return ([helper.make_node("LayerNormalization", [x, "ln_g", "ln_b"], [out], axis=-1,
                              epsilon=1e-5)], [_init("ln_g", g), _init("ln_b", b)])


def test_layernorm_decomposes_into_int8_ops(tmp_path):
    nodes, inits = _layernorm_nodes("x", "y", 17)
    g = _check(_save(tmp_path, nodes, [("x", [1, 5, D])], [("y", [1, 5, D])], inits, opset=17))
    ops = _ops(g)
    assert {"MEAN", "SQUARED_DIFFERENCE", "RSQRT"} <= set(ops), ops


@pytest.mark.parametrize("order", ["x_half_last", "half_first", "mul_by_inv_sqrt2"])
def test_erf_gelu_pattern_fuses_to_one_gelu(tmp_path, order):
    n = [helper.make_node("Div", ["x", "sqrt2"], ["d"]) if order != "mul_by_inv_sqrt2"
         else helper.make_node("Mul", ["x", "isqrt2"], ["d"]),
         helper.make_node("Erf", ["d"], ["e"]),
         helper.make_node("Add", ["e", "one"], ["p"])]
    if order == "half_first":
        n += [helper.make_node("Mul", ["x", "half"], ["xh"]),
              helper.make_node("Mul", ["xh", "p"], ["y"])]
    else:
        n += [helper.make_node("Mul", ["x", "p"], ["xp"]),
              helper.make_node("Mul", ["xp", "half"], ["y"])]
    inits = [_init("sqrt2", np.float32(2 ** 0.5)), _init("isqrt2", np.float32(2 ** -0.5)),
             _init("one", np.float32(1)), _init("half", np.float32(0.5))]
    g = _check(_save(tmp_path, n, [("x", [1, 4, D])], [("y", [1, 4, D])], inits))
    assert _ops(g) == ["GELU"]


def test_gelu_op_sqrt_exp_pow(tmp_path):
    n = [helper.make_node("Gelu", ["x"], ["g"], approximate="tanh"),
         helper.make_node("Exp", ["g"], ["e"]),
         helper.make_node("Sqrt", ["e"], ["s"]),
         helper.make_node("Pow", ["s", "two"], ["y"])]
    g = _check(_save(tmp_path, n, [("x", [1, 4, D])], [("y", [1, 4, D])],
                     [_init("two", np.float32(2))], opset=20))
    assert _ops(g) == ["GELU", "EXP", "SQRT", "MUL"]


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("keep", [0, 1])
def test_reductions(tmp_path, op, keep):
    opset = 18   # axes as an input for all three
    n = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keep)]
    out = [1, 3, 1, 5] if keep else [1, 3, 5]
    g = _check(_save(tmp_path, n, [("x", [1, 3, 4, 5])], [("y", out)],
                     [_init("axes", np.array([2], np.int64))], opset=opset))
    assert {"SUM", "REDUCE_MAX", "REDUCE_MIN"} & set(_ops(g))


@pytest.mark.parametrize("idx", [np.array(0), np.array([3, 0, 1]), np.array([[1, -1], [0, 2]])])
def test_gather_constant_indices(tmp_path, idx):
    n = [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)]
    out = [1] + list(idx.shape) + [D]
    g = _check(_save(tmp_path, n, [("x", [1, 5, D])], [("y", out)],
                     [_init("idx", idx.astype(np.int64))]))
    assert "GATHER" in _ops(g)


def test_prelu_per_channel_is_one_op(tmp_path):
    n = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("PRelu", ["c", "s"], ["y"])]
    inits = [_init("w", RNG.normal(0, 0.3, (6, 3, 3, 3))),
             _init("s", RNG.uniform(0, 0.5, (6, 1, 1)))]
    g = _check(_save(tmp_path, n, [("x", [1, 3, 8, 8])], [("y", [1, 6, 6, 6])], inits))
    assert _ops(g) == ["CONV2D", "PRELU"]


@pytest.mark.parametrize("k,s,p,op", [(2, 2, 0, 0), (3, 2, 1, 1), (3, 1, 1, 0), (4, 2, 1, 0)])
def test_conv_transpose(tmp_path, k, s, p, op):
    n = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[k, k],
                          strides=[s, s], pads=[p, p, p, p], output_padding=[op, op])]
    o = (5 - 1) * s + k - 2 * p + op
    inits = [_init("w", RNG.normal(0, 0.3, (4, 3, k, k))), _init("b", RNG.normal(0, 0.1, 3))]
    g = _check(_save(tmp_path, n, [("x", [1, 4, 5, 5])], [("y", [1, 3, o, o])], inits))
    assert _ops(g) == ["TRANSPOSE_CONV"]


def test_conv_transpose_1d(tmp_path):
    n = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[4], strides=[2],
                          pads=[1, 1])]
    g = _check(_save(tmp_path, n, [("x", [1, 4, 7])], [("y", [1, 2, 14])],
                     [_init("w", RNG.normal(0, 0.3, (4, 2, 4)))]))
    assert "TRANSPOSE_CONV" in _ops(g)
