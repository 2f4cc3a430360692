"""SAME/VALID <-> explicit pads, against LiteRT itself: for random conv/pool geometry, the
file write_tflite emits (SAME, VALID or PAD + VALID) computes what the IR's explicit pads say.
Oracle: a direct numpy convolution over the explicitly padded input."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeforge.codegen.tflite import tflite_bytes
from edgeforge.frontends.tflite import PAD_SAME, PAD_VALID, graph_from_bytes, same_pads
from edgeforge.ir import Conv2dAttrs, Graph, Node, Op, Pool2dAttrs, Tensor
from edgeforge.runtime.peers import run_litert
from tests.conftest import require


def _conv_ref(x, w, b, stride, pad, dil):
    t, left, bot, right = pad
    xp = np.pad(x, ((0, 0), (t, bot), (left, right), (0, 0)))
    kh, kw = w.shape[1:3]
    oh = (xp.shape[1] - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dil[1] - 1) // stride[1] + 1
    y = np.zeros((x.shape[0], oh, ow, w.shape[0]), np.float64)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dil[0], j * dil[1]
            patch = xp[:, r0:r0 + stride[0] * (oh - 1) + 1:stride[0],
                       c0:c0 + stride[1] * (ow - 1) + 1:stride[1], :]
            y += patch.astype(np.float64) @ w[:, i, j, :].T.astype(np.float64)
    return (y + b).astype(np.float32)


def _run(content: bytes, x: np.ndarray) -> np.ndarray:
    return run_litert(content, [x])[0]


geometry = st.fixed_dictionaries({
    "h": st.integers(3, 12), "w": st.integers(3, 12),
    "kh": st.integers(1, 4), "kw": st.integers(1, 4),
    "sh": st.integers(1, 3), "sw": st.integers(1, 3),
    "dil": st.sampled_from([1, 2]),
    "mode": st.sampled_from(["SAME", "VALID", "explicit"]),
    "extra": st.tuples(*[st.integers(0, 2)] * 4),
    "seed": st.integers(0, 1000),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometry)
def test_conv_pads_match_litert(p):
    require("ai_edge_litert")
    k, s, d = (p["kh"], p["kw"]), (p["sh"], p["sw"]), (p["dil"], p["dil"])
    if p["mode"] == "explicit":
        pad = p["extra"]
    else:
        pad = same_pads((p["h"], p["w"]), k, s, d, PAD_SAME if p["mode"] == "SAME" else PAD_VALID)
    eff = [(k[i] - 1) * d[i] + 1 for i in range(2)]
    oh = (p["h"] + pad[0] + pad[2] - eff[0]) // s[0] + 1
    ow = (p["w"] + pad[1] + pad[3] - eff[1]) // s[1] + 1
    if oh < 1 or ow < 1:
        return
    rng = np.random.default_rng(p["seed"])
    x = rng.normal(size=(1, p["h"], p["w"], 2)).astype(np.float32)
    w = rng.normal(size=(3, k[0], k[1], 2)).astype(np.float32)
    b = rng.normal(size=(3,)).astype(np.float32)
    g = Graph()
    g.add_tensor(Tensor("x", x.shape))
    g.const("w", w)
    g.const("b", b)
    g.add_tensor(Tensor("y", (1, oh, ow, 3)))
    g.nodes.append(Node(Op.CONV2D, ("x", "w", "b"), ("y",), Conv2dAttrs(s, pad, d)))
    g.inputs, g.outputs = ["x"], ["y"]
    data = tflite_bytes(g)
    got = _run(data, x)
    np.testing.assert_allclose(got, _conv_ref(x, w, b, s, pad, d), rtol=1e-4, atol=1e-4)
    g2 = graph_from_bytes(data)
    if p["mode"] != "explicit":       # SAME/VALID survive as the same explicit pads
        assert g2.nodes[0].attrs.pad == pad and len(g2.nodes) == 1


@settings(max_examples=25, deadline=None)
@given(geometry)
def test_maxpool_pads_match_litert(p):
    require("ai_edge_litert")
    k, s = (p["kh"], p["kw"]), (p["sh"], p["sw"])
    pad = p["extra"] if p["mode"] == "explicit" else same_pads(
        (p["h"], p["w"]), k, s, (1, 1), PAD_SAME if p["mode"] == "SAME" else PAD_VALID)
    if max(pad[0], pad[2]) >= k[0] or max(pad[1], pad[3]) >= k[1]:
        return   # a window made only of padding has no defined max
    oh = (p["h"] + pad[0] + pad[2] - k[0]) // s[0] + 1
    ow = (p["w"] + pad[1] + pad[3] - k[1]) // s[1] + 1
    if oh < 1 or ow < 1:
        return
    x = np.random.default_rng(p["seed"]).normal(size=(1, p["h"], p["w"], 2)).astype(np.float32)
    g = Graph()
    g.add_tensor(Tensor("x", x.shape))
    g.add_tensor(Tensor("y", (1, oh, ow, 2)))
    g.nodes.append(Node(Op.MAXPOOL2D, ("x",), ("y",), Pool2dAttrs(k, s, pad)))
    g.inputs, g.outputs = ["x"], ["y"]
    xp = np.pad(x, ((0, 0), (pad[0], pad[2]), (pad[1], pad[3]), (0, 0)),
                constant_values=-np.inf)
    want = np.full((1, oh, ow, 2), -np.inf, np.float32)
    for i in range(k[0]):
        for j in range(k[1]):
            want = np.maximum(want, xp[:, i:i + s[0] * (oh - 1) + 1:s[0],
                                       j:j + s[1] * (ow - 1) + 1:s[1], :])
    np.testing.assert_array_equal(_run(tflite_bytes(g), x), want)
