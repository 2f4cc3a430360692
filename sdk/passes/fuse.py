"""Fusions: BatchNorm and constant Mul/Add into weights and bias, MatMul -> FC, zero Pad into
conv pads, activations into the producing op's `act`. Float graphs only (an int8 graph's
scales already encode what these would change)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeforge.ir import (
    ACT_RANGE,
    OPS,
    WEIGHTED,
    Act,
    BinaryAttrs,
    ClipAttrs,
    FcAttrs,
    Graph,
    NoAttrs,
    Node,
    Op,
    Tensor,
)
from edgeforge.passes.rewrite import (
    apply_rule,
    channel_vector,
    const,
    is_float,
    new_const,
    producer,
    sole_user,
)


def _fusable_producer(g: Graph, x: str, ops: tuple[Op, ...]) -> Node | None:
    """The node making `x` if it is one of `ops`, float, act NONE, and `x` feeds only one node."""
    if not x or g.tensors[x].is_const or not is_float(g, x) or not sole_user(g, x):
        return None
    p = producer(g, x)
    if p is None or p.op not in ops or getattr(p.attrs, "act", Act.NONE) != Act.NONE:
        return None
    if p.op in WEIGHTED and const(g, p.inputs[1]) is None:
        return None
    return p


def _cout(g: Graph, p: Node) -> int:
    return g.tensors[p.inputs[1]].shape[OPS[p.op].out_axis]


def _bias(g: Graph, p: Node) -> np.ndarray:
    b = const(g, p.inputs[2]) if len(p.inputs) > 2 else None
    return np.zeros(_cout(g, p), np.float32) if b is None else b.astype(np.float32)


def _scaled(g: Graph, p: Node, scale: np.ndarray, shift: np.ndarray, out: str) -> Node:
    """p with W*scale (per output channel) and bias*scale + shift, writing `out`."""
    w = const(g, p.inputs[1]).astype(np.float32)
    shape = [1] * w.ndim
    shape[OPS[p.op].out_axis] = -1
    w2 = w * scale.reshape(shape)
    b2 = _bias(g, p) * scale + shift
    return p.with_(inputs=(p.inputs[0], new_const(g, p.inputs[1], w2),
                           new_const(g, (p.inputs[2] if len(p.inputs) > 2 and p.inputs[2]
                                         else p.outputs[0] + "_bias"), b2.astype(np.float32))),
                   outputs=(out,))


def _bn_affine(g: Graph, n: Node) -> tuple[np.ndarray, np.ndarray] | None:
    scale, beta, mean, var = (const(g, i) for i in n.inputs[1:5])
    if any(v is None for v in (scale, beta, mean, var)):
        return None
    s = (scale / np.sqrt(var.astype(np.float64) + n.attrs.epsilon)).astype(np.float32)
    return s, (beta - mean * s).astype(np.float32)


# ---------------------------------------------------------------- batchnorm
def fold_batchnorm(g: Graph) -> int:
    """BATCHNORM after CONV2D/DWCONV2D/FC -> the producer's weights and bias."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != Op.BATCHNORM:
            return None
        p = _fusable_producer(g, n.inputs[0], WEIGHTED)
        aff = _bn_affine(g, n)
        if p is None or aff is None or aff[0].size != _cout(g, p):
            return None
        return [_scaled(g, p, aff[0], aff[1], n.outputs[0])]
    return apply_rule(g, rule)


def batchnorm_to_affine(g: Graph) -> int:
    """A BATCHNORM with nothing to fold into -> MUL(scale) + ADD(shift) on the channel axis."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        aff = None if n.op != Op.BATCHNORM else _bn_affine(g, n)
        if aff is None:
            return None
        x, y = n.inputs[0], n.outputs[0]
        mid = g.unique_name(y + "_scaled")
        g.add_tensor(Tensor(mid, g.tensors[y].shape))
        return [Node(Op.MUL, (x, new_const(g, y + "_scale", aff[0])), (mid,), BinaryAttrs(),
                     n.name),
                Node(Op.ADD, (mid, new_const(g, y + "_shift", aff[1])), (y,), BinaryAttrs(),
                     n.name)]
    return apply_rule(g, rule)


# ---------------------------------------------------------------- constant arithmetic
def _const_operand(g: Graph, n: Node) -> tuple[str, np.ndarray] | None:
    """(activation input, constant) of a binary node with exactly one constant operand."""
    a, b = n.inputs
    ca, cb = const(g, a), const(g, b)
    if cb is not None and ca is None:
        return a, cb
    if ca is not None and cb is None and n.op in (Op.ADD, Op.MUL):
        return b, ca
    return None


def _same_shape(g: Graph, n: Node, x: str) -> bool:
    return g.tensors[x].shape == g.tensors[n.outputs[0]].shape


def div_sub_to_mul_add(g: Graph) -> int:
    """x / c -> x * (1/c);  x - c -> x + (-c)  (so the folds below see MUL/ADD only)."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op not in (Op.DIV, Op.SUB) or n.attrs.act != Act.NONE:
            return None
        c = const(g, n.inputs[1])
        if c is None or const(g, n.inputs[0]) is not None or not is_float(g, n.outputs[0]):
            return None
        if n.op == Op.DIV:
            if np.any(c == 0):
                return None
            return [Node(Op.MUL, (n.inputs[0], new_const(g, n.inputs[1] + "_recip",
                                                           (1.0 / c).astype(np.float32))),
                         n.outputs, BinaryAttrs(), n.name)]
        return [Node(Op.ADD, (n.inputs[0], new_const(g, n.inputs[1] + "_neg",
                                                       (-c).astype(np.float32))),
                     n.outputs, BinaryAttrs(), n.name)]
    return apply_rule(g, rule)


def div_by_sqrt_to_rsqrt(g: Graph) -> int:
    """x / SQRT(v) -> x * RSQRT(v): LayerNorm as torch.onnx exports it before opset 17
    (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div); DIV of two activations has no int8
    form, MUL and RSQRT do."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != Op.DIV or n.attrs.act != Act.NONE or not is_float(g, n.outputs[0]):
            return None
        p = producer(g, n.inputs[1])
        if p is None or p.op != Op.SQRT or const(g, n.inputs[0]) is not None:
            return None
        r = g.unique_name(p.outputs[0] + "_rsqrt")
        g.add_tensor(Tensor(r, g.tensors[p.outputs[0]].shape))
        return [Node(Op.RSQRT, (p.inputs[0],), (r,), NoAttrs(), p.name),
                Node(Op.MUL, (n.inputs[0], r), n.outputs, BinaryAttrs(), n.name)]
    return apply_rule(g, rule)


def hard_sigmoid_to_relu6(g: Graph) -> int:
    """HARD_SIGMOID(x) = clip(a*x + b, 0, 1) -> MUL(RELU6(MUL(x, 6a) + 6b), 1/6), the int8 ops
    TFLite's converter gives Keras' hard_sigmoid. The x*6a MUL (absent for PyTorch's a = 1/6)
    and the +6b ADD then fold into the producing conv's weights and bias and RELU6 into its
    act, so a squeeze-excite gate costs one requantizing MUL beyond the conv."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != Op.HARD_SIGMOID or not is_float(g, n.outputs[0]):
            return None
        x, y = n.inputs[0], n.outputs[0]
        shape = g.tensors[y].shape
        nodes = []

        def tmp(base: str) -> str:
            name = g.unique_name(f"{y}_{base}")
            g.add_tensor(Tensor(name, shape))
            return name
        six_a = np.float32(6.0 * n.attrs.alpha)
        if six_a != 1.0:
            scaled = tmp("scaled")
            nodes.append(Node(Op.MUL, (x, new_const(g, y + "_6a", np.array(six_a))), (scaled,),
                              BinaryAttrs(), n.name))
            x = scaled
        shifted, clipped = tmp("shifted"), tmp("relu6")
        six_b = np.array(np.float32(6.0 * n.attrs.beta))
        nodes += [Node(Op.ADD, (x, new_const(g, y + "_6b", six_b)), (shifted,), BinaryAttrs(),
                       n.name),
                  Node(Op.RELU6, (shifted,), (clipped,), NoAttrs(), n.name),
                  Node(Op.MUL, (clipped, new_const(g, y + "_sixth", np.array(np.float32(1 / 6)))),
                       (y,), BinaryAttrs(), n.name)]
        return nodes
    return apply_rule(g, rule)


def merge_const_chains(g: Graph) -> int:
    """MUL(MUL(x, a), b) -> MUL(x, a*b);  ADD(ADD(x, a), b) -> ADD(x, a+b);
    MUL(ADD(x, a), b) -> ADD(MUL(x, b), a*b), so BN + Mul + Add chains become one affine."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op not in (Op.ADD, Op.MUL) or n.attrs.act != Act.NONE:
            return None
        outer = _const_operand(g, n)
        if outer is None:
            return None
        p = _fusable_producer(g, outer[0], (Op.ADD, Op.MUL))
        inner = None if p is None else _const_operand(g, p)
        if inner is None or not _same_shape(g, p, inner[0]):
            return None
        if p.op == Op.ADD and n.op == Op.MUL:   # (x + a) * b -> x * b + a * b
            ab = (inner[1] * outer[1]).astype(np.float32)
            if ab.ndim > len(g.tensors[n.outputs[0]].shape):
                return None
            mid = g.unique_name(n.outputs[0] + "_scaled")
            g.add_tensor(Tensor(mid, g.tensors[n.outputs[0]].shape))
            return [n.with_(inputs=(inner[0], new_const(g, n.outputs[0] + "_k", outer[1])),
                            outputs=(mid,)),
                    p.with_(inputs=(mid, new_const(g, p.outputs[0] + "_k", ab)),
                            outputs=n.outputs)]
        if p.op != n.op:
            return None
        f = np.multiply if n.op == Op.MUL else np.add
        c = f(inner[1], outer[1]).astype(np.float32)
        if c.ndim > len(g.tensors[n.outputs[0]].shape):
            return None
        return [n.with_(inputs=(inner[0], new_const(g, n.outputs[0] + "_k", c)))]
    return apply_rule(g, rule)


def fold_const_mul_into_weights(g: Graph) -> int:
    """MUL(CONV/DWCONV/FC(x), c) with c per output channel (or scalar) -> scaled weights."""
    return _fold_const_into_layer(g, Op.MUL, lambda s: (s, np.zeros_like(s)))


def fold_const_add_into_bias(g: Graph) -> int:
    """ADD(CONV/DWCONV/FC(x), c) with c per output channel (or scalar) -> bias + c."""
    return _fold_const_into_layer(g, Op.ADD, lambda c: (np.ones_like(c), c))


def _fold_const_into_layer(g: Graph, op: Op,
                           affine: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
                           ) -> int:
    """`op`(weighted layer(x), per-channel const v) -> the layer with W * scale and
    bias * scale + shift, where (scale, shift) = affine(v)."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != op or n.attrs.act != Act.NONE:
            return None
        xc = _const_operand(g, n)
        p = None if xc is None else _fusable_producer(g, xc[0], WEIGHTED)
        if p is None or not _same_shape(g, n, xc[0]):
            return None
        v = channel_vector(xc[1], _cout(g, p))
        if v is None:
            return None
        return [_scaled(g, p, *affine(v), n.outputs[0])]
    return apply_rule(g, rule)


def _input_affine(g: Graph, x: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(src, S, T) with x = src * S + T per channel, through a chain of const MUL/ADD nodes
    whose outputs each feed only the next; None if x is not made that way."""
    c = g.tensors[x].shape[-1]
    s, t, found = np.ones(c, np.float32), np.zeros(c, np.float32), False
    while True:
        p = _fusable_producer(g, x, (Op.ADD, Op.MUL))
        xc = None if p is None else _const_operand(g, p)
        v = None if xc is None or not _same_shape(g, p, xc[0]) else channel_vector(xc[1], c)
        if v is None:
            return (x, s, t) if found else None
        if p.op == Op.ADD:    # x = (src + v) * S + T
            t = t + v * s
        else:                 # x = (src * v) * S + T
            s = s * v
        x, found = xc[0], True


def fold_affine_into_next(g: Graph) -> int:
    """Per-channel x*S + T (a BN that had nothing to fold into) -> the weights of the unpadded
    CONV2D/DWCONV2D/FC that reads it: W' = W*S over input channels, b' = b + W.T (exact only
    without zero padding, which would see T where the original saw 0)."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op not in WEIGHTED or const(g, n.inputs[1]) is None or not is_float(g, n.inputs[0]):
            return None
        if n.op != Op.FC and n.attrs.pad != (0, 0, 0, 0):
            return None
        aff = _input_affine(g, n.inputs[0])
        if aff is None:
            return None
        src, s, t = aff
        w = const(g, n.inputs[1]).astype(np.float32)
        b = _bias(g, n)
        if n.op == Op.DWCONV2D:     # output channel o reads input channel o // multiplier
            m = n.attrs.depth_multiplier
            s, t = np.repeat(s, m), np.repeat(t, m)
            w2, b2 = w * s, b + t * w.sum(axis=(0, 1, 2))
        else:                       # input channels are the last weight axis
            w2 = w * s
            b2 = b + w.reshape(w.shape[0], -1, w.shape[-1]).sum(axis=1) @ t
        bias_name = n.inputs[2] if len(n.inputs) > 2 and n.inputs[2] else n.outputs[0] + "_bias"
        return [n.with_(inputs=(src, new_const(g, n.inputs[1], w2),
                                new_const(g, bias_name, b2.astype(np.float32))))]
    return apply_rule(g, rule)


# ---------------------------------------------------------------- matmul, pad
def matmul_add_to_fc(g: Graph) -> int:
    """MATMUL(x, const B[K, N]) -> FC(x, B^T) (a following const ADD then folds into bias)."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        b = const(g, n.inputs[1]) if n.op == Op.MATMUL else None
        if b is None or b.ndim != 2 or const(g, n.inputs[0]) is not None:
            return None
        if not is_float(g, n.outputs[0]):
            return None
        rank = len(g.tensors[n.inputs[0]].shape)
        w = new_const(g, n.inputs[1] + "_fc", np.ascontiguousarray(b.T).astype(np.float32))
        return [Node(Op.FC, (n.inputs[0], w, ""), n.outputs, FcAttrs(keep_num_dims=rank > 2),
                     n.name)]
    return apply_rule(g, rule)


def fuse_pad(g: Graph) -> int:
    """Zero PAD of H/W only, feeding one CONV2D/DWCONV2D -> the conv's explicit pads."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op not in (Op.CONV2D, Op.DWCONV2D):
            return None
        p = _fusable_producer(g, n.inputs[0], (Op.PAD,))
        if p is None or len(p.inputs) > 1 and any(p.inputs[1:]):
            return None
        pads = p.attrs.pads
        if len(pads) != 4 or p.attrs.value != 0.0 or pads[0] != (0, 0) or pads[3] != (0, 0):
            return None
        t, l, b, r = n.attrs.pad
        pad = (t + pads[1][0], l + pads[2][0], b + pads[1][1], r + pads[2][1])
        return [n.with_(inputs=(p.inputs[0],) + n.inputs[1:],
                        attrs=type(n.attrs)(**{**n.attrs.__dict__, "pad": pad}))]
    return apply_rule(g, rule)


# ---------------------------------------------------------------- activations
def _act_of(n: Node) -> Act | None:
    """The fused-activation equivalent of a standalone activation node, if any."""
    if n.op == Op.RELU:
        return Act.RELU
    if n.op == Op.RELU6:
        return Act.RELU6
    if n.op == Op.CLIP:
        for act, rng in ACT_RANGE.items():
            if act != Act.NONE and (n.attrs.min, n.attrs.max) == rng:
                return act
    return None


_CLAMP = {Op.RELU: (0.0, np.inf), Op.RELU6: (0.0, 6.0)}


def _clamp(n: Node) -> tuple[float, float] | None:
    if n.op == Op.CLIP:
        return (n.attrs.min, n.attrs.max)
    return _CLAMP.get(n.op)


def merge_clips(g: Graph) -> int:
    """Clamp of a clamp (RELU/RELU6/CLIP) -> one CLIP of the intersected range."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        outer = _clamp(n)
        p = None if outer is None else _fusable_producer(g, n.inputs[0], (Op.RELU, Op.RELU6,
                                                                           Op.CLIP))
        if p is None:
            return None
        inner = _clamp(p)
        lo, hi = max(inner[0], outer[0]), min(inner[1], outer[1])
        if lo > hi:
            return None
        return [Node(Op.CLIP, p.inputs, n.outputs, ClipAttrs(float(lo), float(hi)), n.name)]
    return apply_rule(g, rule)


def canonicalize_clip(g: Graph) -> int:
    """CLIP(0, inf) -> RELU, CLIP(0, 6) -> RELU6 (ops with an int8 form)."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        act = _act_of(n) if n.op == Op.CLIP else None
        op = {Act.RELU: Op.RELU, Act.RELU6: Op.RELU6}.get(act) if act else None
        return None if op is None else [Node(op, n.inputs, n.outputs, NoAttrs(), n.name)]
    return apply_rule(g, rule)


FUSE_INTO = (Op.CONV2D, Op.DWCONV2D, Op.FC, Op.ADD)


def fuse_activation(g: Graph) -> int:
    """RELU/RELU6/CLIP(0,6)/CLIP(-1,1) after CONV2D/DWCONV2D/FC/ADD -> the producer's act."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        act = _act_of(n)
        p = None if act is None else _fusable_producer(g, n.inputs[0], FUSE_INTO)
        if p is None:
            return None
        return [p.with_(outputs=n.outputs,
                        attrs=type(p.attrs)(**{**p.attrs.__dict__, "act": act}))]
    return apply_rule(g, rule)

