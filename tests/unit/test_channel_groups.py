"""Structured pruning through coupled channels (issue 19 item 1): residual ADDs and
per-channel MUL constants join channel spaces, pruned together as one group."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.compress.prune import (
    PruneError,
    apply_channel_keep,
    channel_groups,
    channel_prune,
    compress,
    int8_weight_bytes,
    reconstruction_order,
)
from edgeforge.ir import (
    Act,
    BinaryAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    Graph,
    MeanAttrs,
    Node,
    Op,
    Tensor,
    verify,
)
from edgeforge.quantize.calibrate import batch_runner


def _residual(dead: list[int] | None = None, c: int = 8) -> Graph:
    """stem conv 3x3 (1->c) | block: conv 1x1 (c->2c) relu, dw 3x3, conv 1x1 (2c->c), ADD
    the stem | MUL by a per-channel constant | conv 1x1 (c->6) relu | MEAN | FC 3.
    `dead` lists trunk channels whose every coupled weight is 0 (stem filter, projection
    filter, the MUL's scale stays: their value is 0 anyway), and the consumers' columns."""
    rng = np.random.default_rng(0)
    g = Graph(name="res", inputs=["x"], outputs=["logits"])
    g.add_tensor(Tensor("x", (1, 6, 6, 1)))

    def w(name: str, shape: tuple[int, ...]) -> str:
        g.const(name, (rng.standard_normal(shape) * 0.5).astype(np.float32))
        return name

    def node(op, ins, out, shape, attrs, name):
        g.add_tensor(Tensor(out, shape))
        g.nodes.append(Node(op, ins, (out,), attrs, name))
    s = (1, 1, 1, 1)
    node(Op.CONV2D, ("x", w("stem/w", (c, 3, 3, 1)), w("stem/b", (c,))), "stem", (1, 6, 6, c),
         Conv2dAttrs(pad=s, act=Act.RELU), "stem")
    node(Op.CONV2D, ("stem", w("ex/w", (2 * c, 1, 1, c)), w("ex/b", (2 * c,))), "ex",
         (1, 6, 6, 2 * c), Conv2dAttrs(act=Act.RELU), "ex")
    node(Op.DWCONV2D, ("ex", w("dw/w", (1, 3, 3, 2 * c)), w("dw/b", (2 * c,))), "dw",
         (1, 6, 6, 2 * c), DwConv2dAttrs(pad=s, act=Act.RELU), "dw")
    node(Op.CONV2D, ("dw", w("pr/w", (c, 1, 1, 2 * c)), w("pr/b", (c,))), "pr", (1, 6, 6, c),
         Conv2dAttrs(), "pr")
    node(Op.ADD, ("pr", "stem"), "add", (1, 6, 6, c), BinaryAttrs(), "add")
    node(Op.MUL, ("add", w("scale", (c,))), "mul", (1, 6, 6, c), BinaryAttrs(), "mul")
    node(Op.CONV2D, ("mul", w("hd/w", (6, 1, 1, c)), w("hd/b", (6,))), "hd", (1, 6, 6, 6),
         Conv2dAttrs(act=Act.RELU), "hd")
    node(Op.MEAN, ("hd",), "gap", (1, 6), MeanAttrs(axes=(1, 2), keepdims=False), "gap")
    node(Op.FC, ("gap", w("fc/w", (3, 6)), w("fc/b", (3,))), "logits", (1, 3), FcAttrs(), "fc")
    for ch in dead or []:
        for name in ("stem/w", "stem/b", "pr/w", "pr/b"):
            g.tensors[name].data[ch] = 0
        g.tensors["ex/w"].data[..., ch] = 0
        g.tensors["hd/w"].data[..., ch] = 0
    verify(g)
    return g


def _x(n: int = 32) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (n, 6, 6, 1)).astype(np.float32)


def _run(g: Graph, x: np.ndarray) -> np.ndarray:
    return batch_runner(g)([x])[g.outputs[0]]


def test_residual_add_and_mul_join_one_group() -> None:
    groups, skipped = channel_groups(_residual())
    by = {tuple(p.name for p in grp.producers): grp for grp in groups}
    trunk = by[("stem", "pr")]                      # the ADD ties stem and projection
    assert {n.name for n in trunk.sinks} == {"ex", "hd"} and trunk.consts == ["scale"]
    assert set(trunk.tensors) >= {"stem", "pr", "add", "mul"}
    assert [n.name for n in by[("ex",)].channelwise] == ["dw"]
    assert [n.name for n in by[("hd",)].channelwise] == ["gap"]   # MEAN over H, W only
    assert any(s.startswith("fc:") for s in skipped)               # graph output


def test_dead_trunk_channels_prune_exactly() -> None:
    dead = [1, 4, 6]
    g = _residual(dead)
    groups, _ = channel_groups(g)
    keep = {grp.producer.outputs[0]: range(grp.channels) for grp in groups}
    trunk = next(grp for grp in groups if grp.producer.name == "stem")
    keep["stem"] = [ch for ch in range(8) if ch not in dead]
    p = apply_channel_keep(g, groups, keep)
    verify(p)
    x = _x()
    np.testing.assert_allclose(_run(p, x), _run(g, x), rtol=1e-5, atol=1e-6)
    for t in trunk.tensors:
        assert p.tensors[t].shape[-1] == 5
    assert p.tensors["scale"].shape == (5,) and p.tensors["ex/w"].shape == (16, 1, 1, 5)
    assert p.meta["kept_channels"]["add"] == [0, 2, 3, 5, 7]


def test_channel_prune_reaches_residual_models_mac_and_flash_targets() -> None:
    g = _residual()
    for data in (None, _x()):
        p = channel_prune(g, 0.5, data=data)
        verify(p)
        assert 0.35 * g.macs() <= p.macs() <= 0.5 * g.macs()
        _run(p, _x(4))                                 # still runs
    f = channel_prune(g, 0.4, data=_x(), metric="flash")
    assert int8_weight_bytes(f) <= 0.6 * int8_weight_bytes(g)
    with pytest.raises(PruneError, match="metric"):
        channel_prune(g, 0.4, metric="ram")


def test_reconstruction_order_removes_what_consumers_ignore_first() -> None:
    g = _residual()
    g.tensors["hd/w"].data[..., 3] = 0                 # trunk channel 3 feeds nothing ...
    g.tensors["ex/w"].data[..., 3] = 0
    groups, _ = channel_groups(g)
    order = reconstruction_order(g, groups, _x())
    assert order["stem"][-1] == 3                      # ... so it is the first one removed
    assert sorted(order["stem"]) == list(range(8))


def test_compress_targets() -> None:
    g = _residual()
    out, _ = compress(g, _x(64), target_macs=g.macs() // 2, distill=False)
    assert out.macs() <= g.macs() // 2
    out, _ = compress(g, _x(64), target_flash=int8_weight_bytes(g) // 2, distill=False)
    assert int8_weight_bytes(out) <= int8_weight_bytes(g) // 2
    with pytest.raises(PruneError, match="one of"):
        compress(g, _x(64), prune_channels=0.5, target_macs=10)
    with pytest.raises(PruneError, match="between 0"):
        compress(g, _x(64), target_macs=g.macs() * 2)


def test_bounded_search_steps_back_from_an_impossible_amount() -> None:
    g = _residual()
    with pytest.raises(PruneError, match="at most"):
        channel_prune(g, 0.99)
    out, rep = compress(g, _x(64), prune_channels=0.99, distill=False, max_sqnr_drop=100.0)
    assert 0 < rep["search"]["scale"] < 1 and out.macs() < g.macs()


def test_a_duplicated_channel_is_free_to_remove_once_consumers_are_refitted() -> None:
    """Channel 7 of the expansion copies channel 3: with the projection refitted on the kept
    channels (as the ratio search and the distillation do), removing it changes nothing,
    however large its weights, and the refit-aware ranking removes one of the pair early."""
    from edgeforge.compress.prune import _refit_sinks, _sink_systems
    g = _residual()
    t = g.tensors
    for name, axis in (("ex/w", 0), ("ex/b", 0), ("dw/w", 3), ("dw/b", 0)):
        np.moveaxis(t[name].data, axis, 0)[7] = np.moveaxis(t[name].data, axis, 0)[3]
    t["pr/w"].data[..., [3, 7]] *= 5.0
    groups, _ = channel_groups(g)
    grp = next(gr for gr in groups if gr.producer.outputs[0] == "ex")
    keep = np.array([c for c in range(16) if c != 7])
    x = _x()
    p = apply_channel_keep(g, groups, {gr.producer.outputs[0]: np.arange(gr.channels)
                                       if gr is not grp else keep for gr in groups})
    _refit_sinks(p, grp, _sink_systems(g, grp, batch_runner(g)([x])), keep, ridge=1e-9)
    np.testing.assert_allclose(_run(p, x), _run(g, x), rtol=1e-3, atol=1e-4)
    # with a vanishing ridge (the default 1e-3 of the mean diagonal also shrinks this
    # low-energy pair) the copy goes in the first half, the other stays among the last four
    removal = list(reconstruction_order(g, groups, x, ridge=1e-9)["ex"])[::-1]
    early, late = sorted((removal.index(3), removal.index(7)))
    assert early < 8 and late >= 12
