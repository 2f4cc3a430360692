"""Quant-parameter variants the opcases do not cover, each checked against BOTH peers:
random input/output scales for every requantizing/LUT op, RELU6 with out q != in q (where
TFLM and LiteRT disagree), per-channel FC, MEAN over other axes / equal quant, and CONCAT
with mismatched quant (both runtimes refuse it, and so does qparams)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from edgeforge import qparams
from edgeforge.codegen.tflite import write_tflite
from edgeforge.errors import ModelError, QuantizeError
from edgeforge.ir import MeanAttrs, QuantParams, SoftmaxAttrs, Tensor
from edgeforge.qmath import Numerics
from edgeforge.runtime import peers
from edgeforge.runtime import reference as R
from tests.conftest import require
from tests.opcases import case, random_inputs, tflm_arena_size

RESCALE_OUT = ["hard_swish", "leaky_relu", "relu", "mean_hw", "add_same_shape",
               "sub_bcast_channel", "mul_bcast_spatial", "quantize_requant", "relu6"]
FIXED_OUT = ["logistic", "tanh", "softmax", "softmax_rows", "dequantize"]


def _setq(g, name, scale, zp):
    g.tensors[name].quant = QuantParams(np.array([scale], np.float32), np.array([zp]))


def _random_q_variant(name: str, seed: int):
    rng = np.random.default_rng(seed)
    g = copy.deepcopy(case(name).graph)
    node = g.nodes[0]
    for i in node.inputs:
        t = g.tensors[i]
        if t.dtype == "int8" and not t.is_const:
            _setq(g, i, float(10 ** rng.uniform(-3.5, 0.5)), int(rng.integers(-128, 128)))
    if name in RESCALE_OUT:
        _setq(g, g.outputs[0], float(10 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128)))
    if name.startswith("softmax") and seed % 2:
        g.nodes[0] = node.with_(attrs=SoftmaxAttrs(float(rng.uniform(0.3, 3.0)),
                                                   node.attrs.axis))
    return g


def _assert_both_peers(g, path, n=10):
    tflm = peers.TflmRunner(path, arena_size=tflm_arena_size(g))
    litert = peers.LitertRunner(path)
    for numerics, peer in ((Numerics.TFLM, tflm), (Numerics.LITERT, litert)):
        for feeds in random_inputs(g, n=n, seed=3):
            ours = R.run(g, feeds, numerics=numerics)[g.outputs[0]]
            np.testing.assert_array_equal(ours, peer.run(feeds)[0].reshape(ours.shape),
                                          err_msg=str(numerics))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", RESCALE_OUT + FIXED_OUT)
def test_random_quant_params(name, seed, tmp_path):
    require("tflite_micro", "ai_edge_litert")
    g = _random_q_variant(name, seed)
    if name == "relu6":          # TFLM's RELU6 does not rescale: only meaningful with q_in
        _setq(g, g.outputs[0], float(g.tensors[g.inputs[0]].quant.scale[0]),
              int(g.tensors[g.inputs[0]].quant.zero_point[0]))
    _assert_both_peers(g, write_tflite(g, tmp_path / f"{name}_{seed}.tflite"))


def test_relu6_rescaling_is_where_the_profiles_split(tmp_path):
    require("tflite_micro", "ai_edge_litert")
    g = copy.deepcopy(case("relu6").graph)
    _setq(g, g.outputs[0], 0.05, -100)            # out q != in q
    path = write_tflite(g, tmp_path / "relu6.tflite")
    _assert_both_peers(g, path)
    x = random_inputs(g, n=1, seed=3)[0]
    a = R.run(g, x, numerics="tflm")[g.outputs[0]]
    b = R.run(g, x, numerics="litert")[g.outputs[0]]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", ["fc_bias", "fc_relu", "fc_keep_num_dims"])
def test_per_channel_fc(name, tmp_path):
    require("tflite_micro", "ai_edge_litert")
    g = copy.deepcopy(case(name).graph)
    node = g.nodes[0]
    w, b = g.tensors[node.inputs[1]], g.tensors[node.inputs[2]]
    wf = w.data.astype(np.float32) * w.quant.scale[0]
    s = (np.abs(wf).max(axis=1) / 127).astype(np.float32)
    w.data = np.clip(np.round(wf / s[:, None]), -127, 127).astype(np.int8)
    w.quant = QuantParams(s, np.zeros(len(s), np.int64), axis=0)
    s_in = g.tensors[node.inputs[0]].quant.scale[0]
    b.data = np.round(b.data * b.quant.scale[0] / (s_in * s)).astype(np.int32)
    b.quant = QuantParams((s_in * s).astype(np.float32), np.zeros(len(s), np.int64))
    _assert_both_peers(g, write_tflite(g, tmp_path / f"{name}_pc.tflite"), n=20)


@pytest.mark.parametrize("axes,keep,shape", [((2,), True, (1, 5, 1, 8)), ((3,), False, (1, 5, 5)),
                                             ((1, 2, 3), False, (1,)), ((1, 2), True, None)])
def test_mean_axes_and_equal_quant(axes, keep, shape, tmp_path):
    require("tflite_micro", "ai_edge_litert")
    g = copy.deepcopy(case("mean_hw_keepdims").graph)
    out = g.outputs[0]
    if shape is None:                                  # equal in/out quant
        g.tensors[out].quant = copy.deepcopy(g.tensors[g.inputs[0]].quant)
    else:
        g.nodes[0] = g.nodes[0].with_(attrs=MeanAttrs(axes, keep))
        g.tensors[out] = Tensor(out, shape, "int8", g.tensors[out].quant)
    _assert_both_peers(g, write_tflite(g, tmp_path / "mean.tflite"), n=20)


def test_concat_with_mismatched_quant_is_refused(tmp_path):
    require("tflite_micro", "ai_edge_litert")
    g = copy.deepcopy(case("concat_channels").graph)
    _setq(g, g.nodes[0].inputs[1], 0.07, 10)
    with pytest.raises(QuantizeError, match="CONCAT"):
        qparams.prepare(g.nodes[0], g, "tflm")
    path = write_tflite(g, tmp_path / "concat.tflite")
    with pytest.raises(ModelError, match="LiteRT refuses"):   # LiteRT refuses to prepare it too
        peers.LitertRunner(path)
