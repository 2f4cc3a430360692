"""The graph IR every stage speaks: Tensor, Node, Graph, and ONE table of op facts.

Conventions (fixed here so no later stage re-decides them):
  * activations are NHWC; 1-D models use H = 1.
  * CONV2D weight  [C_OUT, KH, KW, C_IN]   (TFLite OHWI)
    DWCONV2D weight [1, KH, KW, C_IN * depth_multiplier]
    FC weight       [C_OUT, C_IN]
    bias            [C_OUT]  float32 (float graphs) or int32 (int8 graphs)
  * padding is explicit (top, left, bottom, right); frontends resolve SAME/VALID/auto_pad.
  * an absent optional input is the empty string "".
  * every attribute has a concrete value: frontends fill defaults, so no stage sees None.
  * a float32 constant that carries `quant` is a hybrid (dynamic-range) weight, as the TFLite
    converter stores int8 weights of float conv/FC layers: `data` is the dequantized float32
    value, `quant` the int8 scales (zero point 0); `hybrid_int8(t)` recovers the int8 values.
    The float reference runs such layers with LiteRT's hybrid kernels and the .tflite writer
    stores them as int8 again. A pass that rewrites `data` off that grid (or builds a new
    constant, which has no quant) makes it a plain float weight.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


class Op(enum.StrEnum):
    # compute with weights
    CONV2D = "CONV2D"
    DWCONV2D = "DWCONV2D"
    FC = "FC"
    MATMUL = "MATMUL"            # x @ y; with a constant y passes fuse it into FC
    BATCHNORM = "BATCHNORM"      # float only; folded into CONV/FC by passes
    # pooling and reductions
    AVGPOOL2D = "AVGPOOL2D"
    MAXPOOL2D = "MAXPOOL2D"
    MEAN = "MEAN"
    # elementwise binary (numpy broadcasting)
    ADD = "ADD"
    SUB = "SUB"
    MUL = "MUL"
    DIV = "DIV"                  # float only
    # elementwise unary
    RELU = "RELU"
    RELU6 = "RELU6"
    CLIP = "CLIP"                # float only; fused as an activation where it matches one
    LEAKY_RELU = "LEAKY_RELU"
    LOGISTIC = "LOGISTIC"
    TANH = "TANH"
    HARD_SWISH = "HARD_SWISH"
    HARD_SIGMOID = "HARD_SIGMOID"  # float only
    # data movement
    RESHAPE = "RESHAPE"
    TRANSPOSE = "TRANSPOSE"
    CONCAT = "CONCAT"
    PAD = "PAD"
    SOFTMAX = "SOFTMAX"
    LRN = "LRN"                  # float only; local response norm across channels (AlexNet era)
    # type conversion
    QUANTIZE = "QUANTIZE"        # float32 -> int8, or int8 -> int8 requantize
    DEQUANTIZE = "DEQUANTIZE"    # int8 -> float32
    # issue 11/20, first group: slicing, resizing, elementwise min/max
    STRIDED_SLICE = "STRIDED_SLICE"      # SLICE, STRIDED_SLICE, SPLIT (one node per part)
    RESIZE_NEAREST = "RESIZE_NEAREST"    # RESIZE_NEAREST_NEIGHBOR over H, W of NHWC
    MAXIMUM = "MAXIMUM"
    MINIMUM = "MINIMUM"
    RESIZE_BILINEAR = "RESIZE_BILINEAR"  # over H, W of NHWC; int8 in TFLite's 10-bit fixed point
    # issue 11, transformer set: elementwise unary int8 ops are 256-entry tables
    SQRT = "SQRT"
    RSQRT = "RSQRT"
    EXP = "EXP"
    GELU = "GELU"
    SQUARED_DIFFERENCE = "SQUARED_DIFFERENCE"   # (x1 - x2)^2, numpy broadcasting
    SUM = "SUM"                  # reductions over MeanAttrs.axes, as MEAN
    REDUCE_MAX = "REDUCE_MAX"
    REDUCE_MIN = "REDUCE_MIN"
    GATHER = "GATHER"            # x.take(indices, axis); indices are a constant int32 input
    PRELU = "PRELU"              # x >= 0 ? x : alpha * x, alpha a constant broadcast to x
    TRANSPOSE_CONV = "TRANSPOSE_CONV"   # weight [C_OUT, KH, KW, C_IN] like CONV2D; not WEIGHTED
    LSTM = "LSTM"                # UNIDIRECTIONAL_SEQUENCE_LSTM: 24 inputs in TFLite's order


class Act(enum.StrEnum):
    """Fused activation, as TFLite's ActivationFunctionType."""
    NONE = "NONE"
    RELU = "RELU"
    RELU6 = "RELU6"
    RELU_N1_TO_1 = "RELU_N1_TO_1"


ACT_RANGE: dict[Act, tuple[float, float]] = {
    Act.NONE: (-np.inf, np.inf),
    Act.RELU: (0.0, np.inf),
    Act.RELU6: (0.0, 6.0),
    Act.RELU_N1_TO_1: (-1.0, 1.0),
}

Pad4 = tuple[int, int, int, int]  # (top, left, bottom, right)


# ---------------------------------------------------------------- attributes, one per op
@dataclass(frozen=True)
class NoAttrs:
    pass


@dataclass(frozen=True)
class Conv2dAttrs:
    stride: tuple[int, int] = (1, 1)       # (h, w)
    pad: Pad4 = (0, 0, 0, 0)               # (top, left, bottom, right)
    dilation: tuple[int, int] = (1, 1)
    act: Act = Act.NONE


@dataclass(frozen=True)
class DwConv2dAttrs:
    stride: tuple[int, int] = (1, 1)
    pad: Pad4 = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    depth_multiplier: int = 1
    act: Act = Act.NONE


@dataclass(frozen=True)
class FcAttrs:
    act: Act = Act.NONE
    keep_num_dims: bool = False            # False: output is [rows, C_OUT]


@dataclass(frozen=True)
class BatchNormAttrs:                      # inputs: x, scale, bias, mean, var (per channel)
    epsilon: float = 1e-5


@dataclass(frozen=True)
class Pool2dAttrs:
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: Pad4 = (0, 0, 0, 0)
    act: Act = Act.NONE
    count_include_pad: bool = False        # TFLite: False (divide by valid taps only)


@dataclass(frozen=True)
class MeanAttrs:
    axes: tuple[int, ...] = (1, 2)         # non-negative, sorted
    keepdims: bool = True


@dataclass(frozen=True)
class BinaryAttrs:
    act: Act = Act.NONE


@dataclass(frozen=True)
class ClipAttrs:
    min: float = -np.inf
    max: float = np.inf


@dataclass(frozen=True)
class LeakyReluAttrs:
    alpha: float = 0.01


@dataclass(frozen=True)
class HardSigmoidAttrs:                    # y = clip(alpha * x + beta, 0, 1)
    alpha: float = 0.2
    beta: float = 0.5


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...] = ()            # fully resolved, no -1


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...] = ()


@dataclass(frozen=True)
class ConcatAttrs:
    axis: int = -1                         # non-negative after import
    act: Act = Act.NONE


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[tuple[int, int], ...] = ()  # (before, after) per dim
    value: float = 0.0                     # float value; int8 graphs pad with the zero point


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float = 1.0
    axis: int = -1                         # non-negative after import; last axis only for int8


@dataclass(frozen=True)
class TransposeConvAttrs:                  # y[o*s + k - pad_top] += x[o] * w[k] (scatter form)
    stride: tuple[int, int] = (1, 1)
    pad: Pad4 = (0, 0, 0, 0)               # cropped from the full scatter; bottom/right may be
    act: Act = Act.NONE                    # negative (ONNX output_padding: rows of bias only)


@dataclass(frozen=True)
class LstmAttrs:                           # TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (cell gate tanh)
    cell_clip: float = 0.0                 # > 0: the cell state is clipped to +-cell_clip
    time_major: bool = False               # x [T, B, F] (else [B, T, F]); output likewise


# UNIDIRECTIONAL_SEQUENCE_LSTM operands (TFLite's lstm_shared.h order); gates i, f, c, o.
# The states (18, 19) are constants holding their reset value: what TFLite's variable tensors
# start from on every fresh interpreter (int8: the zero point; int16 / float: 0).
LSTM_X, LSTM_H, LSTM_C = 0, 18, 19
LSTM_W = (1, 2, 3, 4)                      # input-to-gate weights  [H, F]
LSTM_R = (5, 6, 7, 8)                      # recurrent-to-gate weights [H, H]
LSTM_B = (12, 13, 14, 15)                  # gate biases [H]
LSTM_UNUSED = (9, 10, 11, 16, 17, 20, 21, 22, 23)   # peephole, projection, layer norm: ""


@dataclass(frozen=True)
class GatherAttrs:                         # TFLite GATHER with batch_dims 0
    axis: int = 0                          # non-negative after import


@dataclass(frozen=True)
class LrnAttrs:                            # TFLite LOCAL_RESPONSE_NORMALIZATION semantics:
    radius: int = 2                        # y = x / (bias + alpha * sum_{|d|<=radius} x[c+d]^2)^beta
    bias: float = 1.0                      # (ONNX LRN(size, alpha): radius=(size-1)/2,
    alpha: float = 1e-4                    #  alpha = alpha_onnx / size)
    beta: float = 0.75


@dataclass(frozen=True)
class GeluAttrs:                           # approximate: the tanh form (TFLite GeluOptions)
    approximate: bool = False


@dataclass(frozen=True)
class StridedSliceAttrs:                   # y = x[b0:e0:s0, b1:e1:s1, ...], one entry per dim;
    begin: tuple[int, ...] = ()            # resolved at import: 0 <= begin < end <= dim,
    end: tuple[int, ...] = ()              # strides >= 1 (no masks, no negative indices);
    strides: tuple[int, ...] = ()          # the output keeps the input's rank


@dataclass(frozen=True)
class ResizeAttrs:                         # output H, W; TFLite's two coordinate flags
    size: tuple[int, int] = (1, 1)
    align_corners: bool = False
    half_pixel_centers: bool = False


# ---------------------------------------------------------------- op facts: ONE table
def _macs_conv(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(out)) * w[1] * w[2] * w[3]


def _macs_dwconv(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(out)) * w[1] * w[2]


def _macs_fc(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(out)) * w[-1]


def _macs_matmul(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    a = g.tensors[node.inputs[0]].shape
    return int(np.prod(out)) * a[-1]


def _macs_transpose_conv(node: Node, g: Graph) -> int:
    x = g.tensors[node.inputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(x)) * w[0] * w[1] * w[2]


def _macs_lstm(node: Node, g: Graph) -> int:
    y = g.tensors[node.outputs[0]].shape            # [B, T, H] (or [T, B, H])
    f = g.tensors[node.inputs[0]].shape[-1]
    return int(np.prod(y)) * 4 * (f + y[-1])


def _macs_pool(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    k = node.attrs.kernel
    return int(np.prod(out)) * k[0] * k[1]


def _macs_input(node: Node, g: Graph) -> int:
    return int(np.prod(g.tensors[node.inputs[0]].shape))


def _macs_output(node: Node, g: Graph) -> int:
    return int(np.prod(g.tensors[node.outputs[0]].shape))


def _macs_zero(node: Node, g: Graph) -> int:
    return 0


@dataclass(frozen=True)
class OpInfo:
    attrs: type                      # the attrs dataclass
    n_inputs: tuple[int, int]        # (min, max) inputs; optional ones may be ""
    tflite: str | None               # TFLite BuiltinOperator name, None if no builtin
    macs: Callable[[Node, Graph], int]
    weights: tuple[int, ...] = ()    # input indices that are constant parameters
    elementwise: bool = False        # output[i] depends only on input[i]: may run in place
    alias: bool = False              # output is a view of input 0 (same bytes)
    int8: bool = True                # has an int8 form (else float graphs only)
    fixed_out_q: tuple[float, int] | None = None   # int8 output (scale, zp) TFLite requires
    out_axis: int | None = None      # axis of the weight (input 1) that indexes output channels


OPS: dict[Op, OpInfo] = {
    Op.CONV2D: OpInfo(Conv2dAttrs, (2, 3), "CONV_2D", _macs_conv, weights=(1, 2), out_axis=0),
    Op.DWCONV2D: OpInfo(DwConv2dAttrs, (2, 3), "DEPTHWISE_CONV_2D", _macs_dwconv, weights=(1, 2),
                        out_axis=3),
    Op.FC: OpInfo(FcAttrs, (2, 3), "FULLY_CONNECTED", _macs_fc, weights=(1, 2), out_axis=0),
    Op.MATMUL: OpInfo(NoAttrs, (2, 2), "BATCH_MATMUL", _macs_matmul),
    Op.BATCHNORM: OpInfo(BatchNormAttrs, (5, 5), None, _macs_output, weights=(1, 2, 3, 4),
                         int8=False),
    Op.AVGPOOL2D: OpInfo(Pool2dAttrs, (1, 1), "AVERAGE_POOL_2D", _macs_pool),
    Op.MAXPOOL2D: OpInfo(Pool2dAttrs, (1, 1), "MAX_POOL_2D", _macs_pool),
    Op.MEAN: OpInfo(MeanAttrs, (1, 1), "MEAN", _macs_input),
    Op.ADD: OpInfo(BinaryAttrs, (2, 2), "ADD", _macs_output, elementwise=True),
    Op.SUB: OpInfo(BinaryAttrs, (2, 2), "SUB", _macs_output, elementwise=True),
    Op.MUL: OpInfo(BinaryAttrs, (2, 2), "MUL", _macs_output, elementwise=True),
    Op.DIV: OpInfo(BinaryAttrs, (2, 2), "DIV", _macs_output, elementwise=True, int8=False),
    Op.RELU: OpInfo(NoAttrs, (1, 1), "RELU", _macs_zero, elementwise=True),
    Op.RELU6: OpInfo(NoAttrs, (1, 1), "RELU6", _macs_zero, elementwise=True),
    Op.CLIP: OpInfo(ClipAttrs, (1, 1), None, _macs_zero, elementwise=True, int8=False),
    Op.LEAKY_RELU: OpInfo(LeakyReluAttrs, (1, 1), "LEAKY_RELU", _macs_output, elementwise=True),
    Op.LOGISTIC: OpInfo(NoAttrs, (1, 1), "LOGISTIC", _macs_output, elementwise=True,
                        fixed_out_q=(1.0 / 256, -128)),
    Op.TANH: OpInfo(NoAttrs, (1, 1), "TANH", _macs_output, elementwise=True,
                    fixed_out_q=(1.0 / 128, 0)),
    Op.HARD_SWISH: OpInfo(NoAttrs, (1, 1), "HARD_SWISH", _macs_output, elementwise=True),
    Op.HARD_SIGMOID: OpInfo(HardSigmoidAttrs, (1, 1), None, _macs_output, elementwise=True,
                            int8=False),
    Op.RESHAPE: OpInfo(ReshapeAttrs, (1, 2), "RESHAPE", _macs_zero, alias=True),
    Op.TRANSPOSE: OpInfo(TransposeAttrs, (1, 2), "TRANSPOSE", _macs_zero),
    Op.CONCAT: OpInfo(ConcatAttrs, (1, 64), "CONCATENATION", _macs_zero),
    Op.PAD: OpInfo(PadAttrs, (1, 3), "PAD", _macs_zero),
    Op.SOFTMAX: OpInfo(SoftmaxAttrs, (1, 1), "SOFTMAX", _macs_output,
                       fixed_out_q=(1.0 / 256, -128)),
    Op.LRN: OpInfo(LrnAttrs, (1, 1), "LOCAL_RESPONSE_NORMALIZATION", _macs_output, int8=False),
    Op.QUANTIZE: OpInfo(NoAttrs, (1, 1), "QUANTIZE", _macs_output, elementwise=True),
    Op.DEQUANTIZE: OpInfo(NoAttrs, (1, 1), "DEQUANTIZE", _macs_output, elementwise=True),
    Op.STRIDED_SLICE: OpInfo(StridedSliceAttrs, (1, 1), "STRIDED_SLICE", _macs_zero),
    Op.RESIZE_NEAREST: OpInfo(ResizeAttrs, (1, 1), "RESIZE_NEAREST_NEIGHBOR", _macs_zero),
    Op.MAXIMUM: OpInfo(NoAttrs, (2, 2), "MAXIMUM", _macs_output, elementwise=True),
    Op.MINIMUM: OpInfo(NoAttrs, (2, 2), "MINIMUM", _macs_output, elementwise=True),
    Op.RESIZE_BILINEAR: OpInfo(ResizeAttrs, (1, 1), "RESIZE_BILINEAR", _macs_output),
    Op.SQRT: OpInfo(NoAttrs, (1, 1), "SQRT", _macs_output, elementwise=True),
    Op.RSQRT: OpInfo(NoAttrs, (1, 1), "RSQRT", _macs_output, elementwise=True),
    Op.EXP: OpInfo(NoAttrs, (1, 1), "EXP", _macs_output, elementwise=True),
    Op.GELU: OpInfo(GeluAttrs, (1, 1), "GELU", _macs_output, elementwise=True),
    Op.SQUARED_DIFFERENCE: OpInfo(NoAttrs, (2, 2), "SQUARED_DIFFERENCE", _macs_output,
                                  elementwise=True),
    Op.SUM: OpInfo(MeanAttrs, (1, 1), "SUM", _macs_input),
    Op.REDUCE_MAX: OpInfo(MeanAttrs, (1, 1), "REDUCE_MAX", _macs_input),
    Op.REDUCE_MIN: OpInfo(MeanAttrs, (1, 1), "REDUCE_MIN", _macs_input),
    Op.GATHER: OpInfo(GatherAttrs, (2, 2), "GATHER", _macs_zero, weights=(1,)),
    Op.PRELU: OpInfo(NoAttrs, (2, 2), "PRELU", _macs_output, weights=(1,)),
    # out_axis stays None: passes that assume conv windows (affine folding, distill) skip it
    Op.TRANSPOSE_CONV: OpInfo(TransposeConvAttrs, (2, 3), "TRANSPOSE_CONV", _macs_transpose_conv,
                              weights=(1, 2)),
    # 12 operands present at least (a file's count); the IR node always lists all 24
    Op.LSTM: OpInfo(LstmAttrs, (12, 24), "UNIDIRECTIONAL_SEQUENCE_LSTM", _macs_lstm,
                    weights=tuple(range(1, 24))),
}

# ops whose input 1 is a weight with output channels on OPS[op].out_axis (conv, dwconv, fc)
WEIGHTED: frozenset[Op] = frozenset(op for op, info in OPS.items() if info.out_axis is not None)

# TFLite builtin name -> Op, read by the .tflite reader and writer alike
OP_BY_TFLITE: dict[str, Op] = {info.tflite: op for op, info in OPS.items() if info.tflite}


# ---------------------------------------------------------------- tensors and graph
@dataclass
class QuantParams:
    scale: np.ndarray                      # float32 [1] per-tensor, or [C] per-channel
    zero_point: np.ndarray                 # int64, same length as scale
    axis: int = 0                          # quantized dimension when per-channel

    def __post_init__(self) -> None:
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, QuantParams) and self.axis == other.axis
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


# the host reference runtime (run, calibration) holds every activation of a batch at once:
# a graph needing more is refused before anything is allocated
HOST_MAX_BYTES = 2 << 30

# a tensor holds at most this many elements: the C package's sizes are int32, and no reader
# or runtime allocates for a shape past it (a crafted pad or dim would ask for TiBs)
MAX_ELEMENTS = 2**31 - 1


def shape_problem(shape: tuple[int, ...]) -> str | None:
    """Why `shape` is no tensor shape (None if it is): dims are integers >= 0 and their
    product is at most MAX_ELEMENTS."""
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError, OverflowError):
        return f"shape {list(shape)} is not a list of integers"
    if any(d < 0 for d in dims):
        return f"shape {dims} has a negative dimension"
    n = 1
    for d in dims:
        n *= d
    if n > MAX_ELEMENTS:
        return f"shape {dims} has {n:,} elements, more than the {MAX_ELEMENTS:,} a tensor may"
    return None


def quant_problem(q: QuantParams, dtype: str, shape: tuple[int, ...]) -> str | None:
    """Why `q` cannot describe a `dtype` tensor of `shape` (None if it can): every scale a
    finite positive float32 (not subnormal), zero points inside the dtype's range, one zero
    point per scale, and per-channel scales as many as the quantized dimension is long.
    Readers call this so no runtime (LiteRT aborts on a negative scale) sees such a model."""
    s = q.scale.astype(np.float64)
    if s.size == 0 or not np.isfinite(s).all() or (s < np.finfo(np.float32).tiny).any():
        bad = s[~np.isfinite(s) | (s < np.finfo(np.float32).tiny)]
        return f"quantization scale {bad[0] if bad.size else '[]'} (must be finite and > 0)"
    if q.zero_point.size != s.size:
        return f"{s.size} scales but {q.zero_point.size} zero points"
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        out = q.zero_point[(q.zero_point < info.min) | (q.zero_point > info.max)]
        if out.size:
            return f"zero point {int(out[0])} outside {dtype} [{info.min}, {info.max}]"
    if s.size > 1:
        if not 0 <= q.axis < len(shape):
            return f"per-channel quantized dimension {q.axis} of a {len(shape)}-D tensor"
        if shape[q.axis] != s.size:
            return (f"{s.size} per-channel scales for dimension {q.axis} of size "
                    f"{shape[q.axis]}")
    return None


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"                 # numpy dtype name: float32 int8 int32 int16 uint8 int64
    quant: QuantParams | None = None
    data: np.ndarray | None = None         # set for constants

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def hybrid_int8(t: Tensor) -> np.ndarray | None:
    """The int8 values of a hybrid weight (see the module docstring), or None if `t` is not
    one: not float32 + quant, a zero point, or data no longer exactly scale * int8."""
    if t.dtype != "float32" or t.quant is None or t.data is None or t.quant.zero_point.any():
        return None
    shape = [1] * t.data.ndim
    if t.quant.per_channel:
        if not 0 <= t.quant.axis < t.data.ndim or t.data.shape[t.quant.axis] != t.quant.scale.size:
            return None
        shape[t.quant.axis] = -1
    scale = t.quant.scale.reshape(shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint(t.data.astype(np.float64) / scale)
    if not np.isfinite(q).all() or np.abs(q).max(initial=0) > 127:
        return None
    q8 = q.astype(np.int8)
    return q8 if np.array_equal(scale * q8.astype(np.float32), t.data) else None


@dataclass(frozen=True)
class Node:
    op: Op
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Any = field(default_factory=NoAttrs)
    name: str = ""

    def with_(self, **changes: Any) -> Node:
        return replace(self, **changes)


class IRError(ValueError):
    """A graph that breaks an IR invariant."""


@dataclass
class Graph:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)   # kept in a valid topological order
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    name: str = "model"
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. source path, pass log

    # -- building
    def add_tensor(self, t: Tensor) -> Tensor:
        if t.name in self.tensors:
            raise IRError(f"tensor {t.name!r} defined twice")
        why = shape_problem(t.shape)
        if why:
            raise IRError(f"tensor {t.name!r}: {why}")
        self.tensors[t.name] = t
        return t

    def const(self, name: str, data: np.ndarray, quant: QuantParams | None = None) -> Tensor:
        data = np.asarray(data)
        return self.add_tensor(Tensor(name, tuple(data.shape), data.dtype.name, quant, data))

    def unique_name(self, base: str) -> str:
        name, i = base, 0
        while name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        return name

    def rename(self, old: str, new: str) -> None:
        """Give tensor `old` the name `new` in the nodes and outputs (new must be free)."""
        t = self.tensors.pop(old)
        t.name = new
        self.tensors[new] = t
        self.nodes = [n.with_(inputs=tuple(new if i == old else i for i in n.inputs),
                              outputs=tuple(new if o == old else o for o in n.outputs))
                      for n in self.nodes]
        self.outputs = [new if o == old else o for o in self.outputs]

    # -- queries
    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def activations(self) -> list[str]:
        """Non-constant tensors in schedule order (graph inputs first)."""
        seen = list(self.inputs)
        for n in self.nodes:
            seen += [o for o in n.outputs if o not in seen]
        return seen

    def is_int8(self) -> bool:
        return any(self.tensors[n].dtype == "int8" for n in self.activations())

    def is_quantized(self) -> bool:
        """int8 or 16x8 (int16 activations): already quantized, nothing to calibrate."""
        return any(self.tensors[n].dtype in ("int8", "int16") for n in self.activations())

    def macs(self) -> int:
        return sum(OPS[n.op].macs(n, self) for n in self.nodes)

    def weight_bytes(self) -> int:
        used = {i for n in self.nodes for i in n.inputs if i}
        return sum(t.nbytes for name, t in self.tensors.items() if t.is_const and name in used)

    def activation_bytes(self) -> int:
        """Bytes of every non-constant tensor: what the reference runtime holds at once."""
        return sum(math.prod(t.shape) * np.dtype(t.dtype).itemsize
                   for t in self.tensors.values() if not t.is_const)

    # -- maintenance
    def toposort(self) -> None:
        """Reorder nodes topologically (stable); raise IRError on a cycle."""
        ready = {n for n in self.inputs} | {k for k, t in self.tensors.items() if t.is_const}
        pending, order = list(self.nodes), []
        while pending:
            progressed = False
            for n in list(pending):
                if all((not i) or i in ready for i in n.inputs):
                    order.append(n)
                    ready.update(n.outputs)
                    pending.remove(n)
                    progressed = True
            if not progressed:
                names = ", ".join(f"{n.name or n.op}" for n in pending[:8])
                raise IRError(f"graph has a cycle or an undefined input among nodes: {names}")
        self.nodes = order

    def prune(self) -> None:
        """Drop nodes and tensors that no graph output depends on."""
        needed = set(self.outputs)
        keep: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs):
                keep.append(n)
                needed.update(i for i in n.inputs if i)
        self.nodes = keep[::-1]
        needed.update(self.inputs)
        self.tensors = {k: t for k, t in self.tensors.items() if k in needed}

    def copy(self) -> Graph:
        tensors = {k: replace(t) for k, t in self.tensors.items()}
        return Graph(tensors, list(self.nodes), list(self.inputs), list(self.outputs),
                     self.name, dict(self.meta))


def verify(g: Graph) -> None:
    """Check the invariants every stage relies on; raise IRError naming the node."""
    defined = set(g.inputs) | {k for k, t in g.tensors.items() if t.is_const}
    for name in g.inputs:
        if name not in g.tensors:
            raise IRError(f"graph input {name!r} has no tensor")
    for idx, n in enumerate(g.nodes):
        where = f"node {idx} ({n.op}, {n.name or 'unnamed'})"
        info = OPS.get(n.op)
        if info is None:
            raise IRError(f"{where}: unknown op")
        if not isinstance(n.attrs, info.attrs):
            raise IRError(f"{where}: attrs {type(n.attrs).__name__}, expected {info.attrs.__name__}")
        lo, hi = info.n_inputs
        if not lo <= len(n.inputs) <= hi:
            raise IRError(f"{where}: {len(n.inputs)} inputs, expected {lo}..{hi}")
        for i in n.inputs:
            if i and i not in g.tensors:
                raise IRError(f"{where}: input {i!r} has no tensor")
            if i and i not in defined:
                raise IRError(f"{where}: input {i!r} is used before it is produced")
        for o in n.outputs:
            if o not in g.tensors:
                raise IRError(f"{where}: output {o!r} has no tensor")
            if o in defined:
                raise IRError(f"{where}: output {o!r} is produced twice")
            defined.add(o)
    for name in g.outputs:
        if name not in defined:
            raise IRError(f"graph output {name!r} is never produced")


def walk(g: Graph, ops: Iterable[Op] | None = None) -> Iterable[tuple[int, Node]]:
    wanted = set(ops) if ops is not None else None
    for i, n in enumerate(g.nodes):
        if wanted is None or n.op in wanted:
            yield i, n
