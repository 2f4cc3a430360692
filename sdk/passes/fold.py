"""Structural passes: constant folding, no-op removal, transpose/reshape cancelling, and
absorbing a pre-Flatten NHWC->NCHW transpose into the next FC's weight columns."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeforge.ir import Graph, Node, Op, ReshapeAttrs, Tensor, TransposeAttrs
from edgeforge.passes.rewrite import apply_rule, bypass, const, is_float, new_const, producer, users


# ---------------------------------------------------------------- constant folding
def _np_binary(f: Callable[[Any, Any], Any]) -> Callable[..., np.ndarray]:
    return lambda a, b, attrs: f(a, b)


# numpy fallbacks for the ops constant graphs actually contain (data movement, arithmetic);
# runtime.reference.REFERENCE is preferred when it has the op
NUMPY: dict[Op, Callable[..., np.ndarray]] = {
    Op.RESHAPE: lambda x, *rest: x.reshape(rest[-1].shape),
    Op.TRANSPOSE: lambda x, *rest: x.transpose(rest[-1].perm),
    Op.ADD: _np_binary(np.add),
    Op.SUB: _np_binary(np.subtract),
    Op.MUL: _np_binary(np.multiply),
    Op.DIV: _np_binary(np.divide),
    Op.RELU: lambda x, a: np.maximum(x, 0),
    Op.RELU6: lambda x, a: np.clip(x, 0, 6),
    Op.CLIP: lambda x, a: np.clip(x, a.min, a.max),
    Op.PAD: lambda x, *rest: np.pad(x, rest[-1].pads, constant_values=rest[-1].value),
}


def _evaluate(n: Node, ins: list[np.ndarray | None]) -> np.ndarray | None:
    """The node's output from constant inputs ("" inputs arrive as None), or None."""
    if n.op == Op.CONCAT:
        return np.concatenate(ins, axis=n.attrs.axis)
    from edgeforge.runtime.reference import REFERENCE
    fn = REFERENCE.get(n.op) or NUMPY.get(n.op)
    if fn is None:
        return None
    try:
        out = fn(*ins, n.attrs)
    except Exception:  # noqa: BLE001 - an op the reference cannot fold is simply left alone
        return None
    return np.asarray(out[0] if isinstance(out, tuple) else out)


def fold_constants(g: Graph) -> int:
    """A float node whose inputs are all constant becomes a constant tensor."""
    changes = 0
    for n in list(g.nodes):
        if len(n.outputs) != 1 or not n.inputs or not is_float(g, n.outputs[0]):
            continue
        ins = [const(g, i) if i else None for i in n.inputs]
        if any(x is None for x, i in zip(ins, n.inputs) if i) or n.outputs[0] in g.outputs:
            continue
        out = _evaluate(n, ins)
        t = g.tensors[n.outputs[0]]
        if out is None or tuple(out.shape) != t.shape:
            continue
        t.data = out.astype(np.float32)
        g.nodes.remove(n)
        changes += 1
    if changes:
        g.prune()
    return changes


# ---------------------------------------------------------------- no-ops
def _is_noop(g: Graph, n: Node) -> bool:
    a, x, y = n.attrs, n.inputs[0] if n.inputs else "", n.outputs[0]
    if not x or g.tensors[x].shape != g.tensors[y].shape:
        return False
    if n.op == Op.RESHAPE:
        return True
    if n.op == Op.TRANSPOSE:
        return tuple(a.perm) == tuple(range(len(a.perm)))
    if n.op == Op.CLIP:
        return a.min == -np.inf and a.max == np.inf
    if n.op == Op.PAD:
        return all(b == 0 and e == 0 for b, e in a.pads)
    if n.op == Op.CONCAT:
        return len(n.inputs) == 1 and a.act == "NONE"
    if n.op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV) and a.act == "NONE" and is_float(g, y):
        c = const(g, n.inputs[1])
        unit = 1.0 if n.op in (Op.MUL, Op.DIV) else 0.0
        return c is not None and bool(np.all(c == unit))
    return False


def remove_identity(g: Graph) -> int:
    """Drop no-op nodes: same-shape RESHAPE, identity TRANSPOSE, open CLIP, zero PAD, x+0, x*1."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        return bypass(g, n, n.inputs[0]) if _is_noop(g, n) else None
    return apply_rule(g, rule)


# ---------------------------------------------------------------- transposes and reshapes
def cancel_transposes(g: Graph) -> int:
    """TRANSPOSE(q) of TRANSPOSE(p) -> one TRANSPOSE (or none); size-1-only moves -> RESHAPE."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != Op.TRANSPOSE or len(n.inputs) != 1:
            return None
        shp = g.tensors[n.inputs[0]].shape
        moved = [i for i in n.attrs.perm if shp[i] != 1]
        if moved == sorted(moved):   # only size-1 dims move: the bytes stay in order
            out = g.tensors[n.outputs[0]].shape
            return [Node(Op.RESHAPE, n.inputs, n.outputs, ReshapeAttrs(out), n.name)]
        p = producer(g, n.inputs[0])
        if p is None or p.op != Op.TRANSPOSE or len(p.inputs) != 1:
            return None
        perm = tuple(p.attrs.perm[i] for i in n.attrs.perm)
        if perm == tuple(range(len(perm))):   # gone; a plain copy if both ends are graph I/O
            done = bypass(g, n, p.inputs[0])
            out = g.tensors[n.outputs[0]].shape
            return done if done is not None else [Node(Op.RESHAPE, p.inputs, n.outputs,
                                                       ReshapeAttrs(out), n.name)]
        return [n.with_(inputs=p.inputs, attrs=TransposeAttrs(perm))]
    return apply_rule(g, rule)


def merge_reshapes(g: Graph) -> int:
    """RESHAPE of RESHAPE -> one RESHAPE from the first input."""
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != Op.RESHAPE:
            return None
        p = producer(g, n.inputs[0])
        if p is None or p.op != Op.RESHAPE:
            return None
        return [n.with_(inputs=p.inputs[:1])]
    return apply_rule(g, rule)


def absorb_transpose_into_fc(g: Graph) -> int:
    """FC(RESHAPE(TRANSPOSE(x))) -> FC'(RESHAPE(x)) with the weight columns permuted.

    The transpose a Flatten of an NCHW tensor needs (NHWC->NCHW order) only reorders the
    K inputs of the FC, so it goes into the weights (their columns, reordered).
    """
    def rule(g: Graph, n: Node) -> list[Node] | None:
        if n.op != Op.RESHAPE:
            return None
        t = producer(g, n.inputs[0])
        if t is None or t.op != Op.TRANSPOSE or t.attrs.perm[0] != 0:
            return None
        fcs = users(g, n.outputs[0])
        x = t.inputs[0]
        xs, ys = g.tensors[x].shape, g.tensors[n.outputs[0]].shape
        if (n.outputs[0] in g.outputs or not fcs or len(ys) != 2 or ys[0] != xs[0]
                or len(users(g, t.outputs[0])) != 1):
            return None
        if any(f.op != Op.FC or f.inputs[0] != n.outputs[0] or const(g, f.inputs[1]) is None
               for f in fcs):
            return None
        inner = tuple(p - 1 for p in t.attrs.perm[1:])
        t_shape = tuple(xs[1:][i] for i in inner)
        back = (0,) + tuple(1 + int(i) for i in np.argsort(inner))
        for f in fcs:
            w = const(g, f.inputs[1])
            # W is indexed in transposed (NCHW) order; reindex its columns in x's order
            w2 = w.reshape((w.shape[0],) + t_shape).transpose(back).reshape(w.shape)
            k = g.nodes.index(f)
            g.nodes[k] = f.with_(inputs=(f.inputs[0], new_const(g, f.inputs[1], w2))
                                 + f.inputs[2:])
        # the flat tensor now holds x's order: a new name, so no one mistakes it for the old
        flat = g.unique_name(n.outputs[0] + "_nhwc")
        g.add_tensor(Tensor(flat, ys))
        g.nodes = [m.with_(inputs=tuple(flat if i == n.outputs[0] else i for i in m.inputs))
                   if m.op == Op.FC else m for m in g.nodes]
        return [n.with_(inputs=(x,), outputs=(flat,))]
    return apply_rule(g, rule)
