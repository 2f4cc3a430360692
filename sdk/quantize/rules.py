"""Per-op int8 quantization rules, one function per op, following TFLite's int8 spec.

A rule gets the float node and the context (float graph, int8 graph being built, calibrated
ranges) and adds the node's int8 output tensor(s) and quantized constants to the int8 graph.
It returns the node(s) for the int8 graph (usually the same node).

TFLite's int8 spec (tensorflow.org/lite/performance/quantization_spec), as applied here:
  * activations: int8 asymmetric per-tensor, range containing 0;
  * CONV_2D / FULLY_CONNECTED weights: int8 symmetric per channel on axis 0 (values in
    [-127, 127]); DEPTHWISE_CONV_2D: per channel on axis 3; bias int32 with
    scale = input_scale * weight_scale, zero point 0;
  * AVERAGE_POOL_2D, MAX_POOL_2D, RESHAPE, PAD, TRANSPOSE, CONCATENATION: output (and for
    CONCATENATION every input) shares the input's scale and zero point; RELU6 too, because
    TFLM's int8 RELU6 clamps the input bytes without requantizing (LiteRT requantizes, so
    equal scales suit both);
  * LOGISTIC, SOFTMAX, TANH: fixed output quantization (`OPS[op].fixed_out_q`);
  * a fused activation narrows the output range (RELU -> [0, ...], RELU6 -> [0, 6]).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgeforge.errors import QuantizeError
from edgeforge.ir import ACT_RANGE, OPS, Graph, Node, Op, QuantParams, Tensor

Range = tuple[float, float]
INT32_MAX = (1 << 31) - 1


@dataclass
class QCtx:
    fg: Graph                              # float graph (after passes / equalization)
    qg: Graph                              # int8 graph being built
    ranges: dict[str, Range]               # calibrated float range per activation
    per_channel: bool = True
    notes: list[str] = field(default_factory=list)

    def quant(self, name: str) -> QuantParams:
        return self.qg.tensors[name].quant

    def out(self, name: str, q: QuantParams) -> None:
        t = self.fg.tensors[name]
        self.qg.add_tensor(Tensor(name, tuple(t.shape), "int8", q))


# ---------------------------------------------------------------- parameter math
def act_quant(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 (scale, zero point) for [lo, hi], nudged to contain 0 exactly
    (as TFLite's converter: zero_point = round(qmin - lo / scale))."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-9:                      # constant-zero tensor: any positive scale
        hi = lo + 1e-3
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128.0 - lo / float(scale)), -128, 127))
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def weight_scales(w: np.ndarray, axis: int, per_channel: bool) -> np.ndarray:
    """Symmetric scales max|w| / 127 per channel of `axis` (or one per tensor); a channel
    of zeros gets 1/127 so its multiplier stays finite."""
    if per_channel:
        other = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.abs(w).max(axis=other) if other else np.abs(w)
    else:
        amax = np.array([np.abs(w).max()])
    return np.where(amax > 0, amax / 127.0, 1.0 / 127.0).astype(np.float32)


def quantize_weight(w: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * w.ndim
    if scales.size > 1:
        shape[axis] = scales.size
    q = np.round(w.astype(np.float64) / scales.astype(np.float64).reshape(shape))
    return np.clip(q, -127, 127).astype(np.int8)


def fit_bias_scales(b: np.ndarray, in_scale: float, w_scales: np.ndarray) -> np.ndarray:
    """Raise a weight scale where the bias would not fit int32 at in_scale * w_scale
    (TFLite's converter does the same); returns the adjusted weight scales."""
    need = np.abs(b.astype(np.float64)) / (float(in_scale) * (INT32_MAX - 1))
    if w_scales.size == 1:
        need = np.array([need.max(initial=0.0)])
    return np.maximum(w_scales, need).astype(np.float32)


def quantize_bias(b: np.ndarray, in_scale: float, w_scales: np.ndarray) -> np.ndarray:
    s = np.float64(in_scale) * w_scales.astype(np.float64)
    q = np.round(b.astype(np.float64) / s)
    return np.clip(q, -INT32_MAX, INT32_MAX).astype(np.int32)


def const_quant(data: np.ndarray) -> tuple[np.ndarray, QuantParams]:
    """A constant operand of an activation op (ADD with a constant, ...): per-tensor asym."""
    q = act_quant(float(data.min(initial=0.0)), float(data.max(initial=0.0)))
    v = np.round(data.astype(np.float64) / float(q.scale[0])) + int(q.zero_point[0])
    return np.clip(v, -128, 127).astype(np.int8), q


def narrowed(ctx: QCtx, node: Node, name: str) -> Range:
    """The calibrated range of `name`, narrowed by the node's fused activation."""
    if name not in ctx.ranges:
        raise QuantizeError(f"node '{node.name or name}' ({node.op}): no calibrated range for "
                            f"tensor {name!r}")
    lo, hi = ctx.ranges[name]
    act = getattr(node.attrs, "act", None)
    if act is not None:
        a, b = ACT_RANGE[act]
        lo, hi = max(lo, a), min(hi, b)
        hi = max(hi, lo)
    return lo, hi


# ---------------------------------------------------------------- rules
def quantize_weighted(ctx: QCtx, node: Node) -> list[Node]:
    """CONV2D / DWCONV2D / FC: int8 weights (per channel), int32 bias, output from range."""
    axis = OPS[node.op].out_axis or 0     # TRANSPOSE_CONV: OHWI like CONV2D (not WEIGHTED)
    x, wname = node.inputs[0], node.inputs[1]
    bname = node.inputs[2] if len(node.inputs) > 2 else ""
    w = ctx.fg.tensors[wname].data.astype(np.float32)
    c_out = w.shape[axis]
    b = (ctx.fg.tensors[bname].data.astype(np.float32) if bname
         else np.zeros(c_out, np.float32))
    in_scale = float(ctx.quant(x).scale[0])
    scales = fit_bias_scales(b, in_scale, weight_scales(w, axis, ctx.per_channel))
    qw = quantize_weight(w, scales, axis)
    wq = QuantParams(scales, np.zeros(scales.size, np.int64), axis if scales.size > 1 else 0)
    bscale = (np.float32(in_scale) * scales).astype(np.float32)
    qb = quantize_bias(b, in_scale, scales if scales.size > 1 else np.full(c_out, scales[0]))
    bq = QuantParams(bscale, np.zeros(bscale.size, np.int64), 0)
    new_w = _add_const(ctx, wname, qw, wq)
    new_b = _add_const(ctx, bname or f"{node.outputs[0]}/bias", qb, bq)
    ctx.out(node.outputs[0], act_quant(*narrowed(ctx, node, node.outputs[0])))
    return [node.with_(inputs=(x, new_w, new_b))]


def with_lstm_cells(g: Graph) -> None:
    """Give every LSTM node a second output, its cell state at every step, so calibration
    observes the range quantize_lstm needs (in place; the int8 node has one output again)."""
    for k, n in enumerate(g.nodes):
        if n.op == Op.LSTM and len(n.outputs) == 1:
            y = g.tensors[n.outputs[0]]
            name = g.unique_name(f"{y.name}/cell_state")
            g.add_tensor(Tensor(name, tuple(y.shape), "float32"))
            g.nodes[k] = n.with_(outputs=(y.name, name))


def quantize_lstm(ctx: QCtx, node: Node) -> list[Node]:
    """UNIDIRECTIONAL_SEQUENCE_LSTM as the TFLite converter quantizes it ("8x8_16"): weights
    int8 symmetric per tensor, gate biases int32 at input_scale * weight_scale, the hidden
    state int8 with the output's quantization, the cell state int16 with a power-of-two scale
    covering its calibrated range (both runtimes need 2^n), the output from its range."""
    from edgeforge.ir import LSTM_B, LSTM_C, LSTM_H, LSTM_R, LSTM_W
    ins = list(node.inputs)
    x, y = ins[0], node.outputs[0]
    in_s = float(ctx.quant(x).scale[0])
    yq = act_quant(*narrowed(ctx, node, y))
    h_s = float(yq.scale[0])
    zero = np.zeros(1, np.int64)
    for ws, bks, src in ((LSTM_W, LSTM_B, in_s), (LSTM_R, (None,) * 4, h_s)):
        for k, bk in zip(ws, bks):
            w = ctx.fg.tensors[ins[k]].data.astype(np.float32)
            b = ctx.fg.tensors[ins[bk]].data.astype(np.float32) if bk is not None else None
            s = weight_scales(w, 0, False)
            if b is not None:
                s = fit_bias_scales(b, src, s)
            ins[k] = _add_const(ctx, ins[k], quantize_weight(w, s, 0), QuantParams(s, zero))
            if b is not None:
                bs = np.array([np.float32(src) * s[0]], np.float32)
                ins[bk] = _add_const(ctx, ins[bk], quantize_bias(b, src, np.full(b.size, s[0])),
                                     QuantParams(bs, zero))
    h0 = ctx.fg.tensors[ins[LSTM_H]].data.astype(np.float64)
    hq = np.clip(np.round(h0 / h_s) + int(yq.zero_point[0]), -128, 127).astype(np.int8)
    ins[LSTM_H] = _add_const(ctx, ins[LSTM_H], hq, yq)
    cell = node.outputs[1] if len(node.outputs) > 1 else ""
    lo, hi = ctx.ranges.get(cell, (-1.0, 1.0))
    amax = max(abs(lo), abs(hi), float(node.attrs.cell_clip) if cell not in ctx.ranges else 0.0)
    # 2^-15 .. 2^-9 (|c| < 1 .. 64): LiteRT's cell tanh takes Q0 .. Q6 int16 (finer scales,
    # which the converter writes for small cells, make LiteRT skip the tanh)
    power = min(max(math.ceil(math.log2(amax)) if amax > 0 else 0, 0), 6) - 15
    c_s = np.float32(2.0 ** power)
    c0 = ctx.fg.tensors[ins[LSTM_C]].data.astype(np.float64)
    cq = np.clip(np.round(c0 / c_s), -32768, 32767).astype(np.int16)
    ins[LSTM_C] = _add_const(ctx, ins[LSTM_C], cq, QuantParams(np.array([c_s]), zero))
    ctx.out(y, yq)
    return [node.with_(inputs=tuple(ins), outputs=(y,))]


def quantize_from_range(ctx: QCtx, node: Node) -> list[Node]:
    """Output quantization from its own calibrated range (ADD, MUL, RELU, MEAN, ...)."""
    node = _const_operands(ctx, node)
    ctx.out(node.outputs[0], act_quant(*narrowed(ctx, node, node.outputs[0])))
    return [node]


def quantize_same_as_input(ctx: QCtx, node: Node) -> list[Node]:
    """Output shares the input's scale and zero point (pools, RESHAPE, PAD, TRANSPOSE,
    RELU6)."""
    if node.op == Op.PAD and node.attrs.value != 0.0:
        raise QuantizeError(f"node '{node.name or node.outputs[0]}' (PAD): int8 PAD pads with "
                            f"the zero point; pad value {node.attrs.value} is not supported")
    q = ctx.quant(node.inputs[0])
    ctx.out(node.outputs[0], QuantParams(q.scale.copy(), q.zero_point.copy()))
    return [node.with_(inputs=(node.inputs[0],) + _keep_consts(ctx, node.inputs[1:]))]


def quantize_concat(ctx: QCtx, node: Node) -> list[Node]:
    """CONCATENATION: output and every input share one quantization. Ranges were unified
    before (unify_ranges), so a mismatch only remains for a tensor that was already fixed
    differently: that input gets a requantizing QUANTIZE node."""
    q = act_quant(*narrowed(ctx, node, node.outputs[0]))
    ctx.out(node.outputs[0], q)
    pre, ins = [], []
    for i in node.inputs:
        if ctx.quant(i) == q:
            ins.append(i)
            continue
        name = ctx.qg.unique_name(f"{i}/requant")
        ctx.qg.add_tensor(Tensor(name, tuple(ctx.fg.tensors[i].shape), "int8",
                                 QuantParams(q.scale.copy(), q.zero_point.copy())))
        pre.append(Node(Op.QUANTIZE, (i,), (name,), OPS[Op.QUANTIZE].attrs(),
                        f"{node.name or node.outputs[0]}/requant"))
        ins.append(name)
    return pre + [node.with_(inputs=tuple(ins))]


def quantize_fixed(ctx: QCtx, node: Node) -> list[Node]:
    """LOGISTIC / TANH / SOFTMAX: TFLite's fixed output quantization."""
    scale, zp = OPS[node.op].fixed_out_q
    ctx.out(node.outputs[0], QuantParams(np.array([scale], np.float32), np.array([zp])))
    return [node]


def quantize_shared_operands(ctx: QCtx, node: Node) -> list[Node]:
    """MAXIMUM / MINIMUM: int8 kernels compare raw bytes, so both operands and the output
    share one quantization (the output's range): a constant operand is quantized with it,
    an activation quantized differently gets a requantizing QUANTIZE (as for CONCAT)."""
    q = act_quant(*narrowed(ctx, node, node.outputs[0]))
    ctx.out(node.outputs[0], q)
    pre, ins = [], []
    s, z = float(q.scale[0]), int(q.zero_point[0])
    for i in node.inputs:
        t = ctx.fg.tensors[i]
        if t.is_const:
            data = np.clip(np.round(t.data.astype(np.float64) / s) + z, -128, 127)
            ins.append(_add_const(ctx, f"{i}/q", data.astype(np.int8), QuantParams(
                q.scale.copy(), q.zero_point.copy())))
            continue
        if ctx.quant(i) == q:
            ins.append(i)
            continue
        name = ctx.qg.unique_name(f"{i}/requant")
        ctx.qg.add_tensor(Tensor(name, tuple(t.shape), "int8",
                                 QuantParams(q.scale.copy(), q.zero_point.copy())))
        pre.append(Node(Op.QUANTIZE, (i,), (name,), OPS[Op.QUANTIZE].attrs(),
                        f"{node.name or node.outputs[0]}/requant"))
        ins.append(name)
    return pre + [node.with_(inputs=tuple(ins))]


RuleFn = Callable[[QCtx, Node], list[Node]]
RULES: dict[Op, RuleFn] = {
    Op.CONV2D: quantize_weighted,
    Op.DWCONV2D: quantize_weighted,
    Op.FC: quantize_weighted,
    Op.AVGPOOL2D: quantize_same_as_input,
    Op.MAXPOOL2D: quantize_same_as_input,
    Op.MEAN: quantize_from_range,
    Op.ADD: quantize_from_range,
    Op.SUB: quantize_from_range,
    Op.MUL: quantize_from_range,
    Op.RELU: quantize_from_range,
    Op.RELU6: quantize_same_as_input,   # TFLM clamps the input bytes, no requantization
    Op.LEAKY_RELU: quantize_from_range,
    Op.HARD_SWISH: quantize_from_range,
    Op.LOGISTIC: quantize_fixed,
    Op.TANH: quantize_fixed,
    Op.SOFTMAX: quantize_fixed,
    Op.RESHAPE: quantize_same_as_input,
    Op.TRANSPOSE: quantize_same_as_input,
    Op.PAD: quantize_same_as_input,
    Op.CONCAT: quantize_concat,
    Op.STRIDED_SLICE: quantize_same_as_input,   # int8 kernels move bytes: quant must match
    Op.RESIZE_NEAREST: quantize_same_as_input,
    Op.MAXIMUM: quantize_shared_operands,
    Op.MINIMUM: quantize_shared_operands,
    Op.RESIZE_BILINEAR: quantize_same_as_input,   # interpolates raw bytes: quant must match
    Op.SQRT: quantize_from_range,
    Op.RSQRT: quantize_from_range,
    Op.EXP: quantize_from_range,
    Op.GELU: quantize_from_range,
    Op.SQUARED_DIFFERENCE: quantize_from_range,
    Op.MATMUL: quantize_from_range,     # two activations (a constant one became FC)
    Op.SUM: quantize_from_range,
    Op.REDUCE_MAX: quantize_same_as_input,   # int8 MAX/MIN move bytes: quant must match
    Op.REDUCE_MIN: quantize_same_as_input,
    Op.GATHER: quantize_same_as_input,       # rows copied; indices stay int32
    Op.PRELU: quantize_from_range,           # alpha: a per-tensor asymmetric int8 constant
    Op.TRANSPOSE_CONV: quantize_weighted,
    Op.LSTM: quantize_lstm,
}

# ops whose int8 output must carry the input's quantization (range unification follows it)
SHARES_INPUT_Q = frozenset(op for op, fn in RULES.items() if fn is quantize_same_as_input)


def unify_ranges(g: Graph, ranges: dict[str, Range]) -> dict[str, Range]:
    """CONCAT inputs and output share one quantization: give them all the union range,
    and the tensors an input copies its quantization from (through pools, RESHAPE, ...)."""
    ranges = dict(ranges)
    prod = g.producers()

    def sources(t: str) -> list[str]:
        out = [t]
        while t in prod and prod[t].op in SHARES_INPUT_Q:
            t = prod[t].inputs[0]
            out.append(t)
        return out

    for _ in range(4):                       # tensors shared by two concats: iterate
        changed = False
        for n in g.nodes:
            if n.op != Op.CONCAT:
                continue
            names = [s for i in n.inputs for s in sources(i) if s in ranges] + [n.outputs[0]]
            lo = min(ranges[t][0] for t in names)
            hi = max(ranges[t][1] for t in names)
            for t in names:
                if ranges[t] != (lo, hi):
                    ranges[t], changed = (lo, hi), True
        if not changed:
            break
    return ranges


# ---------------------------------------------------------------- helpers
def _add_const(ctx: QCtx, name: str, data: np.ndarray, q: QuantParams) -> str:
    """Add a quantized constant; a name already taken (a weight shared by two nodes with
    different quantization) gets a fresh one."""
    if name in ctx.qg.tensors:
        t = ctx.qg.tensors[name]
        if t.quant == q and np.array_equal(t.data, data):
            return name
        name = ctx.qg.unique_name(name)
    ctx.qg.add_tensor(Tensor(name, tuple(data.shape), data.dtype.name, q, data))
    return name


def _const_operands(ctx: QCtx, node: Node) -> Node:
    """Constant float operands of an activation op become per-tensor int8 constants."""
    ins = []
    for i in node.inputs:
        t = ctx.fg.tensors.get(i) if i else None
        if t is not None and t.is_const and t.data.dtype.kind == "f":
            data, q = const_quant(t.data)
            ins.append(_add_const(ctx, i, data, q))
        else:
            ins.append(i)
    return node.with_(inputs=tuple(ins))


def _keep_consts(ctx: QCtx, names: tuple[str, ...]) -> tuple[str, ...]:
    """Non-float constants (shape / perm tensors) are copied unchanged."""
    for i in names:
        if i and i not in ctx.qg.tensors:
            t = ctx.fg.tensors[i]
            ctx.qg.add_tensor(Tensor(t.name, t.shape, t.dtype, t.quant, t.data))
    return names
