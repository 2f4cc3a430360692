"""Multi-op spellings the TFLite converter writes for Keras layers, rewritten at import into
the IR ops they mean (exactly: every rewrite gives the bytes TFLM and LiteRT give running
the original operators).

The reader (frontends.tflite) imports operator by operator into entries
`(k, op, attrs, ins, outs)` over the file's tensor indices; a builtin in PENDING is kept as
`(k, None, (builtin, options, label), ins, outs)` and must be consumed by a rewrite here:

  * dilated convolution: SPACE_TO_BATCH_ND -> [reshapes] -> CONV_2D / DEPTHWISE_CONV_2D
    (VALID, stride 1) -> [reshapes] -> BATCH_TO_SPACE_ND (Keras Conv1D with dilation_rate)
    -> one convolution with that dilation and padding (pads minus crops);
  * repeat: EXPAND_DIMS -> TILE -> RESHAPE folding the tiled axis into H or W (Keras 3
    UpSampling2D, nearest) -> RESIZE_NEAREST_NEIGHBOR (floor(o * in / out) is o // m);
    a repeat over H then W becomes one resize;
  * NEG between DEQUANTIZE and QUANTIZE of one scale (Keras LayerNormalization's
    -mean, left in float by the converter) -> SUB(zero point, x): exact, as both are
    -(x - zp) + zp_out in integers;
  * float data movement between DEQUANTIZE and QUANTIZE of the same scale and zero point
    (Keras GRU's gate SPLIT) runs in int8: moving values does not change them.

Anything else keeps its one-line reason ("... only as part of ...").
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from edgeforge.ir import BinaryAttrs, Op, ReshapeAttrs, ResizeAttrs

PENDING = ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "TILE", "NEG")
INT8 = 9   # schema TensorType.INT8
# IR ops that only move int8 values (same scale in and out): they commute with quantization
MOVEMENT = (Op.RESHAPE, Op.STRIDED_SLICE, Op.TRANSPOSE, Op.CONCAT)

Entry = tuple[int, Any, Any, list[int], list[int]]


class _Fail(Exception):
    """A pattern that does not match: the reason, kept for the pending op's error."""


class _Graph:
    """Producer / consumer lookup over the entries (rebuilt after each rewrite)."""

    def __init__(self, entries: list[Entry | None], outputs: set[int]):
        self.e, self.outputs = entries, outputs
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for j, en in enumerate(entries):
            if en is None:
                continue
            for i in en[4]:
                self.producer[i] = j
            for i in en[3]:
                self.consumers.setdefault(i, []).append(j)

    def only_consumer(self, t: int) -> int:
        users = self.consumers.get(t, [])
        if len(users) != 1 or t in self.outputs:
            raise _Fail(f"tensor {t} has {len(users)} users")
        return users[0]


def _shape(tensors: list[Any], i: int) -> tuple[int, ...]:
    s = tensors[i].shape
    return () if s is None else tuple(int(d) for d in s)


def _set_shape(tensors: list[Any], i: int, shape: tuple[int, ...]) -> None:
    tensors[i] = copy.copy(tensors[i])
    tensors[i].shape = np.asarray(shape, np.int32)


def _const(consts: dict[int, np.ndarray], i: int, what: str) -> list[int]:
    if i not in consts:
        raise _Fail(f"{what} must be a constant tensor")
    return [int(v) for v in consts[i].ravel()]


def _align(a: tuple[int, ...], b: tuple[int, ...]) -> dict[int, int] | None:
    """Axis map a -> b for a reshape that only inserts or drops size-1 axes, else None."""
    m, i, j = {}, 0, 0
    while i < len(a) or j < len(b):
        if i < len(a) and j < len(b) and a[i] == b[j]:
            m[i] = j
            i, j = i + 1, j + 1
        elif j < len(b) and b[j] == 1:
            j += 1
        elif i < len(a) and a[i] == 1:
            i += 1
        else:
            return None
    return m


def _follow(g: _Graph, t: int, stop: Any) -> tuple[list[int], int]:
    """From tensor t through single-use RESHAPEs to the entry satisfying stop(entry)."""
    chain = []
    while True:
        j = g.only_consumer(t)
        en = g.e[j]
        if en[1] == Op.RESHAPE:
            chain.append(j)
            t = en[4][0]
        elif stop(en):
            return chain, j
        else:
            raise _Fail(f"operator {en[0]} between them is not a reshape")


def _reshape_chain(entries, tensors, chain: list[int], recs: list[tuple[int, ...]],
                   shape: tuple[int, ...]) -> tuple[int, ...]:
    """Give each reshape in chain (recorded shapes recs: its input's, then each output's)
    the shape its recorded one implies for the new input shape; returns the last one."""
    for n, j in enumerate(chain):
        k, op, _, ins, outs = entries[j]
        m = _align(recs[n], recs[n + 1])
        if m is None:
            raise _Fail(f"reshape {list(recs[n])} -> {list(recs[n + 1])} moves more than "
                        "size-1 axes")
        new = list(recs[n + 1])
        for a, b in m.items():
            new[b] = shape[a]
        shape = tuple(new)
        _set_shape(tensors, outs[0], shape)
        entries[j] = (k, op, ReshapeAttrs(shape), ins, outs)
    return shape


def _dilated_conv(entries, tensors, consts, g: _Graph, s: int) -> None:
    _, _, _, ins, outs = entries[s]
    x, block = ins[0], _const(consts, ins[1], "block_shape")
    pads = _const(consts, ins[2], "paddings")
    xs = _shape(tensors, x)
    if len(xs) != len(block) + 2 or len(pads) != 2 * len(block):
        raise _Fail(f"block {block} for input {list(xs)}")
    pre, c = _follow(g, outs[0], lambda en: en[1] in (Op.CONV2D, Op.DWCONV2D))
    _, cop, ca, cins, couts = entries[c]
    if ca.stride != (1, 1) or ca.dilation != (1, 1) or any(ca.pad):
        raise _Fail("the convolution between them is not VALID with stride 1")
    post, b = _follow(g, couts[0], lambda en: en[1] is None and en[2][0] == "BATCH_TO_SPACE_ND")
    bins, bouts = entries[b][3], entries[b][4]
    if _const(consts, bins[1], "block_shape") != block:
        raise _Fail("BATCH_TO_SPACE_ND block differs from SPACE_TO_BATCH_ND's")
    crops = _const(consts, bins[2], "crops")
    qa, qb = tensors[x].quantization, tensors[outs[0]].quantization
    if (qa is None) != (qb is None) or qa is not None and (
            list(qa.scale) != list(qb.scale) or list(qa.zeroPoint) != list(qb.zeroPoint)):
        raise _Fail("SPACE_TO_BATCH_ND changes the quantization")
    pre_recs = [_shape(tensors, outs[0])] + [_shape(tensors, entries[j][4][0]) for j in pre]
    post_recs = [_shape(tensors, couts[0])] + [_shape(tensors, entries[j][4][0]) for j in post]
    # which conv axes (1 = H, 2 = W) carry the STB's spatial axes
    amap = {a: a for a in range(len(pre_recs[0]))}
    for n in range(len(pre)):
        step = _align(pre_recs[n], pre_recs[n + 1]) or {}
        amap = {a: step[m] for a, m in amap.items() if m in step}
    axes = {}
    for i in range(len(block)):
        ax = amap.get(1 + i)
        if ax not in (1, 2):
            raise _Fail(f"spatial axis {1 + i} does not reach the convolution's H or W")
        axes[ax] = i
    shape_in = _reshape_chain(entries, tensors, pre, pre_recs, xs)
    wshape = _shape(tensors, cins[1])
    dil, pad_b, pad_a = [1, 1], [0, 0], [0, 0]
    out = list(post_recs[0])
    out[0] = shape_in[0]
    for ax in (1, 2):
        if ax not in axes:
            out[ax] = shape_in[ax] - (wshape[ax] - 1)
            continue
        i = axes[ax]
        dil[ax - 1] = block[i]
        pad_b[ax - 1] = pads[2 * i] - crops[2 * i]
        pad_a[ax - 1] = pads[2 * i + 1] - crops[2 * i + 1]
        if min(pad_b[ax - 1], pad_a[ax - 1]) < 0:
            raise _Fail(f"crops {crops} exceed paddings {pads}")
        out[ax] = shape_in[ax] + pad_b[ax - 1] + pad_a[ax - 1] - block[i] * (wshape[ax] - 1)
    final = tuple(out)
    if post:
        final = _reshape_chain(entries, tensors, post, post_recs, final)
    if final != _shape(tensors, bouts[0]):
        raise _Fail(f"gives {list(final)}, the file records {list(_shape(tensors, bouts[0]))}")
    attrs = dataclasses.replace(ca, dilation=(dil[0], dil[1]),
                                pad=(pad_b[0], pad_b[1], pad_a[0], pad_a[1]))
    if pre:
        first = entries[pre[0]]
        entries[pre[0]] = (first[0], first[1], first[2], [x] + first[3][1:], first[4])
    new_in = cins[0] if pre else x
    if post:
        _set_shape(tensors, couts[0], tuple(out))
        last = entries[post[-1]]
        entries[post[-1]] = (last[0], last[1], last[2], last[3], bouts)
    entries[c] = (entries[c][0], cop, attrs, [new_in] + cins[1:], couts if post else bouts)
    entries[s] = entries[b] = None


def _repeat_exact(size_in: int, size_out: int) -> bool:
    """TFLite's nearest index floor(o * float32(in / out)) is o // m for every o."""
    if size_out % size_in:
        return False
    o = np.arange(size_out, dtype=np.float32)
    idx = np.minimum(np.floor(o * np.float32(np.float32(size_in) / np.float32(size_out))),
                     size_in - 1).astype(np.int64)
    return bool(np.array_equal(idx, np.arange(size_out) // (size_out // size_in)))


def _repeat(entries, tensors, consts, g: _Graph, t: int) -> None:
    """TILE as RESIZE_NEAREST: (a) a broadcast of size-1 H / W axes of an NHWC tensor
    (tf.tile of a pooled [N,1,1,C], UpSampling1D's [N,T,1,C]); (b) Keras 3 UpSampling2D's
    repeat, a size-1 axis right after H or W tiled m times in a 5-D view of the 4-D tensor,
    read and written through RESHAPEs (the element order is the resize's)."""
    k, _, _, ins, outs = entries[t]
    mult = _const(consts, ins[1], "multiples")
    xs, y = _shape(tensors, ins[0]), outs[0]
    tiled = [a for a, m in enumerate(mult) if m != 1]
    if len(mult) != len(xs) or any(xs[a] != 1 for a in tiled):
        raise _Fail(f"multiples {mult} on {list(xs)}: only a broadcast of size-1 axes")
    if len(xs) == 4 and set(tiled) <= {1, 2}:                       # (a)
        ys = tuple(d * m for d, m in zip(xs, mult))
        entries[t] = (k, Op.RESIZE_NEAREST, ResizeAttrs(size=(ys[1], ys[2])), [ins[0]], [y])
        return
    if len(xs) != 5 or len(tiled) != 1 or tiled[0] - 1 not in (1, 2):
        raise _Fail(f"multiples {mult} on {list(xs)}: not a repeat of H or W")
    a, m = tiled[0] - 1, mult[tiled[0]]                             # (b)
    x4 = xs[:a + 1] + xs[a + 2:]
    y4 = x4[:a] + (x4[a] * m,) + x4[a + 1:]
    if not _repeat_exact(x4[a], y4[a]):
        raise _Fail(f"repeat {m} of {x4[a]} is not TFLite's nearest resize")
    p = g.producer.get(ins[0])
    if p is None or entries[p][1] != Op.RESHAPE or g.only_consumer(ins[0]) != t:
        raise _Fail("input is not a reshape of a 4-D tensor")
    if any(entries[j][1] != Op.RESHAPE for j in g.consumers.get(y, [])) or y in g.outputs:
        raise _Fail("output is not reshaped back")
    pk, pop, _, pins, pouts = entries[p]
    _set_shape(tensors, pouts[0], x4)
    entries[p] = (pk, pop, ReshapeAttrs(x4), pins, pouts)
    _set_shape(tensors, y, y4)
    entries[t] = (k, Op.RESIZE_NEAREST, ResizeAttrs(size=(y4[1], y4[2])), [pouts[0]], [y])


def _drop_identity_reshapes(entries, tensors, outputs: set[int]) -> None:
    """A RESHAPE to its input's own shape (left by the rewrites) goes; its users read the
    input."""
    for j, en in enumerate(entries):
        if en is None or en[1] != Op.RESHAPE or en[4][0] in outputs or \
                _shape(tensors, en[3][0]) != tuple(en[2].shape):
            continue
        src, dst = en[3][0], en[4][0]
        entries[j] = None
        for i, o in enumerate(entries):
            if o is not None and dst in o[3]:
                entries[i] = (o[0], o[1], o[2], [src if v == dst else v for v in o[3]], o[4])


def _merge_resizes(entries, tensors, outputs: set[int]) -> None:
    """A repeat over H feeding only a repeat over W: one RESIZE_NEAREST of both."""
    g = _Graph(entries, outputs)
    for j, en in enumerate(entries):
        if en is None or en[1] != Op.RESIZE_NEAREST or en[2] != ResizeAttrs(en[2].size):
            continue
        users = g.consumers.get(en[4][0], [])
        if len(users) != 1 or en[4][0] in outputs:
            continue
        nxt = entries[users[0]]
        if nxt[1] != Op.RESIZE_NEAREST or nxt[2] != ResizeAttrs(nxt[2].size):
            continue
        xs, ys = _shape(tensors, en[3][0]), _shape(tensors, nxt[4][0])
        if not (_repeat_exact(xs[1], ys[1]) and _repeat_exact(xs[2], ys[2])):
            continue
        entries[users[0]] = (nxt[0], nxt[1], nxt[2], [en[3][0]], nxt[4])
        entries[j] = None
        g = _Graph(entries, outputs)


def _float_neg_table(sx: float, zx: int, sy: float, zy: int) -> np.ndarray:
    """int8 -> int8 of DEQUANTIZE, NEG, QUANTIZE as TFLM / LiteRT's reference kernels do
    it: float(double scale * (x - zp)), negated, round-half-away(v / float scale) + zp."""
    x = np.arange(-128, 128)
    v = -(np.float64(np.float32(sx)) * (x - zx)).astype(np.float32)
    q = (v / np.float32(sy)).astype(np.float32).astype(np.float64)
    q = np.sign(q) * np.floor(np.abs(q) + 0.5) + zy
    return np.clip(q, -128, 127).astype(np.int8)


def _sub_table(sx: float, zx: int, sy: float, zy: int, numerics: str) -> np.ndarray:
    """int8 SUB(zero point, x) over all 256 inputs, by the int8 reference."""
    from edgeforge.ir import Graph, Node, QuantParams, Tensor
    from edgeforge.runtime.reference import run
    g = Graph(name="neg")
    g.add_tensor(Tensor("zero", (1,), "int8", QuantParams([sx], [zx]), np.array([zx], np.int8)))
    g.add_tensor(Tensor("x", (256,), "int8", QuantParams([sx], [zx])))
    g.add_tensor(Tensor("y", (256,), "int8", QuantParams([sy], [zy])))
    g.nodes.append(Node(Op.SUB, ("zero", "x"), ("y",), BinaryAttrs(), "neg"))
    g.inputs, g.outputs = ["x"], ["y"]
    return run(g, {"x": np.arange(-128, 128).astype(np.int8)}, numerics=numerics)["y"]


def _neg(entries, tensors, consts, g: _Graph, n: int) -> None:
    k, _, _, ins, outs = entries[n]
    d = g.producer.get(ins[0])
    if d is None or entries[d][1] != Op.DEQUANTIZE or g.only_consumer(ins[0]) != n:
        raise _Fail("only between DEQUANTIZE and QUANTIZE (an int8 model's float island)")
    q = g.only_consumer(outs[0])
    if entries[q][1] != Op.QUANTIZE:
        raise _Fail("only between DEQUANTIZE and QUANTIZE (an int8 model's float island)")
    x, y = entries[d][3][0], entries[q][4][0]
    qx, qy = tensors[x].quantization, tensors[y].quantization
    if tensors[x].type != INT8 or tensors[y].type != INT8 or qx is None or qy is None or \
            len(qx.scale) != 1 or len(qy.scale) != 1:
        raise _Fail("the DEQUANTIZE and QUANTIZE around it are not per-tensor int8")
    sx, zx = float(qx.scale[0]), int(qx.zeroPoint[0]) if qx.zeroPoint is not None else 0
    sy, zy = float(qy.scale[0]), int(qy.zeroPoint[0]) if qy.zeroPoint is not None else 0
    want = _float_neg_table(sx, zx, sy, zy)
    for numerics in ("tflm", "litert"):    # the one int8 op that spells it must be exact
        bad = int(np.sum(_sub_table(sx, zx, sy, zy, numerics) != want))
        if bad:
            raise _Fail(f"int8 SUB(zero point, x) differs from the float NEG on {bad} of "
                        f"256 inputs ({numerics})")
    zero = copy.copy(tensors[x])
    zero.shape = np.asarray([1], np.int32)
    zero.name = (tensors[x].name or b"neg") + b"/zero_point"
    zero.buffer = 0
    tensors.append(zero)
    consts[len(tensors) - 1] = np.asarray([zx], np.int8)
    entries[n] = (k, Op.SUB, BinaryAttrs(), [len(tensors) - 1, x], [y])
    entries[d] = entries[q] = None


def _float_islands(entries, tensors, consts, outputs: set[int]) -> None:
    """DEQUANTIZE -> data movement only -> QUANTIZE to the same scale and zero point: the
    movement runs on the int8 values (the DEQUANTIZE goes, each QUANTIZE becomes an int8
    identity or goes)."""
    g = _Graph(entries, outputs)
    for d, en in enumerate(entries):
        if en is None or en[1] != Op.DEQUANTIZE or en[3][0] in consts:
            continue
        x, f = en[3][0], en[4][0]
        qx = tensors[x].quantization
        if tensors[x].type != INT8 or qx is None or qx.scale is None or len(qx.scale) != 1:
            continue
        island, quants, todo, ok = [], [], [f], True
        while todo and ok:
            t = todo.pop()
            if t in outputs:
                ok = False
                break
            for j in g.consumers.get(t, []):
                o = entries[j]
                if o[1] == Op.QUANTIZE:
                    qy = tensors[o[4][0]].quantization
                    ok = ok and tensors[o[4][0]].type == INT8 and qy is not None and \
                        list(qy.scale) == list(qx.scale) and \
                        list(qy.zeroPoint) == list(qx.zeroPoint)
                    quants.append(j)
                elif o[1] in MOVEMENT:
                    data = o[3] if o[1] == Op.CONCAT else o[3][:1]
                    ok = all(i == f or i in consts or g.producer.get(i) in island for i in data)
                    if j not in island:
                        island.append(j)
                        todo += list(o[4])
                else:
                    ok = False
        if not ok or not quants:
            continue
        for j in island:
            for i in entries[j][4]:
                tensors[i] = copy.copy(tensors[i])
                tensors[i].type = INT8
                tensors[i].quantization = qx
        for j in g.consumers[f]:
            o = entries[j]
            entries[j] = (o[0], o[1], o[2], [x if i == f else i for i in o[3]], o[4])
        for j in quants:   # an identity now: its producer writes its output instead
            t, y = entries[j][3][0], entries[j][4][0]
            p = g.producer.get(t)
            if p in island and g.consumers.get(t) == [j] and t not in outputs:
                o = entries[p]
                entries[p] = (o[0], o[1], o[2], o[3], [y if i == t else i for i in o[4]])
                entries[j] = None
        entries[d] = None
        g = _Graph(entries, outputs)


REWRITES = {"SPACE_TO_BATCH_ND": _dilated_conv, "TILE": _repeat, "NEG": _neg}


def rewrite(entries: list[Entry], tensors: list[Any], consts: dict[int, np.ndarray],
            outputs: list[int]) -> tuple[list[Entry], list[tuple[int, str, str, str]]]:
    """Apply the rewrites; returns the entries left and a problem per pending operator
    that no rewrite consumed (k, label, builtin, why)."""
    out = set(outputs)
    work: list[Entry | None] = list(entries)
    reasons: dict[int, str] = {}
    for name, fn in REWRITES.items():
        for j in range(len(work)):
            en = work[j]
            if en is None or en[1] is not None or en[2][0] != name:
                continue
            try:
                fn(work, tensors, consts, _Graph(work, out), j)
            except _Fail as e:
                reasons[j] = str(e)
    _drop_identity_reshapes(work, tensors, out)
    _merge_resizes(work, tensors, out)
    _float_islands(work, tensors, consts, out)
    problems = []
    for j, en in enumerate(work):
        if en is not None and en[1] is None:
            builtin, _, label = en[2]
            what = {"SPACE_TO_BATCH_ND": "a dilated convolution's",
                    "BATCH_TO_SPACE_ND": "a dilated convolution's",
                    "TILE": "an UpSampling repeat's", "NEG": "a float island's"}[builtin]
            why = reasons.get(j, "its partner op is missing")
            problems.append((en[0], label, builtin,
                             f"supported only as part of {what} pattern: {why}"))
    return [en for en in work if en is not None], problems
