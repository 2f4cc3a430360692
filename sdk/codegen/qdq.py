"""model_qdq.onnx: the int8 graph as a float ONNX graph with explicit Q/DQ (QDQ format).

Every int8 activation is `QuantizeLinear -> DequantizeLinear` with our calibrated scale and
zero point; weights are int8 initializers behind a per-channel `DequantizeLinear` (axis 0, the
output channel, as TensorRT requires), biases int32 behind one with scale s_in * s_w. This is
the explicit-quantization form TensorRT, onnxruntime and OpenVINO build int8 engines from, so
they use our scales instead of calibrating again.

Rounding: a float-scale runtime rounds `x = acc * scale` once, half to even. Our kernels round
the Q31 product: single rounding is floor(x + 1/2) (ties up); TFLM's double rounding (rounding
high multiply, then rounding right shift by e >= 1) is exactly floor(x + sign(x) 2^-(e+1) + 1/2),
so a tflm/litert graph differs on up to a quarter of the elements of a layer with e = 1. The
export therefore adds, before each requantizing op's activation and QuantizeLinear, the shift
that makes QuantizeLinear's rounding ours: sign(y) * 2^-(e+1) output steps where the op double
rounds (a constant before a ReLU), and a fraction of one product step where ties can occur
(power-of-two multipliers).
Under --numerics single only the latter remains, rarely: the graph stays Conv/MatMul/Q groups
that runtimes fuse into QLinear kernels.

Layout: the IR is NHWC, ONNX convolutions are NCHW. Every 4-D activation is kept NCHW inside
the ONNX graph; graph inputs and outputs keep the manifest's shapes (NHWC), with a Transpose
at each end, so the same arrays feed both. Graph I/O is float32: a user feeds
(q - zero_point) * scale, and reads the output the same way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeforge import qparams as qp
from edgeforge.errors import EdgeforgeError
from edgeforge.ir import Act, Graph, Node, Op
from edgeforge.qmath import Numerics, Rounding, requantize

OPSET = 13                       # per-channel DequantizeLinear (axis) needs 13
TO_ONNX = (0, 3, 1, 2)           # NHWC -> NCHW
TO_IR = (0, 2, 3, 1)             # NCHW -> NHWC


class QdqExportError(EdgeforgeError):
    """A graph part with no QDQ ONNX form (compile then leaves model_qdq.onnx out)."""


class _Builder:
    def __init__(self, g: Graph, numerics: Numerics | None = None):
        self.g = g
        self.numerics = numerics
        self.fix = _rounding_fixes(g, numerics) if numerics is not None else {}
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: set[str] = set()
        self.value: dict[str, str] = {}      # IR tensor -> ONNX float tensor (ONNX layout)
        self.layer_out: dict[str, str] = {}  # layerwise: IR tensor -> what its node computed

    # -- helpers -----------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.names or name in self.g.tensors:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def init(self, base: str, data: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(data), name))
        return name

    def rank(self, name: str) -> int:
        return len(self.g.tensors[name].shape)

    def qdq(self, x: str, ir_name: str) -> str:
        """Q -> DQ with the tensor's int8 parameters (a float tensor passes through)."""
        t = self.g.tensors[ir_name]
        if t.quant is None or t.dtype != "int8":
            return x
        s = self.init(f"{ir_name}__scale", np.float32(t.quant.scale[0]))
        z = self.init(f"{ir_name}__zp", np.int8(t.quant.zero_point[0]))
        q = self.node("QuantizeLinear", [x, s, z], f"{ir_name}__q")
        return self.node("DequantizeLinear", [q, s, z], f"{ir_name}__dq")

    def weight(self, name: str, perm: tuple[int, ...] | None = None) -> str:
        """An int8 constant behind DequantizeLinear (per channel on axis 0 after `perm`)."""
        t = self.g.tensors[name]
        data = t.data if perm is None else np.transpose(t.data, perm)
        if t.quant is None or t.dtype != "int8":
            return self.init(name, data.astype(np.float32))
        axis = t.quant.axis if perm is None else list(perm).index(t.quant.axis)
        q = self.init(f"{name}__int8", data.astype(np.int8))
        if t.quant.per_channel:
            s = self.init(f"{name}__scale", t.quant.scale.astype(np.float32))
            z = self.init(f"{name}__zp", np.zeros(t.quant.scale.size, np.int8))
            return self.node("DequantizeLinear", [q, s, z], f"{name}__dq", axis=axis)
        s = self.init(f"{name}__scale", np.float32(t.quant.scale[0]))
        z = self.init(f"{name}__zp", np.int8(0))
        return self.node("DequantizeLinear", [q, s, z], f"{name}__dq")

    def bias(self, node: Node, n_out: int) -> str:
        """The int32 bias dequantized with s_in * s_w, exactly the accumulator's unit."""
        if len(node.inputs) < 3 or not node.inputs[2]:
            return self.init(f"{node.outputs[0]}__nobias", np.zeros(n_out, np.float32))
        b = self.g.tensors[node.inputs[2]]
        if b.dtype != "int32":
            return self.init(node.inputs[2], b.data.astype(np.float32))
        s_in = self.g.tensors[node.inputs[0]].quant.scale[0]
        s_w = self.g.tensors[node.inputs[1]].quant.scale
        scale = (np.float32(s_in) * s_w.astype(np.float32)).astype(np.float32)
        q = self.init(f"{node.inputs[2]}__int32", b.data.astype(np.int32))
        if scale.size > 1:
            s = self.init(f"{node.inputs[2]}__scale", scale)
            z = self.init(f"{node.inputs[2]}__zp", np.zeros(scale.size, np.int32))
            return self.node("DequantizeLinear", [q, s, z], f"{node.inputs[2]}__dq", axis=0)
        s = self.init(f"{node.inputs[2]}__scale", np.float32(scale[0]))
        z = self.init(f"{node.inputs[2]}__zp", np.int32(0))
        return self.node("DequantizeLinear", [q, s, z], f"{node.inputs[2]}__dq")

    def operand(self, name: str, like_rank: int) -> str:
        """An input of an elementwise op: an activation as it is, a constant brought to the
        other operand's ONNX layout (rank-padded, then NCHW if 4-D)."""
        t = self.g.tensors[name]
        if name in self.value:
            if like_rank == 4 and self.rank(name) < 4 and self.rank(name) > 0:
                raise QdqExportError(f"{name}: broadcasting a rank-{self.rank(name)} "
                                         "activation against a 4-D one")
            return self.value[name]
        data = t.data.reshape((1,) * (like_rank - t.data.ndim) + t.data.shape) \
            if t.data.ndim < like_rank else t.data
        perm = TO_ONNX if data.ndim == 4 else None
        if t.dtype == "int8" and t.quant is not None:
            src = np.transpose(data, perm) if perm else data
            q = self.init(f"{name}__int8", src.astype(np.int8))
            s = self.init(f"{name}__scale", np.float32(t.quant.scale[0]))
            z = self.init(f"{name}__zp", np.int8(t.quant.zero_point[0]))
            return self.node("DequantizeLinear", [q, s, z], f"{name}__dq")
        src = np.transpose(data, perm) if perm else data
        return self.init(name, src.astype(np.float32))

    def to_ir(self, name: str) -> str:
        """The activation in IR layout (NHWC for 4-D)."""
        x = self.value[name]
        return self.node("Transpose", [x], f"{name}__nhwc", perm=list(TO_IR)) \
            if self.rank(name) == 4 else x

    def from_ir(self, x: str, name: str) -> str:
        return self.node("Transpose", [x], f"{name}__nchw", perm=list(TO_ONNX)) \
            if self.rank(name) == 4 else x

    def rounded(self, x: str, out: str, rank: int | None = None, clamps_negative: bool = False
                ) -> str:
        """x plus out's rounding fix (see the module docstring), once per output. Before a
        ReLU the sign is known to be +, so the shift is a constant Add (which TensorRT folds
        into the convolution's bias, keeping Conv -> ReLU -> Q one int8 kernel)."""
        fix = self.fix.pop(out, None)
        if fix is None:
            return x
        away, up = fix
        rank = self.rank(out) if rank is None else rank
        ch = (-1, 1, 1) if rank == 4 else (-1,)             # NCHW channel or last axis
        if np.any(away):
            step = self.init(f"{out}__away", away.reshape(ch if away.size > 1 else ()))
            if not clamps_negative:
                sign = self.node("Sign", [x], f"{out}__sign")
                step = self.node("Mul", [sign, step], f"{out}__away_step")
            x = self.node("Add", [x, step], f"{out}__away_x")
        if np.any(up):
            x = self.node("Add", [x, self.init(f"{out}__up", up.reshape(
                ch if up.size > 1 else ()))], f"{out}__tie_up")
        return x

    def act(self, x: str, act: Act, base: str) -> str:
        x = self.rounded(x, base, clamps_negative=act in (Act.RELU, Act.RELU6))
        if act == Act.RELU:
            return self.node("Relu", [x], f"{base}__relu")
        if act in (Act.RELU6, Act.RELU_N1_TO_1):
            lo, hi = (0.0, 6.0) if act == Act.RELU6 else (-1.0, 1.0)
            return self.node("Clip", [x, self.init(f"{base}__lo", np.float32(lo)),
                                      self.init(f"{base}__hi", np.float32(hi))], f"{base}__clip")
        return x

    def axis(self, axis: int, rank: int) -> int:
        return TO_ONNX.index(axis) if rank == 4 else axis


# (mult, shift) field names of the requantization that produces an op's output
_REQUANT = {qp.ConvQuant: ("mult", "shift"), qp.MulQuant: ("out_mult", "out_shift"),
            qp.AddQuant: ("out_mult", "out_shift"), qp.MeanQuant: ("mult", "shift"),
            qp.RequantQuant: ("mult", "shift")}
TIE_STEP_MIN = 2.0 ** -20    # a finer product grid makes ties rarer than 1 in 2^20: no fix
TIE_MARGIN = 2.0 ** -12      # steps; float32 ORT/TensorRT math on |x| <= 256 errs far less


def _rounding_fix(mult: np.ndarray, shift: np.ndarray, rounding: Rounding
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(away, up) in output steps per channel: QuantizeLinear(x + sign(x) away + up) rounds
    as the kernel's Q31 requantization of the integer accumulator does."""
    mult, shift = np.asarray(mult, np.int64), np.asarray(shift, np.int64)
    tz = np.array([(int(m) & -int(m)).bit_length() - 1 if m else 0 for m in mult.ravel()])
    right = np.maximum(-shift, 0)
    if rounding is Rounding.SINGLE:          # floor(acc * M / 2^t + 1/2), t = 31 - shift
        away, grid = np.zeros(mult.shape), tz - (31 - shift)
    else:                                    # SRDHM (+2^30) after the left shift, then RDBP
        away = np.where(right > 0, 2.0 ** -(right + 1.0), 0.0)
        grid = np.minimum(tz + np.maximum(shift, 0), 30) - 31 - right
    # values lie on a grid of 2^grid steps (ties exist below 1): half of one moves exact ties
    # up and nothing else
    up = 2.0 ** (grid - 1.0)
    return away, np.where((grid < 0) & (up >= TIE_STEP_MIN), up, 0.0)


def _fitted_fix(acc: np.ndarray, mult: int, shift: int, rounding: Rounding
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """(away, up) fitted to every accumulator value an elementwise op can see, when the
    analytic fix leaves one within float32 error of a tie (the ViT's attention-scale MUL:
    49.5000028 steps): the middle of the shifts under which QuantizeLinear gives the
    kernel's result for each. None: the analytic fix has margin (or no one shift fits)."""
    acc = np.unique(acc)
    z = (acc * np.int64(mult)).astype(np.float64) * 2.0 ** (int(shift) - 31)
    r = requantize(acc, mult, shift, rounding).astype(np.float64)
    away, up = _rounding_fix(np.atleast_1d(mult), np.atleast_1d(shift), rounding)
    moved = z + np.sign(z) * away[0] + up[0] - r
    if np.abs(moved).max() <= 0.5 - TIE_MARGIN:
        return None
    mid = {}
    for side, sel in ((1, z > 0), (-1, z < 0)):
        if sel.any():
            lo, hi = (r[sel] - 0.5 - z[sel]).max(), (r[sel] + 0.5 - z[sel]).min()
            if lo >= hi:
                return None
            mid[side] = (lo + hi) / 2
    pos, neg = mid.get(1, mid.get(-1, 0.0)), mid.get(-1, mid.get(1, 0.0))
    if abs(pos + neg) / 2 >= 0.5:
        return None
    return np.array([(pos - neg) / 2]), np.array([(pos + neg) / 2])


def _int8_values(g: Graph, name: str, offset: int) -> np.ndarray:
    """Every value (+ offset) an int8 operand can hold: a constant's own, else all 256."""
    data = g.tensors[name].data
    vals = np.unique(data) if data is not None else np.arange(-128, 128)
    return vals.astype(np.int64) + offset


def _elementwise_accs(n: Node, g: Graph, q: object, rounding: Rounding) -> np.ndarray | None:
    """The accumulators an elementwise requantizing op can reach (None: not such an op)."""
    if isinstance(q, qp.RequantQuant):
        return np.arange(-128, 128) + q.in_offset
    if isinstance(q, qp.MulQuant) and n.op == Op.MUL:
        a, c = _int8_values(g, n.inputs[0], q.in1_offset), _int8_values(g, n.inputs[1],
                                                                        q.in2_offset)
        return (a[:, None] * c[None, :]).ravel()
    if isinstance(q, qp.AddQuant) and n.op in (Op.ADD, Op.SUB):
        a, c = (requantize(_int8_values(g, i, off) << q.left_shift, m, sh, rounding)
                for i, off, m, sh in ((n.inputs[0], q.in1_offset, q.in1_mult, q.in1_shift),
                                      (n.inputs[1], q.in2_offset, q.in2_mult, q.in2_shift)))
        return (a[:, None] + (1 if n.op == Op.ADD else -1) * c[None, :]).ravel()
    return None


def _rounding_fixes(g: Graph, numerics: Numerics) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """output tensor -> (away, up) in real units, for every int8 node that requantizes."""
    fixes = {}
    for n in g.nodes:
        out = g.tensors[n.outputs[0]]
        if out.dtype != "int8" or out.quant is None or \
                any(g.tensors[i].dtype not in ("int8", "int32") for i in n.inputs if i):
            continue
        q = qp.prepare(n, g, numerics)
        q = q.requant if isinstance(q, qp.QuantizeQuant) else q
        if type(q) not in _REQUANT:
            continue
        m, sh = (getattr(q, f) for f in _REQUANT[type(q)])
        rnd = qp.rounding(n.op, numerics)
        accs = _elementwise_accs(n, g, q, rnd)
        fitted = None if accs is None else _fitted_fix(accs, int(m), int(sh), rnd)
        away, up = fitted or _rounding_fix(np.atleast_1d(m), np.atleast_1d(sh), rnd)
        if np.any(away) or np.any(up):
            s = float(out.quant.scale[0])
            fixes[n.outputs[0]] = ((away * s).astype(np.float32), (up * s).astype(np.float32))
    return fixes


# ---------------------------------------------------------------- one function per op
def _conv(b: _Builder, n: Node) -> str:
    a = n.attrs
    w = b.g.tensors[n.inputs[1]]
    if n.op == Op.CONV2D:
        wq, group, c_out = b.weight(n.inputs[1], (0, 3, 1, 2)), 1, w.shape[0]
    else:                                   # [1, KH, KW, C*m] -> [C*m, 1, KH, KW]
        wq, c_out = b.weight(n.inputs[1], (3, 0, 1, 2)), w.shape[3]
        group = b.g.tensors[n.inputs[0]].shape[3]
    top, left, bottom, right = a.pad
    y = b.node("Conv", [b.value[n.inputs[0]], wq, b.bias(n, c_out)], f"{n.outputs[0]}__conv",
               strides=list(a.stride), pads=[top, left, bottom, right],
               dilations=list(a.dilation), group=group)
    return b.act(y, a.act, n.outputs[0])


def _fc(b: _Builder, n: Node) -> str:
    w = b.g.tensors[n.inputs[1]]
    x = b.to_ir(n.inputs[0])
    if b.rank(n.inputs[0]) != 2:
        x = b.node("Reshape", [x, b.init(f"{n.outputs[0]}__rows",
                                         np.array([-1, w.shape[1]], np.int64))],
                   f"{n.outputs[0]}__2d")
    y = b.node("Gemm", [x, b.weight(n.inputs[1]), b.bias(n, w.shape[0])],
               f"{n.outputs[0]}__gemm", transB=1)
    out_shape = b.g.tensors[n.outputs[0]].shape
    if len(out_shape) != 2:
        y = b.node("Reshape", [y, b.init(f"{n.outputs[0]}__shape",
                                         np.array(out_shape, np.int64))], f"{n.outputs[0]}__nd")
        y = b.from_ir(y, n.outputs[0])
    return b.act(y, n.attrs.act, n.outputs[0])


def _matmul(b: _Builder, n: Node) -> str:
    """numpy matmul in IR layout (attention: activation x activation, or x constant)."""
    xs = [b.to_ir(i) if i in b.value else b.weight(i) for i in n.inputs]
    return b.from_ir(b.node("MatMul", xs, f"{n.outputs[0]}__matmul"), n.outputs[0])


def _pool(b: _Builder, n: Node) -> str:
    a = n.attrs
    top, left, bottom, right = a.pad
    kw = {"kernel_shape": list(a.kernel), "strides": list(a.stride),
          "pads": [top, left, bottom, right]}
    if n.op == Op.AVGPOOL2D:
        kw["count_include_pad"] = int(a.count_include_pad)
    y = b.node("AveragePool" if n.op == Op.AVGPOOL2D else "MaxPool", [b.value[n.inputs[0]]],
               f"{n.outputs[0]}__pool", **kw)
    if n.op == Op.AVGPOOL2D:
        y = _ties_away(b, y, n.outputs[0], a.kernel[0] * a.kernel[1])
    return b.act(y, a.act, n.outputs[0])


def _ties_away(b: _Builder, y: str, out: str, taps: int) -> str:
    """TFLite's int8 AVERAGE_POOL_2D rounds the mean of the raw int8 values half away from
    zero; QuantizeLinear rounds half to even (and the float mean lands a hair either side of
    the tie). Move y by 1/(4 * taps) LSB away from zero in the raw domain: a mean of at most
    `taps` integers is a tie or at least 1/(2 * taps) LSB from one, so only ties move."""
    q = b.g.tensors[out].quant
    if q is None:
        return y
    s, zp = float(q.scale[0]), int(q.zero_point[0])
    raw = b.node("Add", [y, b.init(f"{out}__zp_f", np.float32(s * zp))], f"{out}__raw")
    sign = b.node("Sign", [raw], f"{out}__sign")
    step = b.node("Mul", [sign, b.init(f"{out}__tie", np.float32(s / (4 * taps)))],
                  f"{out}__tie_step")
    return b.node("Add", [y, step], f"{out}__ties_away")


REDUCE = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax",
          "REDUCE_MIN": "ReduceMin"}


def _reduce(b: _Builder, n: Node) -> str:
    op, r = REDUCE[n.op.value], b.rank(n.inputs[0])
    if r == 4 and not n.attrs.keepdims:      # reduce in IR layout: the result is not 4-D
        x, axes = b.to_ir(n.inputs[0]), list(n.attrs.axes)
    else:
        x, axes = b.value[n.inputs[0]], [b.axis(a, r) for a in n.attrs.axes]
    keep = int(n.attrs.keepdims)
    if op == "ReduceSum":                    # opset 13: ReduceSum alone takes axes as an input
        return b.node(op, [x, b.init(f"{n.outputs[0]}__axes", np.array(axes, np.int64))],
                      f"{n.outputs[0]}__reduce", keepdims=keep)
    return b.node(op, [x], f"{n.outputs[0]}__reduce", axes=axes, keepdims=keep)


def _slice(b: _Builder, n: Node) -> str:
    a, r = n.attrs, b.rank(n.inputs[0])
    axes = [b.axis(d, r) for d in range(r)]
    ints = [b.init(f"{n.outputs[0]}__{k}", np.array(v, np.int64))
            for k, v in (("starts", a.begin), ("ends", a.end), ("axes", axes),
                         ("steps", a.strides))]
    return b.node("Slice", [b.value[n.inputs[0]], *ints], f"{n.outputs[0]}__slice")


def _resize(b: _Builder, n: Node) -> str:
    """TFLite RESIZE_NEAREST_NEIGHBOR's index maps as ONNX Resize coordinate modes."""
    a = n.attrs
    x = b.g.tensors[n.inputs[0]].shape                     # NHWC
    sizes = np.array([x[0], x[3], a.size[0], a.size[1]], np.int64)
    if a.align_corners:
        mode, nearest = "align_corners", "round_prefer_ceil"
    elif a.half_pixel_centers:
        mode, nearest = "tf_half_pixel_for_nn", "floor"
    else:
        mode, nearest = "asymmetric", "floor"
    return b.node("Resize", [b.value[n.inputs[0]], "", "", b.init(f"{n.outputs[0]}__sizes", sizes)],
                  f"{n.outputs[0]}__resize", mode="nearest",
                  coordinate_transformation_mode=mode, nearest_mode=nearest)


BINARY = {"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max",
          "MINIMUM": "Min"}


def _binary(b: _Builder, n: Node) -> str:
    r = b.rank(n.outputs[0])
    xs = [b.operand(i, r) for i in n.inputs]
    if n.op == Op.SQUARED_DIFFERENCE:
        return _squared_difference(b, n, xs)
    op = BINARY[n.op.value]
    y = b.node(op, xs, f"{n.outputs[0]}__{op.lower()}")
    return b.act(y, getattr(n.attrs, "act", Act.NONE), n.outputs[0])


def _squared_difference(b: _Builder, n: Node, xs: list[str]) -> str:
    """TFLite's int8 SQUARED_DIFFERENCE squares the difference of its inputs rescaled to
    2 max(s1, s2) / 2^7 steps and rounded; a float (a - b)^2 misses that rounding by up to a
    few LSB of the square. Spelled out (Round on the rescaled integers) when both inputs are
    int8; float products of integers below 2^24 are exact."""
    ts = [b.g.tensors[i] for i in n.inputs]
    if any(t.quant is None or t.dtype != "int8" for t in ts):
        d = b.node("Sub", xs, f"{n.outputs[0]}__diff")
        return b.node("Mul", [d, d], f"{n.outputs[0]}__sq")
    scales = [float(t.quant.scale[0]) for t in ts]
    step = 2.0 * max(scales) / 128                    # one unit of the rescaled inputs
    scaled = []
    for k, (x, s) in enumerate(zip(xs, scales)):
        r = b.node("Mul", [x, b.init(f"{n.outputs[0]}__in{k}_rescale", np.float32(1 / step))],
                   f"{n.outputs[0]}__in{k}_units")
        if b.numerics is not None:                    # the rescale rounds as requantize does
            q = qp.prepare(n, b.g, b.numerics)
            mult, shift = (q.in1_mult, q.in1_shift) if k == 0 else (q.in2_mult, q.in2_shift)
            b.fix[f"{r}__rescale"] = tuple(v.astype(np.float32) for v in _rounding_fix(
                np.atleast_1d(mult), np.atleast_1d(shift), qp.rounding(n.op, b.numerics)))
            r = b.rounded(r, f"{r}__rescale", rank=0)
        scaled.append(b.node("Round", [r], f"{n.outputs[0]}__in{k}_round"))
    d = b.node("Sub", scaled, f"{n.outputs[0]}__diff")
    sq = b.node("Mul", [d, d], f"{n.outputs[0]}__sq_units")
    return b.node("Mul", [sq, b.init(f"{n.outputs[0]}__sq_step", np.float32(step * step))],
                  f"{n.outputs[0]}__sq")


def _unary(b: _Builder, n: Node) -> str:
    x, o = b.value[n.inputs[0]], n.outputs[0]
    f32 = np.float32
    match n.op:
        case Op.RELU:
            return b.node("Relu", [x], f"{o}__relu")
        case Op.RELU6:
            return b.act(x, Act.RELU6, o)
        case Op.CLIP:
            return b.node("Clip", [x, b.init(f"{o}__lo", f32(max(n.attrs.min, -3.4e38))),
                                   b.init(f"{o}__hi", f32(min(n.attrs.max, 3.4e38)))],
                          f"{o}__clip")
        case Op.LEAKY_RELU:
            return b.node("LeakyRelu", [x], f"{o}__lrelu", alpha=float(n.attrs.alpha))
        case Op.LOGISTIC:
            return b.node("Sigmoid", [x], f"{o}__sigmoid")
        case Op.TANH:
            return b.node("Tanh", [x], f"{o}__tanh")
        case Op.HARD_SIGMOID:
            return b.node("HardSigmoid", [x], f"{o}__hsig", alpha=float(n.attrs.alpha),
                          beta=float(n.attrs.beta))
        case Op.HARD_SWISH:                  # opset 13 has no HardSwish: x * hsig(x)
            h = b.node("HardSigmoid", [x], f"{o}__hsig", alpha=1 / 6, beta=0.5)
            return b.node("Mul", [x, h], f"{o}__hswish")
        case Op.SQRT:
            return b.node("Sqrt", [x], f"{o}__sqrt")
        case Op.RSQRT:
            return b.node("Reciprocal", [b.node("Sqrt", [x], f"{o}__sqrt")], f"{o}__rsqrt")
        case Op.EXP:
            return b.node("Exp", [x], f"{o}__exp")
        case Op.GELU:
            if n.attrs.approximate:          # 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
                x3 = b.node("Mul", [x, b.node("Mul", [x, x], f"{o}__x2")], f"{o}__x3")
                inner = b.node("Add", [x, b.node("Mul", [x3, b.init(f"{o}__c", f32(0.044715))],
                                                 f"{o}__cx3")], f"{o}__in")
                t = b.node("Tanh", [b.node("Mul", [inner, b.init(
                    f"{o}__k", f32(np.sqrt(2 / np.pi)))], f"{o}__kin")], f"{o}__tanh")
            else:                            # 0.5x(1 + erf(x / sqrt(2)))
                t = b.node("Erf", [b.node("Mul", [x, b.init(f"{o}__k", f32(1 / np.sqrt(2)))],
                                          f"{o}__kx")], f"{o}__erf")
            one = b.node("Add", [t, b.init(f"{o}__one", f32(1.0))], f"{o}__1p")
            return b.node("Mul", [b.node("Mul", [x, b.init(f"{o}__half", f32(0.5))],
                                         f"{o}__hx"), one], f"{o}__gelu")
    raise AssertionError(n.op)


def _reshape(b: _Builder, n: Node) -> str:
    x = b.to_ir(n.inputs[0])
    y = b.node("Reshape", [x, b.init(f"{n.outputs[0]}__shape",
                                     np.array(n.attrs.shape, np.int64))], f"{n.outputs[0]}__rs")
    return b.from_ir(y, n.outputs[0])


def _transpose(b: _Builder, n: Node) -> str:
    r_in, r_out = b.rank(n.inputs[0]), b.rank(n.outputs[0])
    perm = list(n.attrs.perm)                # out_ir = in_ir.transpose(perm)
    to_ir = list(TO_IR) if r_in == 4 else list(range(r_in))       # in_ir = in_onnx.T(to_ir)
    full = [to_ir[p] for p in perm]                               # out_ir = in_onnx.T(full)
    if r_out == 4:
        full = [full[p] for p in TO_ONNX]                         # out_onnx = out_ir.T(TO_ONNX)
    return b.node("Transpose", [b.value[n.inputs[0]]], f"{n.outputs[0]}__t", perm=full)


def _concat(b: _Builder, n: Node) -> str:
    r = b.rank(n.outputs[0])
    xs = [b.operand(i, r) for i in n.inputs]
    y = b.node("Concat", xs, f"{n.outputs[0]}__cat", axis=b.axis(n.attrs.axis, r))
    return b.act(y, n.attrs.act, n.outputs[0])


def _pad(b: _Builder, n: Node) -> str:
    r = b.rank(n.inputs[0])
    pads = list(n.attrs.pads)
    if r == 4:
        pads = [pads[p] for p in TO_ONNX]
    flat = [p[0] for p in pads] + [p[1] for p in pads]
    t = b.g.tensors[n.inputs[0]]
    value = 0.0 if t.dtype == "int8" else float(n.attrs.value)   # int8 pads with the zero point
    return b.node("Pad", [b.value[n.inputs[0]], b.init(f"{n.outputs[0]}__pads",
                                                       np.array(flat, np.int64)),
                          b.init(f"{n.outputs[0]}__pv", np.float32(value))],
                  f"{n.outputs[0]}__pad", mode="constant")


def _softmax(b: _Builder, n: Node) -> str:
    x = b.value[n.inputs[0]]
    if n.attrs.beta != 1.0:
        x = b.node("Mul", [x, b.init(f"{n.outputs[0]}__beta", np.float32(n.attrs.beta))],
                   f"{n.outputs[0]}__bx")
    r = b.rank(n.inputs[0])
    return b.node("Softmax", [x], f"{n.outputs[0]}__softmax", axis=b.axis(n.attrs.axis, r))


def _resize_bilinear(b: _Builder, n: Node) -> str:
    """TFLite RESIZE_BILINEAR's coordinate flags as ONNX Resize (linear) modes."""
    a = n.attrs
    x = b.g.tensors[n.inputs[0]].shape                     # NHWC
    sizes = np.array([x[0], x[3], a.size[0], a.size[1]], np.int64)
    mode = "align_corners" if a.align_corners else \
        "half_pixel" if a.half_pixel_centers else "asymmetric"
    return b.node("Resize", [b.value[n.inputs[0]], "", "",
                             b.init(f"{n.outputs[0]}__sizes", sizes)],
                  f"{n.outputs[0]}__resize", mode="linear", coordinate_transformation_mode=mode)


def _transpose_conv(b: _Builder, n: Node) -> str:
    """IR weight [C_OUT, KH, KW, C_IN] -> ConvTranspose's [C_IN, C_OUT, KH, KW]; the IR's
    negative bottom/right crop is ONNX's output_padding."""
    a = n.attrs
    w = b.g.tensors[n.inputs[1]]
    top, left, bottom, right = a.pad
    y = b.node("ConvTranspose", [b.value[n.inputs[0]], b.weight(n.inputs[1], (3, 0, 1, 2)),
                                 b.bias(n, w.shape[0])], f"{n.outputs[0]}__deconv",
               strides=list(a.stride), pads=[top, left, max(bottom, 0), max(right, 0)],
               output_padding=[max(-bottom, 0), max(-right, 0)])
    return b.act(y, a.act, n.outputs[0])


def _gather(b: _Builder, n: Node) -> str:
    idx = b.g.tensors[n.inputs[1]].data.astype(np.int64)
    y = b.node("Gather", [b.to_ir(n.inputs[0]), b.init(f"{n.outputs[0]}__idx", idx)],
               f"{n.outputs[0]}__gather", axis=int(n.attrs.axis))
    return b.from_ir(y, n.outputs[0])


def _prelu(b: _Builder, n: Node) -> str:
    r = b.rank(n.inputs[0])
    return b.node("PRelu", [b.value[n.inputs[0]], b.operand(n.inputs[1], r)],
                  f"{n.outputs[0]}__prelu")


def _identity(b: _Builder, n: Node) -> str:
    return b.node("Identity", [b.value[n.inputs[0]]], f"{n.outputs[0]}__id")


def _lrn(b: _Builder, n: Node) -> str:
    a = n.attrs
    size = 2 * a.radius + 1
    return b.node("LRN", [b.value[n.inputs[0]]], f"{n.outputs[0]}__lrn", size=size,
                  alpha=float(a.alpha * size), beta=float(a.beta), bias=float(a.bias))


# keyed by op name: an op another stage adds later simply has no QDQ form until listed here
def _lstm(b: _Builder, n: Node) -> str:
    """The fused LSTM as ONNX's LSTM (float, layout 0) on dequantized weights: gates reordered
    from TFLite's i, f, c, o to ONNX's i, o, f, c; int32 biases at s_in * s_w per gate; the
    states' reset values as float initial states. A cell clip has no ONNX form (ONNX's clip
    bounds the gate inputs)."""
    from edgeforge.ir import LSTM_R, LSTM_W
    a, y = n.attrs, n.outputs[0]
    if a.cell_clip > 0:
        return _lstm_unrolled(b, n)
    x = b.value[n.inputs[0]]
    if not a.time_major:
        x = b.node("Transpose", [x], f"{y}__tbf", perm=[1, 0, 2])
    order = (0, 3, 1, 2)                           # ONNX gate k is TFLite gate order[k]
    hidden = b.g.tensors[n.inputs[LSTM_W[0]]].shape[0]
    t, batch = (b.g.tensors[y].shape[i] for i in ((0, 1) if a.time_major else (1, 0)))

    def stack(ks: tuple[int, ...], base: str) -> str:
        parts = [b.weight(n.inputs[ks[k]]) for k in order]
        w = b.node("Concat", parts, f"{y}__{base}", axis=0)
        return b.node("Unsqueeze", [w, b.init(f"{y}__{base}_ax", np.array([0], np.int64))],
                      f"{y}__{base}3")
    bias, h0, c0 = _lstm_float_parts(b, n, order)
    bvec = np.concatenate(bias + [np.zeros(4 * hidden)]).astype(np.float32)[None]
    ins = [x, stack(LSTM_W, "W"), stack(LSTM_R, "R"), b.init(f"{y}__B", bvec), "",
           b.init(f"{y}__h0", h0[None]), b.init(f"{y}__c0", c0[None])]
    out = b.node("LSTM", ins, f"{y}__lstm", hidden_size=hidden)        # [T, 1, B, H]
    out = b.node("Reshape", [out, b.init(f"{y}__tbh", np.array([t, batch, hidden], np.int64))],
                 f"{y}__seq")
    return out if a.time_major else b.node("Transpose", [out], f"{y}__bth", perm=[1, 0, 2])


def _lstm_float_parts(b: _Builder, n: Node, order: tuple[int, ...]
                      ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per gate (in `order`) float biases at s_in * s_w, and the float initial h and c
    [batch, hidden] from the states' reset values."""
    from edgeforge.ir import LSTM_B, LSTM_C, LSTM_H, LSTM_W
    a, y = n.attrs, n.outputs[0]
    hidden = b.g.tensors[n.inputs[LSTM_W[0]]].shape[0]
    batch = b.g.tensors[y].shape[1 if a.time_major else 0]
    x_s = float(b.g.tensors[n.inputs[0]].quant.scale[0])
    bias = []
    for k in order:
        bt, wt = b.g.tensors[n.inputs[LSTM_B[k]]], b.g.tensors[n.inputs[LSTM_W[k]]]
        scale = np.float32(x_s) * np.float32(wt.quant.scale[0]) if wt.quant is not None else 1
        bias.append(bt.data.astype(np.float64) * float(scale))

    def state(k: int) -> np.ndarray:
        st = b.g.tensors[n.inputs[k]]
        v = st.data.astype(np.float64)
        if st.quant is not None:
            v = (v - int(st.quant.zero_point[0])) * float(st.quant.scale[0])
        return np.broadcast_to(v.reshape(-1, hidden), (batch, hidden)).astype(np.float32)
    return bias, state(LSTM_H), state(LSTM_C)


def _lstm_unrolled(b: _Builder, n: Node) -> str:
    """An LSTM with a cell clip (ONNX's LSTM clip bounds the gate inputs instead), unrolled
    over time: gates = x_t W^T + h R^T + b (TFLite order i, f, c, o), c = clip(f c + i g),
    h = o tanh(c) quantized to the output's scale each step, as the int8 kernel's h is."""
    from edgeforge.ir import LSTM_R, LSTM_W
    a, y = n.attrs, n.outputs[0]
    order = (0, 1, 2, 3)
    steps = b.g.tensors[y].shape[0 if a.time_major else 1]
    t_axis = 0 if a.time_major else 1
    w4 = b.node("Concat", [b.weight(n.inputs[k]) for k in LSTM_W], f"{y}__W", axis=0)
    r4 = b.node("Concat", [b.weight(n.inputs[k]) for k in LSTM_R], f"{y}__R", axis=0)
    bias, h0, c0 = _lstm_float_parts(b, n, order)
    b4 = b.init(f"{y}__B", np.concatenate(bias).astype(np.float32))
    h, c = b.init(f"{y}__h_init", h0), b.init(f"{y}__c_init", c0)
    clip = [b.init(f"{y}__clip_lo", np.float32(-a.cell_clip)),
            b.init(f"{y}__clip_hi", np.float32(a.cell_clip))]
    hs = []
    for t in range(steps):
        xt = b.node("Gather", [b.value[n.inputs[0]], b.init(f"{y}__t{t}", np.int64(t))],
                    f"{y}__x{t}", axis=t_axis)
        z = b.node("Add", [b.node("Gemm", [xt, w4, b4], f"{y}__xw{t}", transB=1),
                           b.node("Gemm", [h, r4], f"{y}__hr{t}", transB=1)], f"{y}__z{t}")
        gi, gf, gc, go = (f"{y}__gate_{g}{t}" for g in "ifco")
        b.nodes.append(helper.make_node("Split", [z], [gi, gf, gc, go], name=f"{y}__split{t}",
                                        axis=1))
        i, f, o = (b.node("Sigmoid", [g], f"{g}_act") for g in (gi, gf, go))
        cell = b.node("Add", [b.node("Mul", [f, c], f"{y}__fc{t}"),
                              b.node("Mul", [i, b.node("Tanh", [gc], f"{gc}_act")],
                                     f"{y}__ig{t}")], f"{y}__cell{t}")
        c = b.node("Clip", [cell, *clip], f"{y}__cclip{t}")
        h = b.qdq(b.node("Mul", [o, b.node("Tanh", [c], f"{y}__tc{t}")], f"{y}__h{t}"), y)
        hs.append(b.node("Unsqueeze", [h, b.init(f"{y}__ax{t}", np.array([t_axis], np.int64))],
                         f"{y}__h{t}_seq"))
    return b.node("Concat", hs, f"{y}__seq", axis=t_axis)


EXPORTERS = {
    "CONV2D": _conv, "DWCONV2D": _conv, "FC": _fc, "MATMUL": _matmul,
    "AVGPOOL2D": _pool, "MAXPOOL2D": _pool,
    "MEAN": _reduce, "SUM": _reduce, "REDUCE_MAX": _reduce, "REDUCE_MIN": _reduce,
    "ADD": _binary, "SUB": _binary, "MUL": _binary, "DIV": _binary, "MAXIMUM": _binary,
    "MINIMUM": _binary, "SQUARED_DIFFERENCE": _binary,
    "RELU": _unary, "RELU6": _unary, "CLIP": _unary, "LEAKY_RELU": _unary,
    "LOGISTIC": _unary, "TANH": _unary, "HARD_SWISH": _unary, "HARD_SIGMOID": _unary,
    "SQRT": _unary, "RSQRT": _unary, "EXP": _unary, "GELU": _unary,
    "RESHAPE": _reshape, "TRANSPOSE": _transpose, "CONCAT": _concat, "PAD": _pad,
    "STRIDED_SLICE": _slice, "RESIZE_NEAREST": _resize, "RESIZE_BILINEAR": _resize_bilinear,
    "TRANSPOSE_CONV": _transpose_conv, "GATHER": _gather, "PRELU": _prelu,
    "SOFTMAX": _softmax, "LRN": _lrn, "LSTM": _lstm,
    "QUANTIZE": _identity, "DEQUANTIZE": _identity,   # the Q/DQ around them do the work
}


def to_qdq(g: Graph, name: str = "edgeforge", *, layerwise: bool = False,
           numerics: Numerics | str | None = None) -> onnx.ModelProto:
    """The QDQ ONNX model of an int8 IR graph (float32 I/O in the IR's shapes).

    numerics: the profile the graph was compiled for; its rounding is carried into the graph
    (module docstring). None: plain QDQ, QuantizeLinear's rounding only.

    layerwise=True (for checking an export): every activation is a graph input and every
    node's output a graph output, so each layer runs on given inputs rather than on the
    previous layer's result -- one layer's rounding is then not amplified by the next."""
    b = _Builder(g, None if numerics is None else Numerics(numerics))
    graph_inputs = []
    feeds = list(g.inputs)
    if layerwise:
        feeds += [o for n in g.nodes for o in n.outputs if o not in g.outputs]
    for name_in in feeds:
        t = g.tensors[name_in]
        graph_inputs.append(helper.make_tensor_value_info(name_in, TensorProto.FLOAT,
                                                          list(t.shape)))
        b.names.add(name_in)
        x = b.node("Transpose", [name_in], f"{name_in}__nchw", perm=list(TO_ONNX)) \
            if len(t.shape) == 4 else name_in
        b.value[name_in] = b.qdq(x, name_in)
    for n in g.nodes:
        fn = EXPORTERS.get(str(n.op))
        if fn is None or len(n.outputs) != 1:
            raise QdqExportError(f"model_qdq.onnx: node {n.name or n.outputs[0]!r}: no "
                                     f"QDQ export for {n.op}")
        y = b.qdq(b.rounded(fn(b, n), n.outputs[0]), n.outputs[0])
        if layerwise and n.outputs[0] not in g.outputs:
            b.layer_out[n.outputs[0]] = y     # the next layers read the fed value instead
        else:
            b.value[n.outputs[0]] = y
    graph_outputs = []
    outputs = list(g.outputs) + (list(b.layer_out) if layerwise else [])
    for name_out in outputs:
        if name_out in b.layer_out:
            b.value[name_out] = b.layer_out[name_out]
            name_out_onnx = f"{name_out}__layer"
        else:
            name_out_onnx = name_out
        t = g.tensors[name_out]
        y = b.to_ir(name_out)
        b.nodes.append(helper.make_node("Identity", [y], [name_out_onnx],
                                        name=f"{name_out_onnx}__out"))
        graph_outputs.append(helper.make_tensor_value_info(name_out_onnx, TensorProto.FLOAT,
                                                           list(t.shape)))
    graph = helper.make_graph(b.nodes, name, graph_inputs, graph_outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edgeforge")
    model.ir_version = 8                      # onnxruntime and TensorRT 8.6+ read IR 8
    onnx.checker.check_model(model)
    return model


def write_qdq(g: Graph, path: str | Path, name: str = "edgeforge",
              numerics: Numerics | str | None = None) -> Path:
    path = Path(path)
    onnx.save(to_qdq(g, name, numerics=numerics), str(path))
    return path


def try_write_qdq(g: Graph, path: str | Path, name: str = "edgeforge",
                  numerics: Numerics | str | None = None) -> dict[str, str]:
    """write_qdq for `compile`: an op with no QDQ form leaves the file out, with the reason
    (the .tflite and C package do not depend on it)."""
    try:
        write_qdq(g, path, name, numerics)
    except QdqExportError as e:
        return {"error": str(e)}
    return {"file": Path(path).name, "opset": str(OPSET)}
