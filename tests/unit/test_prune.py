"""Magnitude and channel pruning, and layer-wise distillation, on small float graphs and the
digits example."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeforge.compress.distill import distill, output_sqnr
from edgeforge.compress.prune import (
    PruneError,
    apply_channel_keep,
    channel_groups,
    channel_prune,
    compress,
    compression_stats,
    magnitude_prune,
)
from edgeforge.ir import (
    Act,
    BinaryAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    Graph,
    Node,
    Op,
    ReshapeAttrs,
    SoftmaxAttrs,
    Tensor,
    verify,
)
from edgeforge.quantize.calibrate import batch_runner
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _chain(zero: dict[str, list[int]] | None = None) -> Graph:
    """conv 3x3 (1->8) | dw 3x3 s2 | conv 1x1 (8->6) | conv 3x3 (6->4) | flatten | fc 3 |
    softmax, all ReLU; `zero[layer]` lists filters set to exactly 0 (weights and bias)."""
    rng = np.random.default_rng(0)
    g = Graph(name="chain", inputs=["x"], outputs=["p"])
    g.add_tensor(Tensor("x", (1, 8, 8, 1)))
    same = (1, 1, 1, 1)
    spec = [("c1", Op.CONV2D, (8, 3, 3, 1), Conv2dAttrs(pad=same, act=Act.RELU), (8, 8, 8)),
            ("dw", Op.DWCONV2D, (1, 3, 3, 8), DwConv2dAttrs(stride=(2, 2), pad=(0, 0, 1, 1),
                                                            act=Act.RELU), (4, 4, 8)),
            ("c2", Op.CONV2D, (6, 1, 1, 8), Conv2dAttrs(act=Act.RELU), (4, 4, 6)),
            ("c3", Op.CONV2D, (4, 3, 3, 6), Conv2dAttrs(pad=same, act=Act.RELU), (4, 4, 4))]
    x = "x"
    for name, op, wshape, attrs, out in spec:
        w = rng.standard_normal(wshape).astype(np.float32) * 0.5
        b = rng.uniform(0.05, 0.2, out[-1]).astype(np.float32)
        for c in (zero or {}).get(name, []):
            if op == Op.DWCONV2D:
                w[..., c] = 0
            else:
                w[c] = 0
            b[c] = 0
        g.const(f"{name}/w", w)
        g.const(f"{name}/b", b)
        g.add_tensor(Tensor(name, (1, *out)))
        g.nodes.append(Node(op, (x, f"{name}/w", f"{name}/b"), (name,), attrs, name))
        x = name
    g.add_tensor(Tensor("flat", (1, 64)))
    g.nodes.append(Node(Op.RESHAPE, ("c3",), ("flat",), ReshapeAttrs((1, 64)), "flatten"))
    g.const("fc/w", rng.standard_normal((3, 64)).astype(np.float32) * 0.3)
    g.const("fc/b", np.zeros(3, np.float32))
    g.add_tensor(Tensor("logits", (1, 3)))
    g.nodes.append(Node(Op.FC, ("flat", "fc/w", "fc/b"), ("logits",), FcAttrs(), "fc"))
    g.add_tensor(Tensor("p", (1, 3)))
    g.nodes.append(Node(Op.SOFTMAX, ("logits",), ("p",), SoftmaxAttrs(axis=1), "softmax"))
    verify(g)
    return g


def _run(g: Graph, x: np.ndarray, name: str | None = None) -> np.ndarray:
    return batch_runner(g)([x])[name or g.outputs[0]]


def _x(n: int = 16) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (n, 8, 8, 1)).astype(np.float32)


# ---------------------------------------------------------------- magnitude
def test_magnitude_tau_is_exact() -> None:
    g = _chain()
    p = magnitude_prune(g, tau=0.3)
    for n in g.nodes:
        if n.op in (Op.CONV2D, Op.DWCONV2D, Op.FC):
            w, w2 = g.tensors[n.inputs[1]].data, p.tensors[n.inputs[1]].data
            np.testing.assert_array_equal(w2, np.where(np.abs(w) > 0.3, w, 0))
    assert not np.any(g.tensors["c1/w"].data == 0)     # the input graph is untouched


def test_magnitude_sparsity_per_layer_and_global() -> None:
    g = _chain()
    layers = [n.inputs[1] for n in g.nodes if n.op in (Op.CONV2D, Op.DWCONV2D, Op.FC)]
    p = magnitude_prune(g, sparsity=0.6)
    for w in layers:
        assert np.mean(p.tensors[w].data == 0) == pytest.approx(0.6, abs=0.06)
    q = magnitude_prune(g, sparsity=0.6, scope="global")
    assert compression_stats(q)["sparsity"] == pytest.approx(0.6, abs=0.01)
    taus = set(q.meta["magnitude_prune"]["tau"].values())
    assert len(taus) == 1                              # one threshold for every layer
    for bad in ({}, {"tau": 0.1, "sparsity": 0.5}, {"sparsity": 1.0}):
        with pytest.raises(PruneError):
            magnitude_prune(g, **bad)


# ---------------------------------------------------------------- channel pruning
def test_channel_groups_follow_dw_and_flatten() -> None:
    groups, skipped = channel_groups(_chain())
    by = {grp.producer.name: grp for grp in groups}
    assert set(by) == {"c1", "c2", "c3"}
    assert [n.name for n in by["c1"].channelwise] == ["dw"]
    assert [n.name for n in by["c1"].sinks] == ["c2"]
    assert [n.name for n, _ in by["c3"].flat_fcs] == ["fc"]
    assert any(s.startswith("fc:") for s in skipped)   # classifier feeds softmax


def test_removing_dead_filters_keeps_outputs_and_shrinks_everything() -> None:
    dead = {"c1": [2, 5], "dw": [2, 5], "c2": [1], "c3": [3]}
    g = _chain(dead)
    groups, _ = channel_groups(g)
    keep = {}
    for grp in groups:
        name = grp.producer.name
        keep[grp.producer.outputs[0]] = [c for c in range(grp.channels) if c not in dead[name]]
        # L1 ranking puts the dead filters last
        from edgeforge.compress.prune import _l1
        assert set(np.argsort(_l1(g, grp.producer))[:len(dead[name])]) == set(dead[name])
    p = apply_channel_keep(g, groups, keep)
    verify(p)
    x = _x()
    np.testing.assert_allclose(_run(p, x, "logits"), _run(g, x, "logits"), rtol=1e-5,
                               atol=1e-5)
    assert p.tensors["dw"].shape == (1, 4, 4, 6) and p.tensors["flat"].shape == (1, 48)
    assert p.tensors["dw/w"].shape == (1, 3, 3, 6) and p.tensors["fc/w"].shape == (3, 48)
    assert p.macs() < g.macs() and p.weight_bytes() < g.weight_bytes()
    assert p.tensors["c2"].nbytes < g.tensors["c2"].nbytes
    assert p.meta["kept_channels"]["dw"] == [0, 1, 3, 4, 6, 7]


def test_channel_prune_hits_mac_target_or_says_why() -> None:
    g = _chain()
    p = channel_prune(g, 0.4)
    assert p.macs() <= 0.6 * g.macs()
    assert p.macs() > 0.4 * g.macs()                   # bisection: not far past the target
    with pytest.raises(PruneError, match="at most"):
        channel_prune(g, 0.999)
    # a conv whose residual ADD joins the graph input and output cannot lose channels
    r = Graph(name="res", inputs=["x"], outputs=["y"])
    r.add_tensor(Tensor("x", (1, 4, 4, 2)))
    r.const("w", np.ones((2, 1, 1, 2), np.float32))
    r.add_tensor(Tensor("c", (1, 4, 4, 2)))
    r.add_tensor(Tensor("y", (1, 4, 4, 2)))
    r.nodes += [Node(Op.CONV2D, ("x", "w"), ("c",), Conv2dAttrs(), "conv"),
                Node(Op.ADD, ("c", "x"), ("y",), BinaryAttrs(), "add")]
    with pytest.raises(PruneError, match=r"no prunable.*conv: (a graph input|its output is a graph output)"):
        channel_prune(r, 0.5)


def test_distill_recovers_magnitude_pruning_and_keeps_zeros() -> None:
    g = _chain()
    x = _x(64)
    p = magnitude_prune(g, sparsity=0.5)
    d = distill(p, g, x)
    for w in ("c2/w", "c3/w", "fc/w"):
        assert not np.any(d.tensors[w].data[p.tensors[w].data == 0])   # zeros stay zero
        assert np.any(d.tensors[w].data != p.tensors[w].data)          # the rest refitted
    assert output_sqnr(g, d, x) > output_sqnr(g, p, x) + 3.0


# ---------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits():
    require("sklearn")
    from edgeforge.frontends.tflite import read_tflite
    from edgeforge.quantize import prepare_float
    g = prepare_float(read_tflite(DIGITS / "digits_float.tflite"))
    test = np.load(DIGITS / "test.npz")
    return g, np.load(DIGITS / "calib.npz")["input"], test["x"], test["y"]


def _acc(g: Graph, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(_run(g, x).argmax(1) == y))


def test_digits_half_macs_then_distill_within_one_point(digits, tmp_path: Path) -> None:
    g, calib, x, y = digits
    out, rep = compress(g, calib, prune_channels=0.5, distill=True)
    assert out.macs() <= 0.5 * g.macs()
    assert rep["after"]["weight_bytes"] < 0.7 * rep["before"]["weight_bytes"]
    assert rep["distilled"]                            # layers were refitted
    acc_f, acc_d = _acc(g, x, y), _acc(out, x, y)
    acc_pruned = _acc(channel_prune(g, 0.5), x, y)
    assert acc_d >= acc_f - 0.01, (acc_d, acc_f)
    assert acc_d > acc_pruned                          # distillation is what recovers it
    # the pruned + distilled model still quantizes to a valid int8 model TFLM runs exactly
    require("tflite_micro")
    from edgeforge.codegen.tflite import write_tflite
    from edgeforge.quantize import quantize_model
    from edgeforge.quantize.bias_correction import quantize_inputs
    from edgeforge.runtime import reference
    from edgeforge.runtime.peers import run_tflm
    qg = quantize_model(out, calib, verbose=0)
    path = write_tflite(qg, tmp_path / "pruned.tflite")
    (q8,) = quantize_inputs(qg, [x[:2]])
    for s in q8:
        np.testing.assert_array_equal(run_tflm(path, [s[None]])[0],
                                      reference.run(qg, [s[None]])[qg.outputs[0]])


def test_quantization_keeps_magnitude_sparsity(digits) -> None:
    from edgeforge.quantize import quantize_model
    g, calib = digits[0], digits[1]
    p = magnitude_prune(g, sparsity=0.6, scope="global")
    qg = quantize_model(p, calib, verbose=0)          # refit + bias correction included
    for n in qg.nodes:
        if n.op in (Op.CONV2D, Op.DWCONV2D, Op.FC):
            w_f = p.tensors[n.inputs[1]].data
            assert not np.any(qg.tensors[n.inputs[1]].data[w_f == 0]), n.name
