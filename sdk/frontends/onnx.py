""".onnx -> IR. Float ONNX models, opsets 9..21 (attributes read as attr OR input, whichever
the node carries, so one importer serves every opset).

Layout: ONNX is NCHW, the IR is NHWC, and the switch happens ONCE, here. Every ONNX value
is held as an IR tensor plus a permutation `perm` with  ir_data = onnx_data.transpose(perm):
4-D activations get NHWC = (0, 2, 3, 1), everything else starts as identity. An importer asks
for its operand in the layout it needs (`cx.nhwc(x)`, `cx.plain(x)`); a TRANSPOSE (or a
RESHAPE, when only size-1 dims move) is inserted only if the value is not already held that
way. A Transpose node is just a change of `perm`, so tf2onnx's NHWC->NCHW->NHWC pairs around
every Conv cost nothing. Flatten/Reshape of a real NCHW 4-D tensor gets TRANSPOSE(0,3,1,2)
before it, which edgeforge.passes absorbs into the next FC's weight columns.

Graph inputs/outputs keep their ONNX names. A 4-D input is taken as NCHW (IR: NHWC) unless
every consumer is Transpose(0,3,1,2) (tf2onnx: the input is NHWC already). What was done is
recorded in graph.meta["onnx_layout"] = {name: perm} with ir = onnx.transpose(perm) for every
graph input and output, so a caller holding NCHW data can use `to_ir_layout` / `from_ir_layout`.
graph.meta["onnx_values"] = {onnx name: [IR tensor, perm]} does the same for every ONNX value
that still has its own IR tensor after the passes (for layer-by-layer diffs).

Constants: initializers, Constant, and every node whose inputs are all constant (shape
arithmetic, ConstantOfShape weights) are folded to numpy at import; Shape and Size of an
activation are ordinary importers whose output is such a constant (every shape is static), so
torch's Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains fold away. A grouped Conv that is not depthwise (group <= MAX_DENSE_GROUPS) is lowered to a dense
CONV2D with a block-diagonal weight (exact; costs `group` times the MACs; recorded in
meta["onnx_notes"]); more groups -> UnsupportedOpError.

Errors: unreadable/corrupt/cyclic file or missing external data -> ONE ModelError; every node
that cannot be imported -> ONE UnsupportedOpError listing each op and node.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import ModelError, UnsupportedOpError
from edgeforge.ir import (
    OPS,
    BatchNormAttrs,
    BinaryAttrs,
    ClipAttrs,
    ConcatAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    GatherAttrs,
    GeluAttrs,
    Graph,
    HardSigmoidAttrs,
    IRError,
    LeakyReluAttrs,
    LrnAttrs,
    LstmAttrs,
    MeanAttrs,
    NoAttrs,
    Node,
    Op,
    PadAttrs,
    Pool2dAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    StridedSliceAttrs,
    Tensor,
    TransposeAttrs,
    TransposeConvAttrs,
    verify,
)

NHWC = (0, 2, 3, 1)   # ir = nchw.transpose(NHWC)
NCHW = (0, 3, 1, 2)   # its inverse

Perm = tuple[int, ...]

# a grouped (non-depthwise) Conv becomes a dense block-diagonal CONV2D up to this many groups
MAX_DENSE_GROUPS = 8


class _Unsupported(Exception):
    """An importer's 'cannot represent this node' (collected, reported once)."""


def _ident(r: int) -> Perm:
    return tuple(range(r))


def _chlast(r: int) -> Perm:
    """Channel-last permutation of an N,C,... tensor: (0, 2, ..., r-1, 1)."""
    return (0,) + tuple(range(2, r)) + (1,) if r >= 3 else _ident(r)


def _inv(p: Perm) -> Perm:
    return tuple(int(i) for i in np.argsort(p))


@dataclass
class _Val:
    ir: str            # IR tensor holding the value
    perm: Perm         # ir data = onnx data.transpose(perm)


# ---------------------------------------------------------------- import context
class _Cx:
    """Everything importers share: the IR being built, folded constants, value layouts."""

    def __init__(self, path: str, opset: int):
        self.path, self.opset = path, opset
        self.g = Graph()
        self.consts: dict[str, np.ndarray] = {}
        self.vals: dict[str, _Val] = {}
        self.notes: list[str] = []
        self.used: set[str] = set()       # names some node or the graph output reads
        self._relaid: dict[tuple[str, Perm], str] = {}
        self._node_name = ""

    # -- attributes and operands of the node being imported
    @staticmethod
    def attr(node: Any, name: str, default: Any = None) -> Any:
        from onnx import helper
        for a in node.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    @staticmethod
    def has(node: Any, i: int) -> bool:
        return len(node.input) > i and node.input[i] != ""

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise _Unsupported(f"{what} ({name!r}) must be a constant")
        return self.consts[name]

    def shape(self, name: str) -> tuple[int, ...]:
        """The ONNX-order shape of a value."""
        if name in self.consts:
            return tuple(self.consts[name].shape)
        v = self.vals[name]
        ir = self.g.tensors[v.ir].shape
        return tuple(ir[i] for i in _inv(v.perm))

    # -- building
    def add_const(self, data: np.ndarray, base: str) -> str:
        name = self.g.unique_name(base)
        if data.dtype.kind == "f":   # the float IR is float32 (ONNX double/half consts too)
            data = data.astype(np.float32, copy=False)
        self.g.const(name, np.ascontiguousarray(data))
        return name

    def emit(self, op: Op, inputs: list[str], out: str, ir_shape: tuple[int, ...],
             attrs: Any = None, perm: Perm | None = None) -> str:
        """Add one IR node producing ONNX value `out` (held with `perm`)."""
        name = out if out not in self.g.tensors else self.g.unique_name(out)
        self.g.add_tensor(Tensor(name, tuple(int(d) for d in ir_shape)))
        self.g.nodes.append(Node(op, tuple(inputs), (name,), attrs or NoAttrs(),
                                 self._node_name))
        self.vals[out] = _Val(name, perm if perm is not None else _ident(len(ir_shape)))
        return name

    def temp(self, op: Op, inputs: list[str], base: str, ir_shape: tuple[int, ...],
             attrs: Any) -> str:
        """Add one IR node whose output is no ONNX value (a layout change)."""
        name = self.g.unique_name(base)
        self.g.add_tensor(Tensor(name, tuple(int(d) for d in ir_shape)))
        self.g.nodes.append(Node(op, tuple(inputs), (name,), attrs, self._node_name))
        return name

    def relayout(self, ir: str, rel: Perm) -> str:
        """IR tensor `ir` transposed by `rel`: a RESHAPE if only size-1 dims move."""
        if rel == _ident(len(rel)):
            return ir
        key = (ir, rel)
        if key not in self._relaid:
            shp = self.g.tensors[ir].shape
            out = tuple(shp[i] for i in rel)
            moved = [i for i in rel if shp[i] != 1]
            if moved == sorted(moved):
                self._relaid[key] = self.temp(Op.RESHAPE, [ir], f"{ir}__r", out,
                                              ReshapeAttrs(out))
            else:
                self._relaid[key] = self.temp(Op.TRANSPOSE, [ir], f"{ir}__t", out,
                                              TransposeAttrs(rel))
        return self._relaid[key]

    def relayout_reshape(self, ir: str, shape: tuple[int, ...]) -> str:
        """IR tensor `ir` reshaped (same bytes) to `shape`, cached like relayout."""
        key = (ir, ("reshape",) + shape)
        if key not in self._relaid:
            self._relaid[key] = self.temp(Op.RESHAPE, [ir], f"{ir}__r", shape,
                                          ReshapeAttrs(shape))
        return self._relaid[key]

    def layout(self, name: str, perm: Perm) -> str:
        """IR tensor holding ONNX value `name` as onnx.transpose(perm)."""
        if name in self.consts:
            data = self.consts[name]
            data = data.reshape((1,) * (len(perm) - data.ndim) + data.shape)
            return self.add_const(data.transpose(perm), name)
        v = self.vals[name]
        if len(perm) != len(v.perm):
            raise _Unsupported(f"operand {name!r} has rank {len(v.perm)}, needed {len(perm)}")
        inv = _inv(v.perm)
        return self.relayout(v.ir, tuple(inv[p] for p in perm))

    def plain(self, name: str) -> str:
        return self.layout(name, _ident(len(self.shape(name))))

    def nhwc(self, name: str, what: str = "input") -> str:
        if len(self.shape(name)) != 4:
            raise _Unsupported(f"{what} rank {len(self.shape(name))}, expected 4 (NCHW)")
        return self.layout(name, NHWC)

    def expand(self, name: str, rank: int) -> str:
        """An activation of lower rank as an ONNX value of `rank` dims (broadcast-style)."""
        shp = self.shape(name)
        if len(shp) == rank:
            return name
        new = (1,) * (rank - len(shp)) + shp
        alias = f"{name}__x{rank}"
        if alias not in self.vals:
            ir = self.temp(Op.RESHAPE, [self.plain(name)], alias, new, ReshapeAttrs(new))
            self.vals[alias] = _Val(ir, _ident(rank))
        return alias


Importer = Callable[[_Cx, Any], None]


# ---------------------------------------------------------------- geometry
def _spatial(cx: _Cx, node: Any, x: tuple[int, ...], kernel: tuple[int, int],
             ceil: bool = False) -> dict[str, Any]:
    """Explicit stride/dilation/pads and output HW of a 2-D window op over NCHW `x` (a 1-D op
    over NCW arrives as x = (N, C, 1, W) with its 1-D attributes)."""
    stride = tuple(cx.attr(node, "strides", [1, 1]))
    dil = tuple(cx.attr(node, "dilations", [1, 1]))
    pads = list(cx.attr(node, "pads", [0, 0, 0, 0]))
    auto = cx.attr(node, "auto_pad", "NOTSET")
    if len(stride) == 1:   # 1-D attributes: H = 1, no stride/dilation/pad along it
        stride = (1,) + stride
    if len(dil) == 1:
        dil = (1,) + dil
    if len(pads) == 2:
        pads = [0, pads[0], 0, pads[1]]
    if len(stride) != 2 or len(dil) != 2 or len(pads) != 4:
        raise _Unsupported("only 2-D windows are supported")
    hw = x[2:]
    eff = [(kernel[i] - 1) * dil[i] + 1 for i in range(2)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-hw[i] // stride[i]) for i in range(2)]
        for i in range(2):
            total = max((out[i] - 1) * stride[i] + eff[i] - hw[i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto != "NOTSET":
        raise _Unsupported(f"auto_pad {auto!r}")
    out = []
    for i in range(2):
        span = hw[i] + pads[i] + pads[i + 2] - eff[i]
        o = (-(-span // stride[i]) if ceil else span // stride[i]) + 1
        if ceil and (o - 1) * stride[i] >= hw[i] + pads[i]:
            o -= 1   # the last window must start inside the input or its begin pad
        extra = (o - 1) * stride[i] + eff[i] - (hw[i] + pads[i] + pads[i + 2])
        pads[i + 2] += max(extra, 0)
        out.append(o)
    if min(out) < 1:
        raise _Unsupported(f"window {kernel} does not fit input {list(hw)}")
    return {"stride": (int(stride[0]), int(stride[1])), "dilation": (int(dil[0]), int(dil[1])),
            "pad": (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])),
            "out": (int(out[0]), int(out[1]))}


# ---------------------------------------------------------------- importers
def _window_input(cx: _Cx, name: str) -> tuple[tuple[int, ...], str]:
    """(NCHW shape, NHWC IR tensor) of a window op's input; 1-D NCW becomes N,1,W,C."""
    x = cx.shape(name)
    if len(x) == 3:
        ir = cx.layout(name, (0, 2, 1))
        return (x[0], x[1], 1, x[2]), cx.relayout_reshape(ir, (x[0], 1, x[2], x[1]))
    if len(x) != 4:
        raise _Unsupported(f"only 1-D and 2-D windows (input rank {len(x)})")
    return x, cx.nhwc(name)


def _emit_window(cx: _Cx, op: Op, ins: list[str], out: str, shape4: tuple[int, ...],
                 attrs: Any, one_d: bool) -> None:
    if not one_d:
        cx.emit(op, ins, out, shape4, attrs, NHWC)
        return
    t = cx.temp(op, ins, f"{out}__2d", shape4, attrs)
    shape3 = (shape4[0], shape4[2], shape4[3])
    cx.emit(Op.RESHAPE, [t], out, shape3, ReshapeAttrs(shape3), (0, 2, 1))


def import_conv(cx: _Cx, node: Any) -> None:
    one_d = len(cx.shape(node.input[0])) == 3
    x, xin = _window_input(cx, node.input[0])
    w = cx.const(node.input[1], "weight").astype(np.float32)
    if one_d and w.ndim == 3:
        w = w[:, :, None, :]
    if w.ndim != 4:
        raise _Unsupported(f"weight rank {w.ndim} does not fit input rank {len(x)}")
    group = int(cx.attr(node, "group", 1))
    cout, cin_g, kh, kw = w.shape
    cin = x[1]
    if cin_g * group != cin:
        raise _Unsupported(f"weight {list(w.shape)} and group {group} do not fit {cin} channels")
    geo = _spatial(cx, node, x, (kh, kw))
    b = cx.consts.get(node.input[2]) if cx.has(node, 2) else None
    if cx.has(node, 2) and b is None:
        raise _Unsupported("bias must be a constant")
    out_shape = (x[0], geo["out"][0], geo["out"][1], cout)
    geo.pop("out")
    bias = cx.add_const(b.astype(np.float32), f"{node.output[0]}__b") if b is not None else ""
    if group > 1 and cin_g == 1:   # depthwise: [C*M, 1, KH, KW] -> [1, KH, KW, C*M]
        wname = cx.add_const(w.transpose(1, 2, 3, 0), f"{node.output[0]}__w")
        _emit_window(cx, Op.DWCONV2D, [xin, wname, bias], node.output[0], out_shape,
                     DwConv2dAttrs(depth_multiplier=cout // cin, **geo), one_d)
        return
    if group > MAX_DENSE_GROUPS:
        raise _Unsupported(f"grouped convolution with group={group} (not depthwise); lowering "
                           f"it to a dense conv would multiply its MACs by {group} "
                           f"(limit {MAX_DENSE_GROUPS})")
    if group > 1:   # block-diagonal dense weight: exact, `group` times the MACs
        dense = np.zeros((cout, cin, kh, kw), np.float32)
        per = cout // group
        for gi in range(group):
            dense[gi * per:(gi + 1) * per, gi * cin_g:(gi + 1) * cin_g] = w[gi * per:(gi + 1) * per]
        w = dense
        cx.notes.append(f"{node.name or node.output[0]}: Conv group={group} lowered to a dense "
                        f"block-diagonal CONV2D")
    wname = cx.add_const(w.transpose(0, 2, 3, 1), f"{node.output[0]}__w")   # OIHW -> OHWI
    _emit_window(cx, Op.CONV2D, [xin, wname, bias], node.output[0], out_shape,
                 Conv2dAttrs(**geo), one_d)


def import_conv_transpose(cx: _Cx, node: Any) -> None:
    """ConvTranspose (group 1, dilation 1; 1-D as H = 1) -> TRANSPOSE_CONV: weight
    [C_IN, C_OUT, KH, KW] -> OHWI; pads crop the full scatter, output_padding extends it."""
    one_d = len(cx.shape(node.input[0])) == 3
    x, xin = _window_input(cx, node.input[0])
    w = cx.const(node.input[1], "weight").astype(np.float32)
    if one_d and w.ndim == 3:
        w = w[:, :, None, :]
    if w.ndim != 4 or w.shape[0] != x[1]:
        raise _Unsupported(f"weight {list(w.shape)} does not fit input {list(x)}")
    if int(cx.attr(node, "group", 1)) != 1:
        raise _Unsupported("grouped ConvTranspose")
    if any(int(d) != 1 for d in cx.attr(node, "dilations", [1, 1])):
        raise _Unsupported("dilated ConvTranspose")
    if cx.attr(node, "output_shape", None) is not None or \
            cx.attr(node, "auto_pad", "NOTSET") != "NOTSET":
        raise _Unsupported("output_shape / auto_pad (give explicit pads)")
    _, cout, kh, kw = w.shape
    k2 = 1 if one_d else 2
    stride = [int(s) for s in cx.attr(node, "strides", [1] * k2)]
    pads = [int(p) for p in cx.attr(node, "pads", [0] * 2 * k2)]
    opad = [int(p) for p in cx.attr(node, "output_padding", [0] * k2)]
    if one_d:
        stride, pads, opad = [1] + stride, [0, pads[0], 0, pads[1]], [0] + opad
    pad = (pads[0], pads[1], pads[2] - opad[0], pads[3] - opad[1])
    oh = (x[2] - 1) * stride[0] + kh - pad[0] - pad[2]
    ow = (x[3] - 1) * stride[1] + kw - pad[1] - pad[3]
    if min(oh, ow) < 1 or min(pads) < 0:
        raise _Unsupported(f"pads {pads} leave no output")
    b = cx.consts.get(node.input[2]) if cx.has(node, 2) else None
    if cx.has(node, 2) and b is None:
        raise _Unsupported("bias must be a constant")
    out = node.output[0]
    bias = cx.add_const(b.astype(np.float32), f"{out}__b") if b is not None else ""
    wname = cx.add_const(w.transpose(1, 2, 3, 0), f"{out}__w")   # IOHW -> OHWI
    _emit_window(cx, Op.TRANSPOSE_CONV, [xin, wname, bias], out, (x[0], oh, ow, cout),
                 TransposeConvAttrs(stride=(stride[0], stride[1]), pad=pad), one_d)


def _pool(cx: _Cx, node: Any, op: Op) -> None:
    one_d = len(cx.shape(node.input[0])) == 3
    x, xin = _window_input(cx, node.input[0])
    if len(node.output) > 1 and node.output[1] in cx.used:
        raise _Unsupported("the Indices output is not supported")
    kernel = tuple(int(k) for k in cx.attr(node, "kernel_shape", []))
    if one_d and len(kernel) == 1:
        kernel = (1,) + kernel
    if len(kernel) != 2:
        raise _Unsupported(f"kernel_shape {list(kernel)}")
    ceil = bool(cx.attr(node, "ceil_mode", 0))
    geo = _spatial(cx, node, x, kernel, ceil)
    if geo["dilation"] != (1, 1):
        raise _Unsupported(f"dilations {geo['dilation']}")
    include = bool(cx.attr(node, "count_include_pad", 0)) and op == Op.AVGPOOL2D
    if include and ceil:
        plain = _spatial(cx, node, x, kernel, False)
        if plain["out"] != geo["out"]:
            raise _Unsupported("ceil_mode=1 with count_include_pad=1 adds windows past the pads "
                               "whose divisor the IR cannot express")
    if include and geo["pad"] == (0, 0, 0, 0):
        include = False
    out = (x[0], geo["out"][0], geo["out"][1], x[1])
    _emit_window(cx, op, [xin], node.output[0], out,
                 Pool2dAttrs(kernel=kernel, stride=geo["stride"], pad=geo["pad"],
                             count_include_pad=include), one_d)


def import_maxpool(cx: _Cx, node: Any) -> None:
    _pool(cx, node, Op.MAXPOOL2D)


def import_avgpool(cx: _Cx, node: Any) -> None:
    _pool(cx, node, Op.AVGPOOL2D)


def import_global_avgpool(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    if len(x) < 3:
        raise _Unsupported(f"input rank {len(x)}, expected N, C and spatial dims")
    if len(x) != 4:   # 1-D (N, C, W) or 3-D: MEAN over the spatial dims, in the held layout
        _mean(cx, node.input[0], node.output[0], set(range(2, len(x))), True)
        return
    cx.emit(Op.MEAN, [cx.nhwc(node.input[0])], node.output[0], (x[0], 1, 1, x[1]),
            MeanAttrs(axes=(1, 2), keepdims=True), NHWC)


def import_global_maxpool(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    if len(x) != 4:
        raise _Unsupported(f"input rank {len(x)}, expected 4")
    cx.emit(Op.MAXPOOL2D, [cx.nhwc(node.input[0])], node.output[0], (x[0], 1, 1, x[1]),
            Pool2dAttrs(kernel=(x[2], x[3]), stride=(1, 1)), NHWC)


def import_reduce_mean(cx: _Cx, node: Any) -> None:
    x = node.input[0]
    r = len(cx.shape(x))
    axes = cx.attr(node, "axes", None)
    if axes is None and cx.has(node, 1):
        axes = cx.const(node.input[1], "axes").tolist()
    if axes is None or len(axes) == 0:
        if int(cx.attr(node, "noop_with_empty_axes", 0)):
            cx.vals[node.output[0]] = cx.vals[x]
            return
        axes = list(range(r))
    _mean(cx, x, node.output[0], {int(a) % r for a in axes},
          bool(cx.attr(node, "keepdims", 1)), REDUCE_OPS[node.op_type])


REDUCE_OPS = {"ReduceMean": Op.MEAN, "ReduceSum": Op.SUM, "ReduceMax": Op.REDUCE_MAX,
              "ReduceMin": Op.REDUCE_MIN}


def _mean(cx: _Cx, x: str, out_name: str, axes_set: set[int], keep: bool,
          op: Op = Op.MEAN) -> None:
    v = cx.vals[x]   # reduce in whatever layout the value is held: no transpose needed
    ir_axes = tuple(sorted(v.perm.index(a) for a in axes_set))
    shp = cx.g.tensors[v.ir].shape
    if keep:
        out = tuple(1 if i in ir_axes else d for i, d in enumerate(shp))
        perm = v.perm
    else:
        out = tuple(d for i, d in enumerate(shp) if i not in ir_axes)
        left = [p for p in v.perm if p not in axes_set]
        perm = tuple(int(i) for i in np.argsort(np.argsort(left)))
    cx.emit(op, [v.ir], out_name, out, MeanAttrs(axes=ir_axes, keepdims=keep), perm)


def _gemm_general(cx: _Cx, node: Any) -> None:
    """Gemm with a non-constant B or transA: MATMUL of (transposed) operands, *alpha, +beta*C."""
    a, b = node.input[0], node.input[1]
    ops = []
    for v, flag in ((a, "transA"), (b, "transB")):
        ir = cx.add_const(cx.consts[v], f"{node.output[0]}__k") if cx.is_const(v) \
            else cx.plain(v)
        if int(cx.attr(node, flag, 0)):
            ir = cx.relayout(ir, (1, 0))
        ops.append(ir)
    m, n = cx.g.tensors[ops[0]].shape[0], cx.g.tensors[ops[1]].shape[1]
    out = node.output[0]
    y = cx.temp(Op.MATMUL, ops, f"{out}__mm", (m, n), NoAttrs())
    alpha = float(cx.attr(node, "alpha", 1.0))
    if alpha != 1.0:
        y = cx.temp(Op.MUL, [y, cx.add_const(np.array(alpha, np.float32), f"{out}__alpha")],
                    f"{out}__scaled", (m, n), BinaryAttrs())
    if cx.has(node, 2):
        beta = float(cx.attr(node, "beta", 1.0))
        if cx.is_const(node.input[2]):
            c = cx.add_const(cx.consts[node.input[2]] * np.float32(beta), f"{out}__c")
        else:
            c = cx.plain(node.input[2])
            if beta != 1.0:
                shp = cx.g.tensors[c].shape
                c = cx.temp(Op.MUL, [c, cx.add_const(np.array(beta, np.float32), f"{out}__b")],
                            f"{out}__cb", shp, BinaryAttrs())
        y = cx.temp(Op.ADD, [y, c], f"{out}__biased", (m, n), BinaryAttrs())
    cx.emit(Op.RESHAPE, [y], out, (m, n), ReshapeAttrs((m, n)))


def import_gemm(cx: _Cx, node: Any) -> None:
    a, bname = node.input[0], node.input[1]
    if int(cx.attr(node, "transA", 0)) or not cx.is_const(bname):
        _gemm_general(cx, node)
        return
    if len(cx.shape(a)) != 2:
        raise _Unsupported(f"A rank {len(cx.shape(a))}, expected 2")
    b = cx.const(bname, "B").astype(np.float32, copy=False)
    w = b if int(cx.attr(node, "transB", 0)) else b.T          # FC weight [N, K]
    if w.ndim != 2 or w.shape[1] != cx.shape(a)[1]:       # later passes rely on K matching
        raise _Unsupported(f"B {list(b.shape)} does not fit A {list(cx.shape(a))}")
    alpha = float(cx.attr(node, "alpha", 1.0))
    if alpha != 1.0:
        w = w * np.float32(alpha)
    n = w.shape[0]
    rows = cx.shape(a)[0]
    bias, extra = "", None
    if cx.has(node, 2):
        c = cx.const(node.input[2], "C").astype(np.float32) * np.float32(cx.attr(node, "beta", 1.0))
        if c.size == 1 or c.shape[-1:] == (n,) and int(np.prod(c.shape[:-1])) == 1:
            bias = cx.add_const(np.broadcast_to(c.reshape(-1), (n,)).copy(),
                                f"{node.output[0]}__b")
        else:
            extra = c
    wname = cx.add_const(w, f"{node.output[0]}__w")
    out = node.output[0] if extra is None else f"{node.output[0]}__fc"
    cx.emit(Op.FC, [cx.plain(a), wname, bias], out, (rows, n), FcAttrs())
    if extra is not None:
        cname = cx.add_const(np.broadcast_to(extra, (rows, n)).copy(), f"{node.output[0]}__c")
        cx.emit(Op.ADD, [cx.vals[out].ir, cname], node.output[0], (rows, n), BinaryAttrs())


def import_matmul(cx: _Cx, node: Any) -> None:
    a, b = node.input
    sa, sb = cx.shape(a), cx.shape(b)
    if len(sa) < 2 or len(sb) < 2:
        raise _Unsupported(f"1-D MatMul operands {list(sa)} x {list(sb)}")
    out = tuple(np.broadcast_shapes(sa[:-2], sb[:-2])) + (sa[-2], sb[-1])
    ins = []
    for v in (a, b):
        if cx.is_const(v):
            ins.append(cx.add_const(cx.consts[v].astype(np.float32), f"{node.output[0]}__w"))
        else:
            ins.append(cx.plain(v))
    cx.emit(Op.MATMUL, ins, node.output[0], out, NoAttrs())


def _common_perm(cx: _Cx, names: list[str], r: int) -> Perm:
    """The layout to compute an elementwise op in: that of its first full-rank activation
    (no transposes when operands agree), else NHWC for 4-D and ONNX order otherwise."""
    for v in names:
        if v in cx.vals and len(cx.vals[v].perm) == r:
            return cx.vals[v].perm
    return NHWC if r == 4 else _ident(r)


def _binary(cx: _Cx, op: Op, a: str, b: str, out: str) -> None:
    shape = tuple(np.broadcast_shapes(cx.shape(a), cx.shape(b)))
    r = len(shape)
    perm = _common_perm(cx, [a, b], r)
    ins = [cx.layout(v if cx.is_const(v) else cx.expand(v, r), perm) for v in (a, b)]
    cx.emit(op, ins, out, tuple(shape[i] for i in perm), BinaryAttrs(), perm)


BINARY = {"Add": Op.ADD, "Sub": Op.SUB, "Mul": Op.MUL, "Div": Op.DIV}


def import_binary(cx: _Cx, node: Any) -> None:
    _binary(cx, BINARY[node.op_type], node.input[0], node.input[1], node.output[0])


def import_sum(cx: _Cx, node: Any) -> None:
    ins = list(node.input)
    if len(ins) == 1:
        cx.vals[node.output[0]] = cx.vals[ins[0]]
        return
    acc = ins[0]
    for k, v in enumerate(ins[1:], 1):
        out = node.output[0] if k == len(ins) - 1 else f"{node.output[0]}__sum{k}"
        _binary(cx, Op.ADD, acc, v, out)
        acc = out


def import_max_min(cx: _Cx, node: Any) -> None:
    """Max/Min of an activation and one scalar constant (TF's relu6 as Min(Max(x, 0), 6))."""
    acts = [i for i in node.input if not cx.is_const(i)]
    consts = [cx.consts[i] for i in node.input if cx.is_const(i)]
    if len(acts) != 1 or any(c.size != 1 for c in consts):   # elementwise, pairwise
        _pairwise(cx, node, Op.MAXIMUM if node.op_type == "Max" else Op.MINIMUM)
        return
    bound = (max if node.op_type == "Max" else min)(float(c.reshape(-1)[0]) for c in consts)
    attrs = ClipAttrs(min=bound) if node.op_type == "Max" else ClipAttrs(max=bound)
    v = cx.vals[acts[0]]
    shape = tuple(np.broadcast_shapes(cx.shape(acts[0]), *[c.shape for c in consts]))
    if shape != cx.shape(acts[0]):
        raise _Unsupported("the constant broadcasts the tensor to a larger shape")
    cx.emit(Op.CLIP, [v.ir], node.output[0], cx.g.tensors[v.ir].shape, attrs, v.perm)


def _pairwise(cx: _Cx, node: Any, op: Op) -> None:
    """MAXIMUM / MINIMUM of every operand (numpy broadcasting), folded left."""
    acc = node.input[0]
    for k, b in enumerate(node.input[1:], 1):
        out = node.output[0] if k == len(node.input) - 1 else f"{node.output[0]}__{k}"
        shape = tuple(np.broadcast_shapes(cx.shape(acc), cx.shape(b)))
        perm = _common_perm(cx, [acc, b], len(shape))
        ins = [cx.layout(v if cx.is_const(v) else cx.expand(v, len(shape)), perm)
               for v in (acc, b)]
        cx.emit(op, ins, out, tuple(shape[i] for i in perm), NoAttrs(), perm)
        acc = out
    if len(node.input) == 1:
        cx.vals[node.output[0]] = cx.vals[acc]


def import_slice(cx: _Cx, node: Any) -> None:
    """Slice (steps > 0) in the layout the value is held: a STRIDED_SLICE, no transpose."""
    x = cx.shape(node.input[0])
    r = len(x)
    if cx.opset < 10:
        starts, ends = cx.attr(node, "starts"), cx.attr(node, "ends")
        axes, steps = cx.attr(node, "axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts = cx.const(node.input[1], "starts").reshape(-1).tolist()
        ends = cx.const(node.input[2], "ends").reshape(-1).tolist()
        axes = (cx.const(node.input[3], "axes").reshape(-1).tolist() if cx.has(node, 3)
                else list(range(len(starts))))
        steps = (cx.const(node.input[4], "steps").reshape(-1).tolist() if cx.has(node, 4)
                 else [1] * len(starts))
    begin, end, stride = [0] * r, list(x), [1] * r
    for a, b, e, s in zip(axes, starts, ends, steps):
        a, d = int(a) % r, x[int(a) % r]
        if s < 1:
            raise _Unsupported(f"step {s} (only positive steps)")
        b = min(max(b + d if b < 0 else b, 0), d)
        e = min(max(e + d if e < 0 else e, 0), d)
        if e <= b:
            raise _Unsupported(f"empty slice [{b}:{e}] of axis {a}")
        begin[a], end[a], stride[a] = int(b), int(e), int(s)
    _emit_slice(cx, node.input[0], node.output[0], begin, end, stride)


def _emit_slice(cx: _Cx, x: str, out: str, begin: list[int], end: list[int],
                stride: list[int]) -> None:
    """STRIDED_SLICE of ONNX value x by ONNX-order bounds, in x's held layout."""
    v = cx.vals[x]
    if list(begin) == [0] * len(begin) and list(end) == list(cx.shape(x)) and \
            set(stride) == {1}:
        cx.vals[out] = v
        return
    p = v.perm
    attrs = StridedSliceAttrs(tuple(begin[i] for i in p), tuple(end[i] for i in p),
                              tuple(stride[i] for i in p))
    shape = tuple(-(-(e - b) // s) for b, e, s in zip(attrs.begin, attrs.end, attrs.strides))
    cx.emit(Op.STRIDED_SLICE, [v.ir], out, shape, attrs, p)


def import_split(cx: _Cx, node: Any) -> None:
    """Split: one STRIDED_SLICE per output (ShuffleNet's channel split: chunk(2, dim=1))."""
    x = cx.shape(node.input[0])
    axis = int(cx.attr(node, "axis", 0)) % len(x)
    split = cx.attr(node, "split", None)
    if split is None and cx.has(node, 1):
        split = cx.const(node.input[1], "split").reshape(-1).tolist()
    n = len(node.output)
    if split is None:   # equal parts; opset 18 num_outputs: the last part may be smaller
        size = -(-x[axis] // n)
        split = [min(size, x[axis] - k * size) for k in range(n)]
    if len(split) != n or sum(split) != x[axis] or min(split) < 1:
        raise _Unsupported(f"split {split} of a dim of {x[axis]} into {n} outputs")
    start = 0
    for out, size in zip(node.output, split):
        begin = [start if i == axis else 0 for i in range(len(x))]
        end = [start + int(size) if i == axis else d for i, d in enumerate(x)]
        if out:
            _emit_slice(cx, node.input[0], out, begin, end, [1] * len(x))
        start += int(size)


# ONNX Resize(nearest) coordinate modes TFLite's RESIZE_NEAREST_NEIGHBOR computes exactly:
# (coordinate_transformation_mode, nearest_mode) -> (align_corners, half_pixel_centers)
_NEAREST_MODES = {("asymmetric", "floor"): (False, False),
                  ("half_pixel", "round_prefer_ceil"): (False, True),
                  ("pytorch_half_pixel", "round_prefer_ceil"): (False, True),
                  ("tf_half_pixel_for_nn", "floor"): (False, True),
                  ("align_corners", "round_prefer_ceil"): (True, False)}


def import_resize(cx: _Cx, node: Any) -> None:
    from edgeforge.qparams import nearest_maps
    x = cx.shape(node.input[0])
    mode = cx.attr(node, "mode", "nearest")
    ctm = cx.attr(node, "coordinate_transformation_mode", "half_pixel")
    nearest = cx.attr(node, "nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear"):
        raise _Unsupported(f"mode {mode!r} (only 'nearest' and 'linear' have an IR form)")
    if mode == "linear" and int(cx.attr(node, "antialias", 0)):
        raise _Unsupported("antialias=1 (TFLite's bilinear resize does not filter)")
    if len(x) != 4:
        raise _Unsupported(f"input rank {len(x)}, expected 4 (NCHW)")
    sizes = cx.consts.get(node.input[3]) if cx.has(node, 3) else None
    scales = cx.consts.get(node.input[2]) if cx.has(node, 2) else None
    if node.op_type == "Upsample" or cx.opset < 11:   # X, scales; floor of i / scale
        scales, ctm, nearest = cx.const(node.input[1], "scales"), "asymmetric", "floor"
    if sizes is not None and sizes.size:
        out = [int(d) for d in sizes.reshape(-1)]
    elif scales is not None and scales.size:
        s = scales.reshape(-1).astype(np.float32)
        out = [int(np.floor(d * f)) for d, f in zip(x, s)]
    else:
        raise _Unsupported("scales or sizes must be constants")
    if mode == "linear":
        _resize_bilinear(cx, node, x, out, ctm, scales)
        return
    if (ctm, nearest) not in _NEAREST_MODES:
        raise _Unsupported(f"coordinate_transformation_mode {ctm!r} with nearest_mode "
                           f"{nearest!r} (TFLite's resize computes other source pixels)")
    if out[:2] != list(x[:2]) or min(out) < 1:
        raise _Unsupported(f"resize of N or C ({list(x)} -> {out})")
    align, half = _NEAREST_MODES[(ctm, nearest)]
    if ctm == "asymmetric" and any(o % i for i, o in zip(x[2:], out[2:])):
        # ONNX divides by the given scale, TFLite by out/in: equal for integer factors only
        s = scales.reshape(-1)[2:] if scales is not None and scales.size else None
        want = [np.minimum(np.floor(np.arange(o) / (f if s is not None else o / i)), i - 1)
                for i, o, f in zip(x[2:], out[2:], s if s is not None else (1, 1))]
        got = nearest_maps(x[2:], (out[2], out[3]), align, half)
        if any(not np.array_equal(w, g) for w, g in zip(want, got)):
            raise _Unsupported(f"non-integer scale {list(x[2:])} -> {out[2:]} picks other "
                               "pixels than TFLite's resize")
    cx.emit(Op.RESIZE_NEAREST, [cx.nhwc(node.input[0])], node.output[0],
            (x[0], out[2], out[3], x[1]), ResizeAttrs((out[2], out[3]), align, half), NHWC)


# ONNX Resize(linear) coordinate modes TFLite's RESIZE_BILINEAR computes the same way:
# mode -> (align_corners, half_pixel_centers)
_LINEAR_MODES = {"asymmetric": (False, False), "half_pixel": (False, True),
                 "pytorch_half_pixel": (False, True), "align_corners": (True, False)}


def _resize_bilinear(cx: _Cx, node: Any, x: tuple[int, ...], out: list[int], ctm: str,
                     scales: np.ndarray | None) -> None:
    if out[:2] != list(x[:2]) or min(out) < 1:
        raise _Unsupported(f"resize of N or C ({list(x)} -> {out})")
    if ctm not in _LINEAR_MODES or ctm == "pytorch_half_pixel" and min(out[2:]) < 2:
        raise _Unsupported(f"linear resize with coordinate_transformation_mode {ctm!r} "
                           "(TFLite's bilinear resize maps coordinates otherwise)")
    if scales is not None and scales.size and ctm != "align_corners" and any(
            np.float32(o) / np.float32(i) != np.float32(s)
            for i, o, s in zip(x[2:], out[2:], scales.reshape(-1)[2:])):
        raise _Unsupported(f"scales {scales.reshape(-1).tolist()} are not out/in: ONNX "
                           "divides by them, TFLite by the size ratio")
    align, half = _LINEAR_MODES[ctm]
    cx.emit(Op.RESIZE_BILINEAR, [cx.nhwc(node.input[0])], node.output[0],
            (x[0], out[2], out[3], x[1]), ResizeAttrs((out[2], out[3]), align, half), NHWC)


def import_swish(cx: _Cx, node: Any) -> None:
    """Swish / SiLU (opset 24): x * sigmoid(alpha * x) as LOGISTIC and MUL, the int8 ops the
    TFLite converter uses for it (torch's SiLU arrives as Sigmoid and Mul already)."""
    v = cx.vals[node.input[0]]
    shape = cx.g.tensors[v.ir].shape
    out = node.output[0]
    alpha = float(cx.attr(node, "alpha", 1.0))
    z = v.ir
    if alpha != 1.0:
        z = cx.temp(Op.MUL, [z, cx.add_const(np.array(alpha, np.float32), f"{out}__alpha")],
                    f"{out}__ax", shape, BinaryAttrs())
    s = cx.temp(Op.LOGISTIC, [z], f"{out}__sigmoid", shape, NoAttrs())
    cx.emit(Op.MUL, [v.ir, s], out, shape, BinaryAttrs(), v.perm)


def import_shape(cx: _Cx, node: Any) -> None:
    """Shape of a tensor with a static shape: a constant (the shape arithmetic after it folds)."""
    shp = np.array(cx.shape(node.input[0]), np.int64)
    cx.consts[node.output[0]] = shp[cx.attr(node, "start", 0):cx.attr(node, "end", None)]


def import_size(cx: _Cx, node: Any) -> None:
    cx.consts[node.output[0]] = np.array(int(np.prod(cx.shape(node.input[0]))), np.int64)


def import_neg(cx: _Cx, node: Any) -> None:
    v = cx.vals[node.input[0]]
    k = cx.add_const(np.array(-1.0, np.float32), f"{node.output[0]}__neg")
    cx.emit(Op.MUL, [v.ir, k], node.output[0], cx.g.tensors[v.ir].shape, BinaryAttrs(), v.perm)


def import_prelu(cx: _Cx, node: Any) -> None:
    """One slope: LEAKY_RELU. Per-channel slopes: PRELU with the slope as a constant
    broadcast to x in its held layout."""
    x, slope = node.input[0], cx.const(node.input[1], "slope").astype(np.float32)
    v = cx.vals[x]
    shape = cx.g.tensors[v.ir].shape
    if slope.size == 1:
        cx.emit(Op.LEAKY_RELU, [v.ir], node.output[0], shape,
                LeakyReluAttrs(float(slope.reshape(-1)[0])), v.perm)
        return
    out = node.output[0]
    onnx_shape = cx.shape(x)
    if cx.opset < 7 and slope.ndim == 1 and len(onnx_shape) > 2 and slope.size == onnx_shape[1]:
        slope = slope.reshape((-1,) + (1,) * (len(onnx_shape) - 2))   # PRelu-6: slope per C
    k = slope.reshape((1,) * (len(onnx_shape) - slope.ndim) + slope.shape)
    cx.emit(Op.PRELU, [v.ir, cx.add_const(k.transpose(v.perm), f"{out}__slope")], out, shape,
            NoAttrs(), v.perm)


def import_gather(cx: _Cx, node: Any) -> None:
    """Gather of an activation by constant indices (class token, patch or row selection)."""
    data, ind = node.input[0], node.input[1]
    if cx.is_const(data):
        raise _Unsupported("indices computed at run time (only constant indices)")
    idx = cx.const(ind, "indices").astype(np.int64)
    shp = cx.shape(data)
    axis = int(cx.attr(node, "axis", 0)) % len(shp)
    if ((idx < -shp[axis]) | (idx >= shp[axis])).any():
        raise _Unsupported(f"index out of range for dim {axis} of size {shp[axis]}")
    idx = np.where(idx < 0, idx + shp[axis], idx).astype(np.int32)
    out = node.output[0]
    k = cx.g.unique_name(f"{out}__idx")    # not add_const: a scalar index must stay 0-d
    cx.g.const(k, idx)
    v = cx.vals[data]
    if idx.ndim == 1:            # rank kept: gather in the held layout
        ir_axis = v.perm.index(axis)
        ir = list(cx.g.tensors[v.ir].shape)
        ir[ir_axis] = idx.size
        cx.emit(Op.GATHER, [v.ir, k], out, tuple(ir), GatherAttrs(ir_axis), v.perm)
        return
    shape = shp[:axis] + idx.shape + shp[axis + 1:]
    cx.emit(Op.GATHER, [cx.plain(data), k], out, shape, GatherAttrs(axis))


def _unary(op: Op, attrs: Callable[[_Cx, Any], Any] = lambda cx, n: NoAttrs()) -> Importer:
    def imp(cx: _Cx, node: Any) -> None:
        v = cx.vals[node.input[0]]
        cx.emit(op, [v.ir], node.output[0], cx.g.tensors[v.ir].shape, attrs(cx, node), v.perm)
    imp.__name__ = f"import_{op.lower()}"
    imp.op = op          # type: ignore[attr-defined]  # read by _TRANSPARENT
    return imp


def _clip_attrs(cx: _Cx, node: Any) -> ClipAttrs:
    lo, hi = cx.attr(node, "min", None), cx.attr(node, "max", None)
    if lo is None and cx.has(node, 1):
        lo = float(cx.const(node.input[1], "min"))
    if hi is None and cx.has(node, 2):
        hi = float(cx.const(node.input[2], "max"))
    return ClipAttrs(min=-np.inf if lo is None else float(lo),
                     max=np.inf if hi is None else float(hi))


def import_batchnorm(cx: _Cx, node: Any) -> None:
    if any(o in cx.used for o in node.output[1:]) or int(cx.attr(node, "training_mode", 0)):
        raise _Unsupported("training-mode BatchNormalization (running stats outputs)")
    x = node.input[0]
    r = len(cx.shape(x))
    if r < 2:
        raise _Unsupported(f"input rank {r}")
    params = [cx.const(node.input[i], what).astype(np.float32).reshape(-1)
              for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))]
    names = [cx.add_const(p, f"{node.output[0]}__{k}")
             for p, k in zip(params, ("scale", "bias", "mean", "var"))]
    perm = _chlast(r)
    xin = cx.layout(x, perm)
    cx.emit(Op.BATCHNORM, [xin] + names, node.output[0], cx.g.tensors[xin].shape,
            BatchNormAttrs(epsilon=float(cx.attr(node, "epsilon", 1e-5))), perm)


def import_lrn(cx: _Cx, node: Any) -> None:
    size = int(cx.attr(node, "size"))
    if size % 2 == 0:
        raise _Unsupported(f"even size {size} (asymmetric window) has no IR form")
    x = node.input[0]
    perm = _chlast(len(cx.shape(x)))
    xin = cx.layout(x, perm)
    cx.emit(Op.LRN, [xin], node.output[0], cx.g.tensors[xin].shape,
            LrnAttrs(radius=(size - 1) // 2, bias=float(cx.attr(node, "bias", 1.0)),
                     alpha=float(cx.attr(node, "alpha", 1e-4)) / size,
                     beta=float(cx.attr(node, "beta", 0.75))), perm)


def _reshape_groups(a: tuple[int, ...], b: tuple[int, ...]
                    ) -> list[tuple[list[int], list[int]]]:
    """Pair runs of non-1 input dims with the runs of non-1 output dims they become."""
    ia = [i for i, d in enumerate(a) if d != 1]
    ib = [j for j, d in enumerate(b) if d != 1]
    groups: list[tuple[list[int], list[int]]] = []
    ga: list[int] = []
    gb: list[int] = []
    pa = pb = 1
    while ia or ib:
        if pa <= pb and ia or not ib:
            i = ia.pop(0)
            ga.append(i)
            pa *= a[i]
        else:
            j = ib.pop(0)
            gb.append(j)
            pb *= b[j]
        if pa == pb and ga and gb:
            groups.append((ga, gb))
            ga, gb, pa, pb = [], [], 1, 1
    if ga or gb:
        raise _Unsupported(f"cannot reshape {list(a)} to {list(b)}")
    return groups


def _reshape_to(cx: _Cx, node: Any, new: tuple[int, ...]) -> None:
    """RESHAPE in the layout the value is held in: only the dims inside each merged/split
    group must be in ONNX order there, so at most a TRANSPOSE within groups is inserted
    (Flatten of NHWC: the (0,3,1,2) one the FC pass absorbs; a channel shuffle: only g,C/g)."""
    x, out = node.input[0], node.output[0]
    v = cx.vals[x]
    a = cx.shape(x)
    groups = _reshape_groups(a, new)
    ir_shape = cx.g.tensors[v.ir].shape
    ir_nz = [v.perm[k] for k in range(len(a)) if ir_shape[k] != 1]   # onnx dims, IR order
    group_of = {i: gi for gi, (ga, _) in enumerate(groups) for i in ga}
    want, placed = [], set()
    for i in ir_nz:
        if group_of[i] not in placed:
            placed.add(group_of[i])
            want += groups[group_of[i]][0]
    pos = {d: k for k, d in enumerate(v.perm)}                      # onnx dim -> IR position
    queue = [pos[i] for i in want]
    rel = tuple(k if ir_shape[k] == 1 else queue.pop(0) for k in range(len(a)))
    src = cx.relayout(v.ir, rel)
    out_nz = [j for i in want if i == groups[group_of[i]][0][0] for j in groups[group_of[i]][1]]
    r = len(new)
    perm = None
    for cand in ([NHWC] if r == 4 else []) + [_ident(r)]:
        if [d for d in cand if new[d] != 1] == out_nz:
            perm = cand
            break
    if perm is None:
        perm = tuple([j for j in range(r) if new[j] == 1] + out_nz)
    shape = tuple(new[d] for d in perm)
    cx.emit(Op.RESHAPE, [src], out, shape, ReshapeAttrs(shape), perm)


def import_reshape(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    spec = [int(d) for d in cx.const(node.input[1], "shape").reshape(-1)]
    allow0 = int(cx.attr(node, "allowzero", 0))
    shape = [x[i] if d == 0 and not allow0 else d for i, d in enumerate(spec)]
    n = int(np.prod(x, dtype=np.int64))
    if shape.count(-1) == 1:
        rest = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        shape[shape.index(-1)] = n // rest if rest else 0
    if shape.count(-1) or int(np.prod(shape, dtype=np.int64)) != n:
        raise _Unsupported(f"cannot reshape {list(x)} to {spec}")
    _reshape_to(cx, node, tuple(shape))


def import_flatten(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    axis = int(cx.attr(node, "axis", 1)) % (len(x) + 1) if x else 0
    _reshape_to(cx, node, (int(np.prod(x[:axis])), int(np.prod(x[axis:]))))


def _axes(cx: _Cx, node: Any, rank: int) -> list[int] | None:
    axes = cx.attr(node, "axes", None)
    if axes is None and cx.has(node, 1):
        axes = cx.const(node.input[1], "axes").reshape(-1).tolist()
    return None if axes is None else sorted(int(a) % rank for a in axes)


def import_squeeze(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    axes = _axes(cx, node, len(x))
    if axes is None:
        axes = [i for i, d in enumerate(x) if d == 1]
    if any(x[a] != 1 for a in axes):
        raise _Unsupported(f"squeeze of a non-1 dim: axes {axes} of {list(x)}")
    v = cx.vals[node.input[0]]
    # dropping size-1 dims keeps the data order: reshape in whatever layout the value has
    left = [p for p in v.perm if p not in axes]
    perm = tuple(int(i) for i in np.argsort(np.argsort(left)))
    ir_shape = tuple(d for i, d in enumerate(cx.g.tensors[v.ir].shape) if v.perm[i] not in axes)
    cx.emit(Op.RESHAPE, [v.ir], node.output[0], ir_shape, ReshapeAttrs(ir_shape), perm)


def import_unsqueeze(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    axes = _axes(cx, node, len(x) + len(cx.attr(node, "axes", None) or
                                          cx.consts.get(node.input[-1], np.zeros(0)).reshape(-1)))
    if axes is None:
        raise _Unsupported("missing axes")
    out = list(x)
    for a in axes:
        out.insert(a, 1)
    _reshape_to(cx, node, tuple(out))


def import_transpose(cx: _Cx, node: Any) -> None:
    """No node: the output is the same IR tensor under another `perm`; a consumer that needs
    some other layout gets one TRANSPOSE then (so NHWC->NCHW->NHWC pairs cost nothing)."""
    x = node.input[0]
    r = len(cx.shape(x))
    q = tuple(int(i) for i in cx.attr(node, "perm", list(range(r))[::-1]))
    v = cx.vals[x]
    inv = _inv(v.perm)
    base = tuple(inv[i] for i in q)      # out_onnx = ir.transpose(base)
    cx.vals[node.output[0]] = _Val(v.ir, _inv(base))


def import_concat(cx: _Cx, node: Any) -> None:
    shapes = [cx.shape(i) for i in node.input]
    r = len(shapes[0])
    axis = int(cx.attr(node, "axis")) % r
    perm = _common_perm(cx, list(node.input), r)
    ins = [cx.layout(i, perm) for i in node.input]
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    cx.emit(Op.CONCAT, ins, node.output[0], tuple(out[i] for i in perm),
            ConcatAttrs(axis=perm.index(axis)), perm)


def import_pad(cx: _Cx, node: Any) -> None:
    x = cx.shape(node.input[0])
    r = len(x)
    mode = cx.attr(node, "mode", "constant")
    if mode != "constant":
        raise _Unsupported(f"mode {mode!r} (only 'constant')")
    pads = cx.attr(node, "pads", None)
    if pads is None:
        pads = cx.const(node.input[1], "pads").reshape(-1).tolist()
    value = cx.attr(node, "value", 0.0)
    if cx.has(node, 2):
        value = float(cx.const(node.input[2], "constant_value").reshape(-1)[0])
    if cx.has(node, 3):   # opset 18 axes: pads only along these
        axes = [int(a) % r for a in cx.const(node.input[3], "axes").reshape(-1)]
        full = [0] * (2 * r)
        for k, a in enumerate(axes):
            full[a], full[a + r] = pads[k], pads[k + len(axes)]
        pads = full
    pads = [int(p) for p in pads]
    if min(pads) < 0:
        raise _Unsupported(f"negative pads {pads} (cropping)")
    perm = cx.vals[node.input[0]].perm    # pad in whatever layout the value is held
    xin = cx.vals[node.input[0]].ir
    per_dim = tuple((pads[p], pads[p + r]) for p in perm)
    out = tuple(x[p] + pads[p] + pads[p + r] for p in perm)
    cx.emit(Op.PAD, [xin], node.output[0], out, PadAttrs(pads=per_dim, value=float(value)), perm)


def import_softmax(cx: _Cx, node: Any) -> None:
    x = node.input[0]
    shp = cx.shape(x)
    r = len(shp)
    legacy = cx.opset < 13
    axis = int(cx.attr(node, "axis", 1 if legacy else -1)) % r
    if legacy:   # softmax over the flattened dims axis..r-1: one real axis, or reshape
        real = [i for i in range(axis, r) if shp[i] != 1]
        if len(real) > 1:
            rows = int(np.prod(shp[:axis]))
            cols = int(np.prod(shp[axis:]))
            flat = cx.temp(Op.RESHAPE, [cx.plain(x)], f"{node.output[0]}__2d", (rows, cols),
                           ReshapeAttrs((rows, cols)))
            sm = cx.temp(Op.SOFTMAX, [flat], f"{node.output[0]}__sm", (rows, cols),
                         SoftmaxAttrs(axis=1))
            cx.emit(Op.RESHAPE, [sm], node.output[0], shp, ReshapeAttrs(shp))
            return
        axis = real[0] if real else r - 1
    v = cx.vals[x]
    cx.emit(Op.SOFTMAX, [v.ir], node.output[0], cx.g.tensors[v.ir].shape,
            SoftmaxAttrs(axis=v.perm.index(axis)), v.perm)


def import_layernorm(cx: _Cx, node: Any) -> None:
    """LayerNormalization as the TFLite converter decomposes it, every op with an int8 form:
    d = x - MEAN(x); y = d * RSQRT(MEAN(SQUARED_DIFFERENCE(x, mean)) + eps) * scale + B."""
    if any(o in cx.used for o in node.output[1:]):
        raise _Unsupported("the Mean / InvStdDev outputs are not supported")
    x, out = node.input[0], node.output[0]
    r = len(cx.shape(x))
    axis = int(cx.attr(node, "axis", -1)) % r
    v = cx.vals[x]
    shape = cx.g.tensors[v.ir].shape
    axes = tuple(sorted(v.perm.index(a) for a in range(axis, r)))
    red = tuple(1 if i in axes else d for i, d in enumerate(shape))
    eps = cx.add_const(np.array(float(cx.attr(node, "epsilon", 1e-5)), np.float32), f"{out}__eps")
    mean = cx.temp(Op.MEAN, [v.ir], f"{out}__mean", red, MeanAttrs(axes, True))
    diff = cx.temp(Op.SUB, [v.ir, mean], f"{out}__centered", shape, BinaryAttrs())
    sq = cx.temp(Op.SQUARED_DIFFERENCE, [v.ir, mean], f"{out}__sq", shape, NoAttrs())
    var = cx.temp(Op.MEAN, [sq], f"{out}__var", red, MeanAttrs(axes, True))
    var_eps = cx.temp(Op.ADD, [var, eps], f"{out}__var_eps", red, BinaryAttrs())
    inv = cx.temp(Op.RSQRT, [var_eps], f"{out}__inv_std", red, NoAttrs())
    y = cx.temp(Op.MUL, [diff, inv], f"{out}__normed", shape, BinaryAttrs())
    gamma = cx.layout(node.input[1], v.perm)
    if cx.has(node, 2):
        y = cx.temp(Op.MUL, [y, gamma], f"{out}__scaled", shape, BinaryAttrs())
        cx.emit(Op.ADD, [y, cx.layout(node.input[2], v.perm)], out, shape, BinaryAttrs(),
                v.perm)
    else:
        cx.emit(Op.MUL, [y, gamma], out, shape, BinaryAttrs(), v.perm)


def import_pow(cx: _Cx, node: Any) -> None:
    """x^2 -> MUL(x, x); x^0.5 -> SQRT (the exponents of decomposed norms)."""
    e = float(cx.const(node.input[1], "exponent").reshape(-1)[0])
    v = cx.vals[node.input[0]]
    shape = cx.g.tensors[v.ir].shape
    if e == 2.0:
        cx.emit(Op.MUL, [v.ir, v.ir], node.output[0], shape, BinaryAttrs(), v.perm)
    elif e == 0.5:
        cx.emit(Op.SQRT, [v.ir], node.output[0], shape, NoAttrs(), v.perm)
    else:
        raise _Unsupported(f"exponent {e} (only 2 and 0.5)")


def _gelu_attrs(cx: _Cx, node: Any) -> GeluAttrs:
    return GeluAttrs(approximate=cx.attr(node, "approximate", "none") == "tanh")


def _scalar_consts(nodes: list[Any], consts: dict[str, np.ndarray]) -> dict[str, float]:
    """Scalar values of initializers and Constant nodes (for pattern matching)."""
    from onnx import numpy_helper
    out = {k: float(v.reshape(-1)[0]) for k, v in consts.items() if v.size == 1
           and v.dtype.kind in "fiu"}
    for n in nodes:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and np.prod(a.t.dims, dtype=np.int64) == 1:
                    v = numpy_helper.to_array(a.t)
                    if v.dtype.kind in "fiu":
                        out[n.output[0]] = float(v.reshape(-1)[0])
                elif a.name == "value_float":
                    out[n.output[0]] = float(a.f)
    return out


def fuse_erf_gelu(nodes: list[Any], consts: dict[str, np.ndarray]) -> list[Any]:
    """x * 0.5 * (1 + Erf(x / sqrt(2))) in any Mul order (torch.onnx's GELU before opset 20)
    -> one Gelu node: Erf alone has no int8 form, GELU has one in TFLite."""
    from onnx import helper
    k = _scalar_consts(nodes, consts)
    prod = {o: n for n in nodes for o in n.output}
    uses: dict[str, list[Any]] = {}
    for n in nodes:
        for i in n.input:
            uses.setdefault(i, []).append(n)

    def near(name: str, v: float) -> bool:
        return name in k and abs(k[name] - v) <= 1e-4 * abs(v)

    def other(n: Any, name: str) -> str | None:
        ins = list(n.input)
        return ins[1 - ins.index(name)] if len(ins) == 2 and name in ins else None

    def only_use(name: str, op: str) -> Any:
        us = uses.get(name, [])
        return us[0] if len(us) == 1 and us[0].op_type == op else None

    drop, new = set(), {}
    for e in nodes:
        if e.op_type != "Erf" or e.input[0] not in prod:
            continue
        d = prod[e.input[0]]
        if d.op_type == "Div" and near(d.input[1], 2 ** 0.5):
            x = d.input[0]
        elif d.op_type == "Mul" and any(near(i, 2 ** -0.5) for i in d.input):
            x = d.input[0] if near(d.input[1], 2 ** -0.5) else d.input[1]
        else:
            continue
        add = only_use(e.output[0], "Add")
        if add is None or not near(other(add, e.output[0]) or "", 1.0):
            continue
        m1 = only_use(add.output[0], "Mul")
        if m1 is None:
            continue
        a = other(m1, add.output[0])
        chain = [d, e, add, m1]
        if a == x:                                   # (x * (1 + erf)) * 0.5
            m2 = only_use(m1.output[0], "Mul")
            if m2 is None or not near(other(m2, m1.output[0]) or "", 0.5):
                continue
            chain.append(m2)
            out = m2.output[0]
        elif a in prod and prod[a].op_type == "Mul" and x in prod[a].input and \
                near(other(prod[a], x) or "", 0.5) and len(uses.get(a, [])) == 1:
            chain.append(prod[a])                    # (x * 0.5) * (1 + erf)
            out = m1.output[0]
        else:
            continue
        if len(uses.get(d.output[0], [])) != 1:
            continue
        drop.update(id(n) for n in chain)
        new[id(chain[-1])] = helper.make_node("Gelu", [x], [out], name=f"{e.name}_gelu")
    return [new.get(id(n), n) for n in nodes if id(n) not in drop or id(n) in new]


# ---------------------------------------------------------------- recurrent layers, unrolled
class _Rnn:
    """One ONNX LSTM / GRU unrolled over its (static) time steps into FC, ADD, SUB, MUL,
    LOGISTIC, TANH, GATHER, RESHAPE and CONCAT: exact in float, and every op has an int8
    TFLite builtin that TFLM and LiteRT run (no UNIDIRECTIONAL_SEQUENCE_LSTM kernel here)."""

    def __init__(self, cx: _Cx, node: Any, n_gates: int):
        self.cx, self.node, self.out = cx, node, node.output[0] or node.name or "rnn"
        if cx.attr(node, "direction", "forward") == "bidirectional":
            raise _Unsupported("bidirectional (run two layers: forward and reverse)")
        if cx.attr(node, "clip", None) is not None or cx.attr(node, "activations", None):
            raise _Unsupported("clip / custom activations")
        if int(cx.attr(node, "input_forget", 0)):
            raise _Unsupported("input_forget")
        if int(cx.attr(node, "layout", 0)):
            raise _Unsupported("layout 1 (batch-major; onnxruntime has no kernel for it either)")
        x = node.input[0]
        self.t, self.b, i = cx.shape(x)
        if cx.has(node, 4) and not (cx.const(node.input[4], "sequence_lens") == self.t).all():
            raise _Unsupported("sequence_lens shorter than the sequence")
        self.h = int(cx.attr(node, "hidden_size"))
        g = n_gates
        self.w = cx.const(node.input[1], "W").astype(np.float32)[0].reshape(g, self.h, i)
        self.r = cx.const(node.input[2], "R").astype(np.float32)[0].reshape(g, self.h, self.h)
        bias = (cx.const(node.input[3], "B").astype(np.float32)[0] if cx.has(node, 3)
                else np.zeros(2 * g * self.h, np.float32))
        self.wb, self.rb = bias[:g * self.h].reshape(g, -1), bias[g * self.h:].reshape(g, -1)
        xin = cx.plain(x)                                               # [T, B, I]
        self.xflat = cx.relayout_reshape(xin, (self.t * self.b, i))
        self.reverse = cx.attr(node, "direction", "forward") == "reverse"
        self.k = 0

    def name(self, what: str) -> str:
        self.k += 1
        return f"{self.out}__{what}{self.k}"

    def const(self, data: np.ndarray, what: str) -> str:
        return self.cx.add_const(np.asarray(data, np.float32), f"{self.out}__{what}")

    def op(self, op: Op, ins: list[str], what: str, attrs: Any = None) -> str:
        shape = (self.b, self.h)
        return self.cx.temp(op, ins, self.name(what), shape, attrs or
                            (BinaryAttrs() if op in (Op.ADD, Op.SUB, Op.MUL) else NoAttrs()))

    def state(self, k: int) -> np.ndarray | str | None:
        """Initial state input k (5: h, 6: c) as an IR activation, a constant, or None (0)."""
        if not self.cx.has(self.node, k):
            return None
        name = self.node.input[k]
        if self.cx.is_const(name):
            v = self.cx.consts[name].astype(np.float32).reshape(self.b, self.h)
            return None if not v.any() else v
        return self.cx.relayout_reshape(self.cx.plain(name), (self.b, self.h))

    def inputs(self, gate: int, bias: np.ndarray) -> str:
        """All time steps' input projection of one gate: FC over [T*B, I] -> [T, B, H]."""
        y = self.cx.temp(Op.FC, [self.xflat, self.const(self.w[gate], "w"),
                                 self.const(bias, "b")], self.name("xproj"),
                         (self.t * self.b, self.h), FcAttrs())
        return self.cx.relayout_reshape(y, (self.t, self.b, self.h))

    def step_input(self, proj: str, t: int) -> str:
        idx = self.cx.g.unique_name(f"{self.out}__t{t}")
        self.cx.g.const(idx, np.array(t, np.int32))
        return self.op(Op.GATHER, [proj, idx], "x", GatherAttrs(0))

    def tensor(self, v: str | np.ndarray, what: str) -> str:
        return v if isinstance(v, str) else self.const(v, what)

    def rec(self, h: str | np.ndarray, gate: int, bias: np.ndarray | None = None) -> str:
        """R_gate h (+ bias): an FC of an activation h, a constant for a constant h."""
        if not isinstance(h, str):
            v = h @ self.r[gate].T + (0 if bias is None else bias)
            return self.const(v, "rh0")
        b = self.const(bias, "rb") if bias is not None else ""
        return self.op(Op.FC, [h, self.const(self.r[gate], "r"), b], "rec", FcAttrs())

    def pre(self, x: str, h: str | np.ndarray | None, gate: int) -> str:
        return x if h is None else self.op(Op.ADD, [x, self.rec(h, gate)], "pre")

    def order(self) -> list[int]:
        return list(range(self.t))[::-1] if self.reverse else list(range(self.t))

    def finish(self, hs: dict[int, str], last: dict[str, str]) -> None:
        """Y [T, 1, B, H] (time order), Y_h / Y_c [1, B, H] for the outputs in use."""
        cx, node = self.cx, self.node
        if node.output[0] and node.output[0] in cx.used:
            parts = [cx.relayout_reshape(hs[t], (1, 1, self.b, self.h)) for t in range(self.t)]
            while len(parts) > 10:     # TFLM's CONCATENATION takes at most 10 inputs
                parts = [self._concat(parts[i:i + 10]) for i in range(0, len(parts), 10)]
            y = parts[0] if len(parts) == 1 else self._concat(parts)
            shape = (self.t, 1, self.b, self.h)
            cx.emit(Op.RESHAPE, [y], node.output[0], shape, ReshapeAttrs(shape))
        for k, key in ((1, "h"), (2, "c")):
            if len(node.output) > k and node.output[k] and node.output[k] in cx.used:
                shape = (1, self.b, self.h)
                cx.emit(Op.RESHAPE, [last[key]], node.output[k], shape, ReshapeAttrs(shape))

    def _concat(self, parts: list[str]) -> str:
        n = sum(self.cx.g.tensors[p].shape[0] for p in parts)
        return self.cx.temp(Op.CONCAT, parts, self.name("y"), (n, 1, self.b, self.h),
                            ConcatAttrs(axis=0))


def _fused_lstm(cx: _Cx, node: Any) -> bool:
    """An ONNX LSTM as fused LSTM nodes (TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM) when that op
    can say it: default activations, no clip / input_forget / peepholes, full sequence_lens,
    constant (or absent) initial states, Y_c unused; layout 0 ([T, B, I], time-major) or 1
    (batch-first). A reverse direction runs on the time-reversed sequence (constant GATHERs
    before and after); bidirectional is both, concatenated as ONNX's Y / Y_h lay them out.
    Returns False to leave the LSTM to the exact unrolling."""
    direction = cx.attr(node, "direction", "forward")
    if (direction not in ("forward", "reverse", "bidirectional")
            or cx.attr(node, "clip", None) is not None or int(cx.attr(node, "input_forget", 0))
            or [a.lower() for a in (cx.attr(node, "activations", None) or [])] not in (
                [], ["sigmoid", "tanh", "tanh"] * (2 if direction == "bidirectional" else 1))
            or cx.has(node, 7) or any(cx.has(node, k) and not cx.is_const(node.input[k])
                                      for k in (1, 2, 3, 5, 6))
            or (len(node.output) > 2 and node.output[2] and node.output[2] in cx.used)):
        return False
    layout = int(cx.attr(node, "layout", 0))
    shp = cx.shape(node.input[0])
    if len(shp) != 3 or layout not in (0, 1):
        return False
    (t, b, i), hsz = ((shp[0], shp[1], shp[2]) if layout == 0 else (shp[1], shp[0], shp[2]),
                      int(cx.attr(node, "hidden_size")))
    if cx.has(node, 4) and not (cx.const(node.input[4], "sequence_lens") == t).all():
        return False
    out = node.output[0] or node.name or "lstm"
    dirs = 2 if direction == "bidirectional" else 1
    w = cx.const(node.input[1], "W").astype(np.float32).reshape(dirs, 4, hsz, i)
    r = cx.const(node.input[2], "R").astype(np.float32).reshape(dirs, 4, hsz, hsz)
    bias = (cx.const(node.input[3], "B").astype(np.float32) if cx.has(node, 3)
            else np.zeros((dirs, 8 * hsz), np.float32)).reshape(dirs, 2, 4, hsz).sum(axis=1)
    taxis = 0 if layout == 0 else 1
    y_shape = (t, b, hsz) if layout == 0 else (b, t, hsz)
    x = cx.plain(node.input[0])
    rev = cx.add_const(np.arange(t - 1, -1, -1, dtype=np.int32), f"{out}__rev")
    raw, seqs = [], []
    for d in range(dirs):
        backward = direction == "reverse" or d == 1
        ins = [""] * 24
        ins[0] = (cx.temp(Op.GATHER, [x, rev], f"{out}__xrev", cx.g.tensors[x].shape,
                          GatherAttrs(taxis)) if backward else x)
        # TFLite's gate order i, f, c, o; ONNX's is i, o, f, c
        for k, g in enumerate((0, 2, 3, 1)):
            ins[1 + k] = cx.add_const(w[d, g], f"{out}__w{'ifco'[k]}{d}")
            ins[5 + k] = cx.add_const(r[d, g], f"{out}__r{'ifco'[k]}{d}")
            ins[12 + k] = cx.add_const(bias[d, g], f"{out}__b{'ifco'[k]}{d}")
        for k, onnx_k in ((18, 5), (19, 6)):
            v = (cx.consts[node.input[onnx_k]].astype(np.float32).reshape(dirs, b, hsz)[d]
                 if cx.has(node, onnx_k) else np.zeros((b, hsz), np.float32))
            ins[k] = cx.add_const(v, f"{out}__{'hc'[k - 18]}0{d}")
        y = cx.temp(Op.LSTM, ins, f"{out}__lstm", y_shape, LstmAttrs(time_major=layout == 0))
        raw.append(y)
        seqs.append(cx.temp(Op.GATHER, [y, rev], f"{out}__yrev", y_shape, GatherAttrs(taxis))
                    if backward else y)

    def joined(parts: list[str], shape: tuple[int, ...], axis: int, value: str) -> None:
        if len(parts) == 1:
            cx.emit(Op.RESHAPE, parts, value, shape, ReshapeAttrs(shape))
            return
        cx.emit(Op.CONCAT, parts, value, shape, ConcatAttrs(axis=axis))
    if node.output[0] and node.output[0] in cx.used:      # Y: [T, D, B, H] / [B, T, D, H]
        one = (t, 1, b, hsz) if layout == 0 else (b, t, 1, hsz)
        parts = [cx.temp(Op.RESHAPE, [s_], f"{out}__y1", one, ReshapeAttrs(one)) for s_ in seqs]
        joined(parts, (t, dirs, b, hsz) if layout == 0 else (b, t, dirs, hsz), 1 + layout,
               node.output[0])
    if len(node.output) > 1 and node.output[1] and node.output[1] in cx.used:
        begin = (t - 1, 0, 0) if layout == 0 else (0, t - 1, 0)   # each direction's last step
        last = (1, b, hsz) if layout == 0 else (b, 1, hsz)
        parts = [cx.temp(Op.STRIDED_SLICE, [y], f"{out}__h", last,
                         StridedSliceAttrs(begin, y_shape, (1, 1, 1))) for y in raw]
        joined(parts, (dirs, b, hsz) if layout == 0 else (b, dirs, hsz), layout, node.output[1])
    return True


def import_lstm(cx: _Cx, node: Any) -> None:
    """ONNX LSTM (gates i, o, f, c): c = f*c + i*tanh(.), h = o*tanh(c). As one fused LSTM
    node where it can be (_fused_lstm), else unrolled: a zero initial state drops its terms,
    a constant one becomes constant operands."""
    if _fused_lstm(cx, node):
        return
    rn = _Rnn(cx, node, 4)
    if cx.has(node, 7):
        raise _Unsupported("peepholes")
    h, c = rn.state(5), rn.state(6)
    proj = [rn.inputs(g, rn.wb[g] + rn.rb[g]) for g in range(4)]
    hs: dict[int, str] = {}
    for t in rn.order():
        i, o, f, cc = (rn.pre(rn.step_input(proj[g], t), h, g) for g in range(4))
        i, o, f = (rn.op(Op.LOGISTIC, [v], "sig") for v in (i, o, f))
        ic = rn.op(Op.MUL, [i, rn.op(Op.TANH, [cc], "tanh")], "ic")
        c = ic if c is None else rn.op(
            Op.ADD, [rn.op(Op.MUL, [f, rn.tensor(c, "c0")], "fc"), ic], "c")
        h = hs[t] = rn.op(Op.MUL, [o, rn.op(Op.TANH, [c], "tanh")], "h")
    rn.finish(hs, {"h": h, "c": c})


def import_gru(cx: _Cx, node: Any) -> None:
    """ONNX GRU (gates z, r, h), linear_before_reset 1 (torch) or 0, unrolled:
    n = tanh(x_n + r*(R_n h + Rb_n)) or tanh(x_n + R_n (r*h) + Rb_n); h = n + z*(h - n)."""
    rn = _Rnn(cx, node, 3)
    lbr = int(cx.attr(node, "linear_before_reset", 0))
    h = rn.state(5)
    proj = [rn.inputs(0, rn.wb[0] + rn.rb[0]), rn.inputs(1, rn.wb[1] + rn.rb[1]),
            rn.inputs(2, rn.wb[2] if lbr else rn.wb[2] + rn.rb[2])]
    hs: dict[int, str] = {}
    for t in rn.order():
        z = rn.op(Op.LOGISTIC, [rn.pre(rn.step_input(proj[0], t), h, 0)], "z")
        r = rn.op(Op.LOGISTIC, [rn.pre(rn.step_input(proj[1], t), h, 1)], "r")
        xn = rn.step_input(proj[2], t)
        if lbr:
            rec = rn.const(rn.rb[2], "rbn") if h is None else rn.rec(h, 2, rn.rb[2])
            gated = rn.op(Op.MUL, [r, rec], "rh")
        elif h is None:
            gated = None
        else:
            rh = rn.op(Op.MUL, [r, rn.tensor(h, "h0")], "rh")
            gated = rn.op(Op.FC, [rh, rn.const(rn.r[2], "r"), ""], "rec", FcAttrs())
        n = rn.op(Op.TANH, [xn if gated is None else rn.op(Op.ADD, [xn, gated], "pre")], "n")
        if h is None:
            h = rn.op(Op.SUB, [n, rn.op(Op.MUL, [z, n], "zn")], "h")
        else:
            d = rn.op(Op.SUB, [rn.tensor(h, "h0"), n], "d")
            h = rn.op(Op.ADD, [n, rn.op(Op.MUL, [z, d], "zd")], "h")
        hs[t] = h
    rn.finish(hs, {"h": h})


def import_identity(cx: _Cx, node: Any) -> None:
    if len(node.output) > 1 and node.output[1] in cx.used:
        raise _Unsupported("the Dropout mask output is not supported")
    cx.vals[node.output[0]] = cx.vals[node.input[0]]


IMPORTERS: dict[str, Importer] = {
    "Conv": import_conv,
    "Gemm": import_gemm,
    "MatMul": import_matmul,
    "Add": import_binary,
    "Sub": import_binary,
    "Mul": import_binary,
    "Div": import_binary,
    "Sum": import_sum,
    "Relu": _unary(Op.RELU),
    "Clip": _unary(Op.CLIP, _clip_attrs),
    "LeakyRelu": _unary(Op.LEAKY_RELU,
                        lambda cx, n: LeakyReluAttrs(float(cx.attr(n, "alpha", 0.01)))),
    "Sigmoid": _unary(Op.LOGISTIC),
    "Tanh": _unary(Op.TANH),
    "HardSigmoid": _unary(Op.HARD_SIGMOID,
                          lambda cx, n: HardSigmoidAttrs(float(cx.attr(n, "alpha", 0.2)),
                                                         float(cx.attr(n, "beta", 0.5)))),
    "HardSwish": _unary(Op.HARD_SWISH),
    "BatchNormalization": import_batchnorm,
    "LRN": import_lrn,
    "MaxPool": import_maxpool,
    "AveragePool": import_avgpool,
    "GlobalAveragePool": import_global_avgpool,
    "GlobalMaxPool": import_global_maxpool,
    "PRelu": import_prelu,
    "Max": import_max_min,
    "Min": import_max_min,
    "Neg": import_neg,
    "ReduceMean": import_reduce_mean,
    "ReduceSum": import_reduce_mean,
    "ReduceMax": import_reduce_mean,
    "ReduceMin": import_reduce_mean,
    "Flatten": import_flatten,
    "Reshape": import_reshape,
    "Transpose": import_transpose,
    "Squeeze": import_squeeze,
    "Unsqueeze": import_unsqueeze,
    "Concat": import_concat,
    "Pad": import_pad,
    "Softmax": import_softmax,
    "Dropout": import_identity,
    "Identity": import_identity,
    "Slice": import_slice,
    "Split": import_split,
    "Resize": import_resize,
    "Upsample": import_resize,
    "Shape": import_shape,
    "Swish": import_swish,
    "Size": import_size,
    "Sqrt": _unary(Op.SQRT),
    "Exp": _unary(Op.EXP),
    "Gelu": _unary(Op.GELU, _gelu_attrs),
    "LayerNormalization": import_layernorm,
    "Gather": import_gather,
    "ConvTranspose": import_conv_transpose,
    "LSTM": import_lstm,
    "GRU": import_gru,
    "Pow": import_pow,
}


# ---------------------------------------------------------------- constant folding at import
def _fold_unsqueeze(cx: _Cx, node: Any, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    x = ins[0]
    axes = cx.attr(node, "axes", None)
    if axes is None:
        axes = ins[1].reshape(-1).tolist()
    r = x.ndim + len(axes)
    out = x
    for a in sorted(int(a) % r for a in axes):
        out = np.expand_dims(out, a)
    return [out]


def _fold_constant_of_shape(cx: _Cx, node: Any, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    from onnx import numpy_helper
    t = None
    for a in node.attribute:
        if a.name == "value":
            t = numpy_helper.to_array(a.t)
    fill = t.reshape(-1)[0] if t is not None else np.float32(0)
    shape = tuple(int(d) for d in ins[0].reshape(-1))
    if any(d < 0 for d in shape) or math.prod(shape) > FOLD_MAX_ELEMENTS:   # before allocating
        raise _Unsupported(f"ConstantOfShape {list(shape)}: at most {FOLD_MAX_ELEMENTS:,} "
                           "elements are folded")
    return [np.full(shape, fill, dtype=np.asarray(fill).dtype)]


# hot paths; anything else with all-constant inputs goes through onnx.reference
FOLDERS: dict[str, Callable[[_Cx, Any, list], list[np.ndarray]]] = {
    "Unsqueeze": _fold_unsqueeze,
    "ConstantOfShape": _fold_constant_of_shape,
    "Identity": lambda cx, n, ins: [ins[0]],
}


# constant folding runs the file's own subgraphs (Loop, Scan, If) and shape arithmetic: a
# node gets this much CPU time (ours, so a busy machine fails no import) and may make this
# many elements, else it stays unfolded and is reported
FOLD_SECONDS = 2.0
FOLD_MAX_ELEMENTS = 1 << 26


class _Deadline(Exception):
    """Raised inside onnx.reference when a fold runs past FOLD_SECONDS."""


@contextmanager
def _time_budget(seconds: float) -> Iterator[None]:
    """Raise _Deadline in this thread's Python code once it has used `seconds` of CPU time (a
    profile hook on calls: works in any thread; onnx.reference's loops are Python calls)."""
    end = time.thread_time() + seconds
    old = sys.getprofile()
    if old is not None:     # a profiler (cProfile) owns the hook: setprofile(old) cannot
        yield               # put a C profiler back, so fold without the budget
        return

    def check(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and time.thread_time() > end:
            sys.setprofile(old)
            raise _Deadline
    sys.setprofile(check)
    try:
        yield
    finally:
        sys.setprofile(old)


def _fold(cx: _Cx, node: Any, opset_imports: list[Any]) -> list[np.ndarray]:
    try:
        outs = _fold_node(cx, node, opset_imports)
    except _Deadline:
        raise _Unsupported(f"constant folding stopped after {FOLD_SECONDS:g} s (a loop or "
                           "shape computation this large is not folded)") from None
    except MemoryError:
        raise _Unsupported("constant folding would need more memory than the host has") from None
    n = sum(int(np.asarray(o).size) for o in outs)
    if n > FOLD_MAX_ELEMENTS:
        raise _Unsupported(f"constant folding made {n:,} elements (at most "
                           f"{FOLD_MAX_ELEMENTS:,} are folded)")
    return outs


def _fold_node(cx: _Cx, node: Any, opset_imports: list[Any]) -> list[np.ndarray]:
    ins = [cx.consts[i] if i else None for i in node.input]
    if node.op_type in FOLDERS:
        return FOLDERS[node.op_type](cx, node, ins)
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    feeds = {f"i{k}": v for k, v in enumerate(ins) if v is not None}
    n2 = helper.make_node(node.op_type, [f"i{k}" if v is not None else "" for k, v in
                                         enumerate(ins)],
                          [f"o{k}" for k in range(len(node.output))], domain=node.domain)
    n2.attribute.extend(node.attribute)
    g = helper.make_graph([n2], "fold", [helper.make_tensor_value_info(k, 1, None)
                                         for k in feeds], [helper.make_tensor_value_info(
                                             f"o{k}", 1, None) for k in range(len(node.output))])
    m = helper.make_model(g, opset_imports=opset_imports)
    ev = ReferenceEvaluator(m)           # loads its op modules: not the node's time
    with _time_budget(FOLD_SECONDS):
        return [np.asarray(o) for o in ev.run(None, feeds)]


# ---------------------------------------------------------------- file -> IR
def _load_model(path: str) -> Any:
    import onnx
    from onnx import external_data_helper
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises a zoo of types on corrupt bytes
        raise ModelError(path, f"not a readable ONNX protobuf ({type(e).__name__}: {e})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(path, "not a readable ONNX model (empty graph)")
    base = Path(path).resolve().parent
    for t in external_data_helper._get_all_tensors(model):
        if external_data_helper.uses_external_data(t):
            info = external_data_helper.ExternalDataInfo(t)
            f = base / info.location
            if not f.is_file():
                raise ModelError(path, f"external data file {info.location!r} for tensor "
                                       f"{t.name!r} not found (looked in {base})")
    try:
        external_data_helper.load_external_data_for_model(model, str(base))
    except Exception as e:  # noqa: BLE001
        raise ModelError(path, f"cannot load external data ({type(e).__name__}: {e})") from None
    return model


def _topo(nodes: list[Any], path: str, known: set[str]) -> list[int]:
    """Node indices in a valid order (files should be sorted; some are not); cycle -> error."""
    ready, order, pending = set(known) | {""}, [], list(range(len(nodes)))
    while pending:
        rest = []
        for k in pending:   # in file order, so a sorted file takes one sweep
            if all(i in ready for i in nodes[k].input):
                order.append(k)
                ready.update(nodes[k].output)
            else:
                rest.append(k)
        if len(rest) == len(pending):
            produced = {o for n in nodes for o in n.output}
            undefined = sorted({i for k in rest for i in nodes[k].input if i not in ready
                                and i not in produced}, key=repr)
            names = ", ".join(f"{nodes[k].name or '?'} ({nodes[k].op_type})" for k in rest[:8])
            why = (f"undefined input(s) {undefined}" if undefined
                   else "the graph has a cycle")
            raise ModelError(path, f"{why} among nodes: {names}")
        pending = rest
    return order


# ops that work in any layout: looking through them finds the first layout-sensitive use.
# Every one-input importer of an elementwise op (its OPS row) is one; so are the
# broadcasting binaries, Pad, the no-ops, and Cast (looked through for the layout only).
_TRANSPARENT = {name for name, imp in IMPORTERS.items()
                if getattr(imp, "op", None) is not None and OPS[imp.op].elementwise} | {
    "Pad", "Identity", "Dropout", "Add", "Sub", "Mul", "Div", "Cast"}


def _input_layouts(model: Any, inits: set[str]) -> dict[str, Perm]:
    """4-D inputs are NCHW, unless (through layout-free ops like Pad/Relu/Add) every use is a
    Transpose(0,3,1,2): then the input is NHWC already (tf2onnx) and is kept as it is."""
    def is_to_nchw(n: Any) -> bool:
        return n.op_type == "Transpose" and list(_Cx.attr(n, "perm", [])) == list(NCHW)

    out: dict[str, Perm] = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        r = len(i.type.tensor_type.shape.dim)
        frontier, seen, uses = [i.name], {i.name}, []
        while frontier and r == 4:
            v = frontier.pop()
            for n in model.graph.node:
                if v not in n.input:
                    continue
                if n.op_type in _TRANSPARENT:
                    frontier += [o for o in n.output if o and o not in seen]
                    seen.update(n.output)
                else:
                    uses.append(n)
        nhwc_already = r == 4 and bool(uses) and all(is_to_nchw(n) for n in uses)
        out[i.name] = NHWC if r == 4 and not nhwc_already else _ident(r)
    return out


def read_onnx(path: str | Path, *, batch: int = 1, passes: bool = True) -> Graph:
    """Read a float .onnx file into the NHWC IR; `passes` runs edgeforge.passes.run_passes."""
    p = str(path)
    if not Path(p).is_file():
        raise ModelError(p, "no such file")
    model = _load_model(p)
    try:
        g = _build(model, p, batch)
    except (ModelError, UnsupportedOpError):
        raise
    except IRError as e:
        raise ModelError(p, str(e)) from None
    except Exception as e:  # noqa: BLE001 - a corrupt file can break any field access
        raise ModelError(p, f"malformed model ({type(e).__name__}: {e})") from None
    if passes:
        from edgeforge.passes import run_passes
        try:
            run_passes(g)
        except IRError as e:
            raise ModelError(p, f"graph pass broke an IR invariant: {e}") from None
        g.meta["onnx_values"] = _surviving(g, g.meta["onnx_values"])   # fused ones are gone
    return g


def _build(model: Any, path: str, batch: int) -> Graph:
    from onnx import numpy_helper
    opset = max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] or [1])
    cx = _Cx(path, opset)
    cx.g.name = Path(path).stem
    for t in model.graph.initializer:
        try:
            cx.consts[t.name] = numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001
            raise ModelError(path, f"initializer {t.name!r} cannot be read ({e})") from None
    _read_inputs(cx, model, path, batch)
    _import_nodes(cx, model, path)
    layout_meta, renamed = _place_outputs(cx, model, path)
    cx.g.prune()
    try:
        cx.g.toposort()
        verify(cx.g)
    except IRError as e:
        raise ModelError(path, f"imported graph is invalid: {e}") from None
    values = {}
    for name, v in cx.vals.items():
        ir = v.ir
        while ir in renamed:
            ir = renamed[ir]
        values[name] = [ir, list(v.perm)]
    cx.g.meta.update({"source": path, "format": "onnx", "opset": opset,
                      "onnx_layout": layout_meta, "onnx_notes": cx.notes,
                      "onnx_values": _surviving(cx.g, values)})
    return cx.g


def _read_inputs(cx: _Cx, model: Any, path: str, batch: int) -> None:
    """The graph inputs as IR tensors, each in the layout its consumers want."""
    from onnx import TensorProto, helper
    layouts = _input_layouts(model, set(cx.consts))
    for i in model.graph.input:
        if i.name in cx.consts:
            continue
        tt = i.type.tensor_type
        if tt.elem_type != TensorProto.FLOAT:
            raise ModelError(path, f"input {i.name!r} has element type "
                                   f"{helper.tensor_dtype_to_np_dtype(tt.elem_type)}; "
                                   f"only float32 inputs are supported")
        dims = []
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif k == 0:
                dims.append(int(batch))
            else:
                raise ModelError(path, f"input {i.name!r} has dynamic dim {k} "
                                       f"({d.dim_param or '?'}); only the batch dim may be")
        perm = layouts[i.name]
        cx.g.add_tensor(Tensor(i.name, tuple(dims[j] for j in perm)))
        cx.g.inputs.append(i.name)
        cx.vals[i.name] = _Val(i.name, perm)


def _import_nodes(cx: _Cx, model: Any, path: str) -> None:
    """Every node through its importer (or folded when all its inputs are constants); the
    unsupported ones, and what only they feed, are gathered into one UnsupportedOpError."""
    problems: list[tuple[int, str, str, str]] = []
    poisoned: set[str] = set()
    nodes = fuse_erf_gelu(list(model.graph.node), cx.consts)
    cx.used = {i for n in nodes for i in n.input} | {o.name for o in model.graph.output}
    for k in _topo(nodes, path, set(cx.consts) | set(cx.vals)):
        node = nodes[k]
        label = node.name or (node.output[0] if node.output else "?")
        cx._node_name = label
        if any(i in poisoned for i in node.input):
            poisoned.update(node.output)
            continue
        try:
            if node.domain not in ("", "ai.onnx"):
                raise _Unsupported(f"custom domain {node.domain!r}")
            if all(i == "" or i in cx.consts for i in node.input):
                outs = _fold(cx, node, list(model.opset_import))
                for name, val in zip(node.output, outs):
                    if name:
                        cx.consts[name] = np.asarray(val)
            elif node.op_type in IMPORTERS:
                IMPORTERS[node.op_type](cx, node)
            else:
                raise _Unsupported("no IR form for this op on a computed tensor (ops on "
                                   "constants only are folded at import)")
        except _Unsupported as e:
            problems.append((k, label, node.op_type, str(e)))
            poisoned.update(node.output)
        except (ModelError, UnsupportedOpError):
            raise
        except IRError as e:                 # a shape no tensor may have (huge pads, dims)
            raise ModelError(path, f"node {k} '{label}' ({node.op_type}): {e}") from None
        except Exception as e:  # noqa: BLE001 - a malformed node can break any importer
            problems.append((k, label, node.op_type, f"cannot import ({type(e).__name__}: {e})"))
            poisoned.update(node.output)
    if problems:
        raise UnsupportedOpError(path, problems, list(IMPORTERS))


def _place_outputs(cx: _Cx, model: Any, path: str
                   ) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Graph outputs under their ONNX names, 4-D ones in NHWC; returns the layout of every
    input and output and the IR renames made on the way."""
    layout_meta: dict[str, list[int]] = {n: list(cx.vals[n].perm) for n in cx.g.inputs}
    finals = []   # first every output in its final layout, then the renames (caches stay valid)
    for o in model.graph.output:
        name = o.name
        if name in cx.consts:
            raise ModelError(path, f"output {name!r} is a constant; nothing to compute")
        v = cx.vals[name]
        want = NHWC if len(v.perm) == 4 else _ident(len(v.perm))   # 4-D: NHWC, else as ONNX
        if v.perm not in (want, _ident(len(v.perm))):
            v = _Val(cx.layout(name, want), want)
        finals.append((name, v))
    renamed: dict[str, str] = {}
    for name, v in finals:
        ir = v.ir
        while ir in renamed:
            ir = renamed[ir]
        if ir != name and name in cx.g.tensors:   # the name holds an earlier layout: move it
            if name in cx.g.inputs:
                raise ModelError(path, f"output {name!r} is also the name of an input")
            moved = cx.g.unique_name(name + "__pre")
            cx.g.rename(name, moved)
            renamed[name] = moved
        if ir != name:
            if ir in cx.g.inputs or ir in cx.g.outputs:   # keep both names: copy
                shp = cx.g.tensors[ir].shape
                cx.g.add_tensor(Tensor(name, shp))
                cx.g.nodes.append(Node(Op.RESHAPE, (ir,), (name,), ReshapeAttrs(shp), name))
            else:
                cx.g.rename(ir, name)
                renamed[ir] = name
        cx.g.outputs.append(name)
        layout_meta[name] = list(v.perm)
    return layout_meta, renamed


def _surviving(g: Graph, values: dict[str, list]) -> dict[str, list]:
    """ONNX value -> [IR tensor, perm] for values whose IR tensor (still) exists as an
    activation: lets a caller diff intermediate tensors against onnxruntime by ONNX name."""
    return {k: v for k, v in values.items()
            if v[0] in g.tensors and not g.tensors[v[0]].is_const}


# ---------------------------------------------------------------- layout helpers for callers
def to_ir_layout(g: Graph, name: str, data: np.ndarray) -> np.ndarray:
    """ONNX-layout array for graph input/output `name` -> the IR's layout."""
    perm = g.meta.get("onnx_layout", {}).get(name)
    return np.asarray(data) if perm is None else np.asarray(data).transpose(perm)


def from_ir_layout(g: Graph, name: str, data: np.ndarray) -> np.ndarray:
    """IR-layout array for graph input/output `name` -> ONNX layout."""
    perm = g.meta.get("onnx_layout", {}).get(name)
    return np.asarray(data) if perm is None else np.asarray(data).transpose(_inv(tuple(perm)))


