"""16x8 and mixed precision: turn chosen layers of a quantized int8 graph into 16x8 layers.

    qg16 = widen(fg, qg, ranges16)                 # every layer that has a 16x8 kernel
    qgm = widen(fg, qg, ranges16, {"conv1", ...})  # only these (by output tensor name)

The int8 graph comes first (calibration, rules, bias correction and the least-squares refit
as for int8), so a widened layer keeps its refitted int8 weights; what changes is TFLite's
16x8 spec: its activations become int16, symmetric (zero point 0) over the layer's min/max
range (`ranges16`: a minmax calibration -- at 16 bits clipping costs more than resolution),
and its bias int64 at in_scale * w_scale (the same real bias, re-expressed). LOGISTIC /
TANH / SOFTMAX take the fixed int16 output scale 1/32768; pools, RESHAPE and the other
shares-input ops keep their input's int16 scale. Where an int8 tensor meets an int16 layer
(or the reverse) a QUANTIZE node requantizes it (TFLM / LiteRT QUANTIZE int8 <-> int16).
Graph inputs / outputs take the precision of the layers next to them.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeforge.ir import ACT_RANGE, OPS, WEIGHTED, Graph, Node, Op, QuantParams, Tensor, verify
from edgeforge.quantize.rules import SHARES_INPUT_Q, Range

INT16_MAX = (1 << 15) - 1
FIXED_OUT_S16 = {Op.LOGISTIC: 1.0 / 32768, Op.TANH: 1.0 / 32768, Op.SOFTMAX: 1.0 / 32768}
# 16x8 layers: a kernel in both runtimes, the reference and the C package (codegen.c
# EMITTERS_S16); QUANTIZE / DEQUANTIZE stay as they are
WIDENABLE = frozenset({Op.CONV2D, Op.DWCONV2D, Op.FC, Op.AVGPOOL2D, Op.MAXPOOL2D, Op.MEAN,
                       Op.ADD, Op.SUB, Op.MUL, Op.LOGISTIC, Op.TANH, Op.SOFTMAX, Op.RESHAPE})


def sym16(lo: float, hi: float) -> QuantParams:
    """Symmetric int16 quantization of [lo, hi]: scale max|.| / 32767, zero point 0."""
    amax = max(abs(float(lo)), abs(float(hi)), 1e-8)
    return QuantParams(np.array([amax / INT16_MAX], np.float32), np.zeros(1, np.int64))


def widenable(qg: Graph) -> list[str]:
    """Output names of the layers of `qg` that have a 16x8 form."""
    return [n.outputs[0] for n in qg.nodes if n.op in WIDENABLE]


def widen(fg: Graph, qg: Graph, ranges16: dict[str, Range], layers: set[str] | None = None,
          io8: bool = False) -> Graph:
    """A copy of int8 graph `qg` whose `layers` (output tensor names; None: every widenable
    layer) run as 16x8, with requantizing QUANTIZE nodes at the precision boundaries.
    `io8`: graph inputs and outputs stay int8 (the C package's I/O), converted at the edges."""
    wide = set(widenable(qg)) if layers is None else set(layers) & set(widenable(qg))
    g = Graph(name=qg.name, inputs=list(qg.inputs), outputs=list(qg.outputs),
              meta=dict(qg.meta))
    for name, t in qg.tensors.items():
        if t.is_const:
            g.tensors[name] = Tensor(name, t.shape, t.dtype, t.quant, t.data)
    consumers = qg.consumers()
    for name in qg.inputs:              # an input read only by 16x8 layers becomes int16
        t = qg.tensors[name]
        users = consumers.get(name, [])
        as16 = not io8 and bool(users) and all(u.outputs[0] in wide for u in users)
        g.add_tensor(Tensor(name, t.shape, "int16" if as16 else t.dtype,
                            _range16(name, qg, ranges16) if as16 else t.quant))
    cast: dict[tuple[str, str], str] = {}
    nodes: list[Node] = []
    for n in qg.nodes:
        dtype = "int16" if n.outputs[0] in wide else "int8"
        ins = []
        for k, i in enumerate(n.inputs):
            if not i or g.tensors[i].is_const or k in OPS[n.op].weights:
                ins.append(i)
            elif g.tensors[i].dtype in ("int8", "int16") and g.tensors[i].dtype != dtype:
                ins.append(_cast(g, qg, ranges16, i, dtype, cast, nodes))
            else:
                ins.append(i)
        n = n.with_(inputs=tuple(ins))
        out = n.outputs[0]
        src = qg.tensors[out]
        if dtype == "int8" or src.dtype != "int8":
            g.add_tensor(Tensor(out, src.shape, src.dtype, src.quant))
        else:
            g.add_tensor(Tensor(out, src.shape, "int16", _out_quant16(n, g, qg, ranges16)))
            if n.op in WEIGHTED and len(n.inputs) > 2 and n.inputs[2]:
                n = _bias64(g, qg, n)
        nodes.append(n)
    g.nodes = nodes
    if io8:
        _int8_outputs(g, qg)
    g.meta["precision"] = {n.outputs[0]: g.tensors[n.outputs[0]].dtype for n in g.nodes
                           if n.op in WIDENABLE}
    verify(g)
    return g


def _range16(name: str, qg: Graph, ranges16: dict[str, Range]) -> QuantParams:
    if name in ranges16:
        return sym16(*ranges16[name])
    q = qg.tensors[name].quant        # an inserted tensor: the range its int8 quant covers
    s, z = float(q.scale[0]), int(q.zero_point[0])
    return sym16(s * (-128 - z), s * (127 - z))


def _out_quant16(n: Node, g: Graph, qg: Graph, ranges16: dict[str, Range]) -> QuantParams:
    if n.op in FIXED_OUT_S16:
        return QuantParams(np.array([FIXED_OUT_S16[n.op]], np.float32), np.zeros(1, np.int64))
    if n.op in SHARES_INPUT_Q:
        q = g.tensors[n.inputs[0]].quant
        return QuantParams(q.scale.copy(), q.zero_point.copy())
    out = n.outputs[0]
    lo, hi = ranges16.get(out, (None, None))
    if lo is None:
        return _range16(out, qg, ranges16)
    a, b = ACT_RANGE[getattr(n.attrs, "act", None) or "NONE"]
    return sym16(max(lo, a), min(hi, b))


def _cast(g: Graph, qg: Graph, ranges16: dict[str, Range], name: str, dtype: str,
          cache: dict[tuple[str, str], str], nodes: list[Node]) -> str:
    """The tensor `name` requantized to `dtype` by a QUANTIZE node (one per tensor and type)."""
    key = (name, dtype)
    if key not in cache:
        new = g.unique_name(f"{name}/as_{dtype}")
        q = _range16(name, qg, ranges16) if dtype == "int16" else qg.tensors[name].quant
        g.add_tensor(Tensor(new, g.tensors[name].shape, dtype, q))
        nodes.append(Node(Op.QUANTIZE, (name,), (new,), OPS[Op.QUANTIZE].attrs(),
                          f"{name}/as_{dtype}"))
        cache[key] = new
    return cache[key]


def _bias64(g: Graph, qg: Graph, n: Node) -> Node:
    """The layer's int32 bias as int64 at the int16 input scale (same real values)."""
    bt, wt = qg.tensors[n.inputs[2]], qg.tensors[n.inputs[1]]
    real = bt.data.astype(np.float64) * bt.quant.scale.astype(np.float64)
    in_s = np.float32(g.tensors[n.inputs[0]].quant.scale[0])
    scales = (in_s * wt.quant.scale).astype(np.float32)
    full = np.broadcast_to(scales, real.shape).astype(np.float64)
    data = np.round(real / full).astype(np.int64)
    name = g.unique_name(f"{n.inputs[2]}/int64")
    g.add_tensor(Tensor(name, bt.shape, "int64",
                        QuantParams(scales, np.zeros(scales.size, np.int64), 0), data))
    return n.with_(inputs=(n.inputs[0], n.inputs[1], name))


def _int8_outputs(g: Graph, qg: Graph) -> None:
    """An int16 graph output is renamed `NAME/int16` and a QUANTIZE writes NAME as int8 with
    the int8 graph's quantization, so the outputs keep their names, types and scales."""
    for name in list(g.outputs):
        if g.tensors[name].dtype != "int16":
            continue
        inner = g.unique_name(f"{name}/int16")
        g.rename(name, inner)
        g.outputs = [name if o == inner else o for o in g.outputs]
        t = qg.tensors[name]
        g.add_tensor(Tensor(name, t.shape, t.dtype, t.quant))
        g.nodes.append(Node(Op.QUANTIZE, (inner,), (name,), OPS[Op.QUANTIZE].attrs(),
                            f"{name}/as_int8"))


def output_tail(qg: Graph, max_bytes: int) -> list[str]:
    """The widenable layers that write the graph outputs, and back from them every widenable
    producer whose int8 output is at most `max_bytes` (a classifier's pool, FC, softmax):
    an int8 tensor on that path is the output's grid, which caps its SQNR whatever the layers
    before it do, while the per-layer damage ranks such layers last (a softmax compresses
    its input's error). Outputs first, then backwards."""
    producers = qg.producers()
    tail: list[str] = []
    todo = [o for o in qg.outputs]
    while todo:
        name = todo.pop(0)
        n = producers.get(name)
        if n is None or n.op not in WIDENABLE or name in tail:
            continue
        if name not in qg.outputs and qg.tensors[name].nbytes > max_bytes:
            continue
        tail.append(name)
        todo += [i for k, i in enumerate(n.inputs)
                 if i and not qg.tensors[i].is_const and k not in OPS[n.op].weights]
    return tail


def rank_layers(qg: Graph, sqnr8: list[dict], tail_bytes: int = 0) -> list[str]:
    """Widenable layers of int8 graph `qg`, the most damaging first: a layer's damage is the
    output SQNR (dB, from the int8 SQNR report rows) it loses against its input's; a layer
    whose input has no row (a graph input) is measured against the best row. `tail_bytes`:
    the output_tail(qg, tail_bytes) layers come first."""
    by_tensor = {r["tensor"]: r["sqnr_db"] for r in sqnr8 if r.get("sqnr_db") is not None}
    top = max(by_tensor.values(), default=0.0)
    damage = {}
    for n in qg.nodes:
        out = n.outputs[0]
        if n.op not in WIDENABLE or out not in by_tensor:
            continue
        before = by_tensor.get(n.inputs[0], top)
        damage[out] = min(before, top) - by_tensor[out]
    tail = output_tail(qg, tail_bytes) if tail_bytes else []
    return tail + [t for t in sorted(damage, key=lambda t: -damage[t]) if t not in tail]


def choose_layers(ranked: list[str], fits: Callable[[set[str]], bool]) -> set[str]:
    """Greedy: take the ranked layers in order, each kept only if `fits` (e.g. the planned
    arena within the RAM budget) still holds with it."""
    chosen: set[str] = set()
    for t in ranked:
        if fits(chosen | {t}):
            chosen.add(t)
    return chosen


def correct_bias16(fg: Graph, g: Graph, arrays: list[np.ndarray], numerics: str = "tflm",
                   max_samples: int = 64) -> list[str]:
    """Re-do bias correction for the 16x8 layers of `g` (in place): the int8 graph's
    correction offset the mean error int8 inputs caused, which int16 inputs no longer cause.
    Node by node over `max_samples` calibration samples, each 16x8 weighted layer's int64
    bias is shifted by the mean pre-activation error of the layer on its actual (int16)
    input against the float layer on the float input, before the layer runs (so later layers
    see corrected inputs). Returns the corrected layers' output names."""
    from dataclasses import replace

    from edgeforge.ir import Act
    from edgeforge.quantize.bias_correction import deq
    from edgeforge.quantize.calibrate import iterate_float, rebatch
    from edgeforge.runtime import reference
    n = min(arrays[0].shape[0], max_samples)
    arrays = [a[:n] for a in arrays]
    gb = rebatch(g, n)
    if gb is None:
        return []
    f = next(iter(iterate_float(fg, arrays, batch_size=n, verbose=0)))
    fnodes = {nd.outputs[0]: nd for nd in fg.nodes}
    env = dict(zip(gb.inputs, quantize_inputs16(gb, arrays)))
    done = []
    for nd in gb.nodes:
        out = nd.outputs[0]
        fn = fnodes.get(out)
        if (fn is not None and nd.op in WEIGHTED and len(nd.inputs) > 2 and nd.inputs[2]
                and gb.tensors[out].dtype == "int16" and fn.inputs[0] in f):
            kernel = reference.REFERENCE[nd.op]
            no_act = replace(nd.attrs, act=Act.NONE)
            b_f = fg.tensors[fn.inputs[2]].data if len(fn.inputs) > 2 and fn.inputs[2] else None
            y_f = kernel(f[fn.inputs[0]], fg.tensors[fn.inputs[1]].data, b_f, no_act)
            bt = gb.tensors[nd.inputs[2]]
            w_q = deq(gb, nd.inputs[1], gb.tensors[nd.inputs[1]].data)
            y_q = kernel(deq(gb, nd.inputs[0], env[nd.inputs[0]]), w_q,
                         deq(gb, nd.inputs[2], bt.data), no_act)
            e = (y_q.astype(np.float64) - y_f).reshape(-1, y_f.shape[-1]).mean(axis=0)
            bt.data = bt.data - np.round(e / bt.quant.scale.astype(np.float64)).astype(np.int64)
            g.tensors[nd.inputs[2]].data = bt.data
            done.append(out)
        sub = Graph(tensors=gb.tensors, nodes=[nd], outputs=list(nd.outputs),
                    inputs=[i for i in dict.fromkeys(nd.inputs) if i in env])
        env.update(reference.run(sub, {i: env[i] for i in sub.inputs}, numerics=numerics))
    return done


def quantize_inputs16(g: Graph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Float feeds -> g's input types (int8 or int16) with its input quantization."""
    from edgeforge.qmath import quantize
    out = []
    for name, x in zip(g.inputs, arrays):
        t = g.tensors[name]
        out.append(quantize(x, float(t.quant.scale[0]), int(t.quant.zero_point[0]), t.dtype))
    return out
