"""Every graph pass on a tiny IR graph: it makes the change it promises (op counts), leaves an
IR that verifies, and computes the same numbers before and after (float reference runtime).
Also the cases where a pass must NOT fire, and run_passes' log / verify / dump."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.ir import (
    Act,
    BatchNormAttrs,
    BinaryAttrs,
    ClipAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    Graph,
    IRError,
    LeakyReluAttrs,
    NoAttrs,
    Node,
    Op,
    PadAttrs,
    Pool2dAttrs,
    ReshapeAttrs,
    Tensor,
    TransposeAttrs,
    verify,
)
from edgeforge.passes import PIPELINE, run_passes
from edgeforge.passes.fold import (
    absorb_transpose_into_fc,
    cancel_transposes,
    fold_constants,
    merge_reshapes,
    remove_identity,
)
from edgeforge.passes.fuse import (
    batchnorm_to_affine,
    canonicalize_clip,
    div_sub_to_mul_add,
    fold_affine_into_next,
    fold_batchnorm,
    fold_const_add_into_bias,
    fold_const_mul_into_weights,
    fuse_activation,
    fuse_pad,
    matmul_add_to_fc,
    merge_clips,
    merge_const_chains,
)
from tests.conftest import fixture

RNG = np.random.default_rng(3)


class G:
    """Tiny graph builder: g = G((1, 6, 6, 4)); y = g.op(Op.RELU, [g.x], shape)."""

    def __init__(self, *shapes: tuple[int, ...]):
        self.g = Graph()
        self.k = 0
        for i, s in enumerate(shapes):
            self.g.add_tensor(Tensor(f"in{i}", s))
            self.g.inputs.append(f"in{i}")
        self.x = "in0"

    def const(self, data) -> str:
        self.k += 1
        name = f"k{self.k}"
        self.g.const(name, np.asarray(data, np.float32))
        return name

    def rand(self, *shape, lo=-1.0, hi=1.0) -> str:
        return self.const(RNG.uniform(lo, hi, shape))

    def op(self, op: Op, ins: list[str], shape: tuple[int, ...], attrs=None) -> str:
        self.k += 1
        name = f"t{self.k}"
        self.g.add_tensor(Tensor(name, shape))
        self.g.nodes.append(Node(op, tuple(ins), (name,), attrs or NoAttrs(), f"n{self.k}"))
        return name

    def out(self, *names: str) -> Graph:
        self.g.outputs = list(names)
        verify(self.g)
        return self.g


def _ops(g: Graph) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in g.nodes:
        out[n.op.value] = out.get(n.op.value, 0) + 1
    return out


def _equivalent(g: Graph, fn, changes: int | None = None) -> Graph:
    """Run pass `fn` on a copy of g; check the change count, verify, and equal outputs."""
    from edgeforge.runtime.reference import run
    feeds = {n: RNG.standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    before = run(g, feeds)
    g2 = g.copy()
    got = fn(g2)
    if changes is not None:
        assert got == changes, (fn.__name__, got)
    verify(g2)
    after = run(g2, feeds)
    for k in g.outputs:
        assert after[k].shape == before[k].shape
        scale = max(1.0, float(np.abs(before[k]).max()))   # float reassociation error
        np.testing.assert_allclose(after[k], before[k], rtol=1e-5, atol=1e-5 * scale)
    return g2


NHWC = (1, 6, 6, 4)


def _conv(b: G, x: str, cout: int = 5, pad=(1, 1, 1, 1), act=Act.NONE) -> str:
    return b.op(Op.CONV2D, [x, b.rand(cout, 3, 3, 4), b.rand(cout)], (1, 6, 6, cout),
                Conv2dAttrs(pad=pad, act=act))


def _bn(b: G, x: str, c: int, shape) -> str:
    return b.op(Op.BATCHNORM, [x, b.rand(c, lo=.5, hi=1.5), b.rand(c), b.rand(c),
                               b.rand(c, lo=.5, hi=2.)], shape, BatchNormAttrs(1e-3))


# ---------------------------------------------------------------- structural
def test_fold_constants_turns_const_subgraph_into_a_tensor():
    b = G(NHWC)
    k = b.op(Op.TRANSPOSE, [b.rand(1, 4, 6, 6)], NHWC, TransposeAttrs((0, 2, 3, 1)))
    k2 = b.op(Op.MUL, [k, b.const(2.0)], NHWC, BinaryAttrs())
    y = b.op(Op.ADD, [b.x, k2], NHWC, BinaryAttrs())
    g = _equivalent(b.out(y), fold_constants, 2)
    assert _ops(g) == {"ADD": 1}


def test_remove_identity_drops_noops_and_keeps_output_names():
    b = G(NHWC)
    r = b.op(Op.RELU, [b.x], NHWC)
    a = b.op(Op.RESHAPE, [r], NHWC, ReshapeAttrs(NHWC))
    m = b.op(Op.MUL, [a, b.const(np.ones(4))], NHWC, BinaryAttrs())
    p = b.op(Op.PAD, [m], NHWC, PadAttrs(((0, 0),) * 4))
    c = b.op(Op.CLIP, [p], NHWC, ClipAttrs())
    g = _equivalent(b.out(c), remove_identity, 4)
    assert _ops(g) == {"RELU": 1} and g.nodes[0].outputs == (c,)


def test_cancel_transposes_pairs_vanish_and_chains_compose():
    b = G(NHWC)
    t1 = b.op(Op.TRANSPOSE, [b.x], (1, 4, 6, 6), TransposeAttrs((0, 3, 1, 2)))
    t2 = b.op(Op.TRANSPOSE, [t1], NHWC, TransposeAttrs((0, 2, 3, 1)))
    r = b.op(Op.RELU, [t2], NHWC)
    t3 = b.op(Op.TRANSPOSE, [r], (1, 4, 6, 6), TransposeAttrs((0, 3, 1, 2)))
    t4 = b.op(Op.TRANSPOSE, [t3], (6, 4, 6, 1), TransposeAttrs((2, 1, 3, 0)))
    g = _equivalent(b.out(t4), cancel_transposes)
    assert _ops(g) == {"RELU": 1, "TRANSPOSE": 1}


def test_transpose_moving_only_unit_dims_becomes_reshape():
    b = G((1, 1, 1, 8))
    t = b.op(Op.TRANSPOSE, [b.x], (1, 8, 1, 1), TransposeAttrs((0, 3, 1, 2)))
    g = _equivalent(b.out(b.op(Op.RELU, [t], (1, 8, 1, 1))), cancel_transposes, 1)
    assert _ops(g) == {"RESHAPE": 1, "RELU": 1}


def test_merge_reshapes():
    b = G(NHWC)
    r1 = b.op(Op.RESHAPE, [b.x], (1, 36, 4), ReshapeAttrs((1, 36, 4)))
    r2 = b.op(Op.RESHAPE, [r1], (1, 144), ReshapeAttrs((1, 144)))
    g = _equivalent(b.out(r2), merge_reshapes, 1)
    assert _ops(g) == {"RESHAPE": 1} and g.nodes[0].inputs == ("in0",)


def test_absorb_transpose_into_fc_permutes_weight_columns():
    b = G((2, 3, 5, 4))
    t = b.op(Op.TRANSPOSE, [b.x], (2, 4, 3, 5), TransposeAttrs((0, 3, 1, 2)))
    r = b.op(Op.RESHAPE, [t], (2, 60), ReshapeAttrs((2, 60)))
    y = b.op(Op.FC, [r, b.rand(7, 60), b.rand(7)], (2, 7), FcAttrs())
    g = _equivalent(b.out(y), absorb_transpose_into_fc, 1)
    assert _ops(g) == {"RESHAPE": 1, "FC": 1}


def test_absorb_transpose_not_when_the_flat_tensor_is_also_an_output():
    b = G((1, 2, 2, 3))
    t = b.op(Op.TRANSPOSE, [b.x], (1, 3, 2, 2), TransposeAttrs((0, 3, 1, 2)))
    r = b.op(Op.RESHAPE, [t], (1, 12), ReshapeAttrs((1, 12)))
    y = b.op(Op.FC, [r, b.rand(4, 12), ""], (1, 4), FcAttrs())
    _equivalent(b.out(y, r), absorb_transpose_into_fc, 0)


# ---------------------------------------------------------------- batchnorm and constants
@pytest.mark.parametrize("kind", ["conv", "dwconv", "fc"])
def test_fold_batchnorm_into_producer(kind):
    b = G(NHWC if kind != "fc" else (3, 8))
    if kind == "conv":
        y, c, shape = _conv(b, b.x), 5, (1, 6, 6, 5)
    elif kind == "dwconv":
        y = b.op(Op.DWCONV2D, [b.x, b.rand(1, 3, 3, 8), ""], (1, 6, 6, 8),
                 DwConv2dAttrs(pad=(1, 1, 1, 1), depth_multiplier=2))
        c, shape = 8, (1, 6, 6, 8)
    else:
        y, c, shape = b.op(Op.FC, [b.x, b.rand(6, 8), ""], (3, 6), FcAttrs()), 6, (3, 6)
    g = _equivalent(b.out(_bn(b, y, c, shape)), fold_batchnorm, 1)
    assert "BATCHNORM" not in _ops(g) and len(g.nodes) == 1


def test_batchnorm_not_folded_when_conv_output_is_also_used():
    b = G(NHWC)
    y = _conv(b, b.x)
    bn = _bn(b, y, 5, (1, 6, 6, 5))
    g = _equivalent(b.out(bn, y), fold_batchnorm, 0)
    g = _equivalent(g, batchnorm_to_affine, 1)
    assert _ops(g) == {"CONV2D": 1, "MUL": 1, "ADD": 1}


@pytest.mark.parametrize("kind", ["conv", "dwconv", "fc", "padded"])
def test_affine_folds_forward_into_unpadded_consumer(kind):
    """BN with no producer to fold into (here: on the graph input) -> MUL+ADD -> next op."""
    b = G(NHWC if kind != "fc" else (3, 4))
    bn = _bn(b, b.x, 4, NHWC if kind != "fc" else (3, 4))
    if kind == "conv":
        y = b.op(Op.CONV2D, [bn, b.rand(5, 3, 3, 4), b.rand(5)], (1, 4, 4, 5), Conv2dAttrs())
    elif kind == "padded":
        y = _conv(b, bn)
    elif kind == "dwconv":
        y = b.op(Op.DWCONV2D, [bn, b.rand(1, 3, 3, 8), b.rand(8)], (1, 4, 4, 8),
                 DwConv2dAttrs(depth_multiplier=2))
    else:
        y = b.op(Op.FC, [bn, b.rand(6, 4), ""], (3, 6), FcAttrs())
    g = _equivalent(b.out(y), batchnorm_to_affine, 1)
    g = _equivalent(g, fold_affine_into_next, 0 if kind == "padded" else 1)
    assert len(g.nodes) == (3 if kind == "padded" else 1)


def test_div_sub_then_const_chains_merge():
    b = G(NHWC)
    d = b.op(Op.DIV, [b.x, b.rand(4, lo=1, hi=2)], NHWC, BinaryAttrs())
    s = b.op(Op.SUB, [d, b.rand(4)], NHWC, BinaryAttrs())
    m = b.op(Op.MUL, [s, b.rand(1, 1, 1, 4)], NHWC, BinaryAttrs())
    a = b.op(Op.ADD, [m, b.rand(4)], NHWC, BinaryAttrs())
    g = _equivalent(b.out(a), div_sub_to_mul_add, 2)
    g = _equivalent(g, merge_const_chains)
    assert _ops(g) == {"MUL": 1, "ADD": 1}


def test_const_mul_and_add_fold_into_conv():
    b = G(NHWC)
    y = _conv(b, b.x)
    m = b.op(Op.MUL, [b.rand(5, lo=.5, hi=2), y], (1, 6, 6, 5), BinaryAttrs())
    a = b.op(Op.ADD, [m, b.const(0.25)], (1, 6, 6, 5), BinaryAttrs())
    g = _equivalent(b.out(a), fold_const_mul_into_weights, 1)
    g = _equivalent(g, fold_const_add_into_bias, 1)
    assert _ops(g) == {"CONV2D": 1}


def test_const_add_not_folded_when_not_per_channel():
    b = G(NHWC)
    y = _conv(b, b.x)
    a = b.op(Op.ADD, [y, b.rand(6, 6, 5)], (1, 6, 6, 5), BinaryAttrs())
    _equivalent(b.out(a), fold_const_add_into_bias, 0)


def test_matmul_add_to_fc_then_bias():
    b = G((2, 3, 6))
    mm = b.op(Op.MATMUL, [b.x, b.rand(6, 4)], (2, 3, 4))
    a = b.op(Op.ADD, [mm, b.rand(4)], (2, 3, 4), BinaryAttrs())
    g = _equivalent(b.out(a), matmul_add_to_fc, 1)
    assert g.nodes[0].op == Op.FC and g.nodes[0].attrs.keep_num_dims
    g = _equivalent(g, fold_const_add_into_bias, 1)
    assert _ops(g) == {"FC": 1}


# ---------------------------------------------------------------- pad and activations
def test_fuse_pad_into_conv_pads():
    b = G(NHWC)
    p = b.op(Op.PAD, [b.x], (1, 9, 7, 4), PadAttrs(((0, 0), (2, 1), (0, 1), (0, 0))))
    y = b.op(Op.CONV2D, [p, b.rand(3, 3, 3, 4), ""], (1, 7, 5, 3), Conv2dAttrs())
    g = _equivalent(b.out(y), fuse_pad, 1)
    assert _ops(g) == {"CONV2D": 1} and g.nodes[0].attrs.pad == (2, 0, 1, 1)


def test_nonzero_or_channel_pad_not_fused():
    b = G(NHWC)
    p = b.op(Op.PAD, [b.x], (1, 8, 8, 4), PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0)), 1.5))
    y = b.op(Op.CONV2D, [p, b.rand(3, 3, 3, 4), ""], (1, 6, 6, 3), Conv2dAttrs())
    _equivalent(b.out(y), fuse_pad, 0)


@pytest.mark.parametrize("act_op,attrs,want", [
    (Op.RELU, NoAttrs(), Act.RELU), (Op.RELU6, NoAttrs(), Act.RELU6),
    (Op.CLIP, ClipAttrs(0.0, 6.0), Act.RELU6), (Op.CLIP, ClipAttrs(-1.0, 1.0), Act.RELU_N1_TO_1),
    (Op.CLIP, ClipAttrs(0.0, np.inf), Act.RELU)])
@pytest.mark.parametrize("producer", ["conv", "add", "fc"])
def test_fuse_activation(act_op, attrs, want, producer):
    b = G(NHWC if producer != "fc" else (2, 8))
    if producer == "conv":
        y, shape = _conv(b, b.x), (1, 6, 6, 5)
    elif producer == "add":
        y, shape = b.op(Op.ADD, [b.x, b.x], NHWC, BinaryAttrs()), NHWC
    else:
        y, shape = b.op(Op.FC, [b.x, b.rand(3, 8), b.rand(3)], (2, 3), FcAttrs()), (2, 3)
    a = b.op(act_op, [y], shape, attrs)
    g = _equivalent(b.out(a), lambda g: canonicalize_clip(g) + fuse_activation(g))
    assert len(g.nodes) == 1 and g.nodes[0].attrs.act == want


def test_merge_clips_then_fuse():
    b = G(NHWC)
    y = _conv(b, b.x)
    r = b.op(Op.RELU, [y], (1, 6, 6, 5))
    c = b.op(Op.CLIP, [r], (1, 6, 6, 5), ClipAttrs(-3.0, 6.0))
    g = _equivalent(b.out(c), merge_clips, 1)
    assert [n.op for n in g.nodes] == [Op.CONV2D, Op.CLIP]
    assert (g.nodes[1].attrs.min, g.nodes[1].attrs.max) == (0.0, 6.0)
    g = _equivalent(g, lambda g: canonicalize_clip(g) + fuse_activation(g), 2)
    assert len(g.nodes) == 1 and g.nodes[0].attrs.act == Act.RELU6


def test_activation_not_fused_into_shared_or_unfusable_producer():
    b = G(NHWC)
    y = _conv(b, b.x)
    r = b.op(Op.RELU, [y], (1, 6, 6, 5))
    s = b.op(Op.LOGISTIC, [y], (1, 6, 6, 5))          # y has two readers
    m = b.op(Op.MAXPOOL2D, [r], (1, 6, 6, 5), Pool2dAttrs())
    c = b.op(Op.CLIP, [m], (1, 6, 6, 5), ClipAttrs(-2.0, 2.0))   # no Act for (-2, 2)
    _equivalent(b.out(s, c), fuse_activation, 0)


# ---------------------------------------------------------------- the pipeline
def test_run_passes_logs_each_pass_and_verifies():
    b = G(NHWC)
    y = _bn(b, _conv(b, b.x), 5, (1, 6, 6, 5))
    r = b.op(Op.RELU6, [y], (1, 6, 6, 5))
    g = b.out(r)
    log = run_passes(g)
    assert [e["name"] for e in log] == [name for name, _ in PIPELINE]
    assert g.meta["passes"] == log
    byname = {e["name"]: e for e in log}
    assert byname["fold_batchnorm"]["ops_before"] == {"BATCHNORM": 1, "CONV2D": 1, "RELU6": 1}
    assert byname["fuse_activation"]["ops_after"] == {"CONV2D": 1}
    assert g.nodes[0].attrs.act == Act.RELU6


def test_run_passes_names_the_pass_that_breaks_the_graph(tmp_path):
    b = G(NHWC)
    g = b.out(b.op(Op.RELU, [b.x], NHWC))

    def breaker(g: Graph) -> int:
        g.nodes.append(Node(Op.RELU, ("nowhere",), ("bad",)))
        g.add_tensor(Tensor("bad", NHWC))
        return 1
    with pytest.raises(IRError, match="after pass breaker"):
        run_passes(g, pipeline=[("breaker", breaker)])
    b2 = G(NHWC)
    g2 = b2.out(b2.op(Op.RELU, [b2.x], NHWC))
    seen: list[str] = []
    run_passes(g2, dump=lambda name, gg: seen.append(name))
    assert seen == [name for name, _ in PIPELINE]
    run_passes(g2.copy(), dump=tmp_path / "dump")
    assert len(list((tmp_path / "dump").glob("*.txt"))) == len(PIPELINE)


def test_passes_on_a_float_tflite_graph_keep_its_numbers():
    from edgeforge.frontends.tflite import read_tflite
    from edgeforge.runtime.reference import run
    g = read_tflite(fixture("kws_ds_cnn_float32.tflite"))
    feeds = {n: RNG.standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    before = run(g, feeds)
    g2 = g.copy()
    run_passes(g2)
    after = run(g2, feeds)
    for k in g.outputs:
        np.testing.assert_allclose(after[k], before[k], rtol=1e-4, atol=1e-5)
    assert len(g2.nodes) <= len(g.nodes)


# ---------------------------------------------------------------- random pipelines
def _random_graph(seed: int) -> Graph:
    """A random chain of the ops the passes rewrite, with side branches and residual adds."""
    rng = np.random.default_rng(seed)
    b = G((1, 7, 7, 4))
    x, c = b.x, 4
    live = [x]
    for _ in range(int(rng.integers(4, 10))):
        shape = (1, 7, 7, c)
        kind = rng.choice(["conv", "dw", "bn", "mul", "add", "act", "pad", "tt", "res"])
        if kind == "conv":
            co = int(rng.integers(2, 6))
            x = b.op(Op.CONV2D, [x, b.rand(co, 3, 3, c), b.rand(co) if rng.random() < .5
                                 else ""], (1, 7, 7, co), Conv2dAttrs(pad=(1, 1, 1, 1)))
            c = co
        elif kind == "dw":
            x = b.op(Op.DWCONV2D, [x, b.rand(1, 1, 1, c), ""], shape, DwConv2dAttrs())
        elif kind == "bn":
            x = _bn(b, x, c, shape)
        elif kind in ("mul", "add"):
            k = b.rand(c, lo=.5, hi=1.5) if rng.random() < .7 else b.rand(7, 7, c)
            x = b.op(Op.MUL if kind == "mul" else Op.ADD, [x, k], shape, BinaryAttrs())
        elif kind == "act":
            op, attrs = [(Op.RELU, NoAttrs()), (Op.RELU6, NoAttrs()),
                         (Op.CLIP, ClipAttrs(-1.0, 1.0)), (Op.CLIP, ClipAttrs(0.0, 6.0)),
                         (Op.LEAKY_RELU, LeakyReluAttrs())][
                int(rng.integers(0, 5))]
            x = b.op(op, [x], shape, attrs)
        elif kind == "pad":
            p = b.op(Op.PAD, [x], (1, 9, 9, c), PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0))))
            co = int(rng.integers(2, 6))
            x = b.op(Op.CONV2D, [p, b.rand(co, 3, 3, c), ""], (1, 7, 7, co), Conv2dAttrs())
            c = co
        elif kind == "tt":
            t = b.op(Op.TRANSPOSE, [x], (1, c, 7, 7), TransposeAttrs((0, 3, 1, 2)))
            x = b.op(Op.TRANSPOSE, [t], shape, TransposeAttrs((0, 2, 3, 1)))
        else:
            same = [v for v in live if b.g.tensors[v].shape == shape and v != x]
            if same:
                x = b.op(Op.ADD, [x, same[int(rng.integers(0, len(same)))]], shape,
                         BinaryAttrs())
        live.append(x)
    flat = b.op(Op.TRANSPOSE, [x], (1, c, 7, 7), TransposeAttrs((0, 3, 1, 2)))
    flat = b.op(Op.RESHAPE, [flat], (1, 49 * c), ReshapeAttrs((1, 49 * c)))
    y = b.op(Op.FC, [flat, b.rand(3, 49 * c), b.rand(3)], (1, 3), FcAttrs())
    side = live[int(rng.integers(0, len(live)))]
    return b.out(y, side) if side != b.x else b.out(y)


@pytest.mark.parametrize("seed", range(60))
def test_full_pipeline_on_random_graphs_keeps_the_numbers(seed):
    g = _random_graph(seed)
    g2 = _equivalent(g, lambda gg: sum(e["changes"] for e in run_passes(gg)))
    assert "TRANSPOSE" not in _ops(g2) and "BATCHNORM" not in _ops(g2)
    assert sum(e["changes"] for e in run_passes(g2.copy())) == 0   # a fixpoint
