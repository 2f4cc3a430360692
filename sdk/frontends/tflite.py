""".tflite -> IR, through the TFLite schema's object API (never hand-decoded bytes).

What the importer normalizes, once, so no later stage re-decides it:
  * SAME/VALID -> explicit (top, left, bottom, right) pads, computed as TFLite's
    ComputePaddingHeightWidth does (total = max((out-1)*stride + eff_filter - in, 0),
    top = total // 2, bottom = total - top);
  * fused activations -> `Act`; depthwise multiplier from the weight shape;
  * RESHAPE/MEAN/PAD/TRANSPOSE operands that TFLite passes as constant tensors (new shape,
    axes, pads, perm) become attributes, and those constant tensors are dropped;
  * tensor names are made unique (TFLite allows repeats); `graph.meta["tflite_index"]`
    maps each IR tensor name to its index in the file's subgraph 0, so intermediate
    tensors can be diffed against TFLM's GetTensor(i).

Errors: a file that cannot be parsed or is structurally broken raises ONE ModelError;
every op that cannot be imported is collected into ONE UnsupportedOpError.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import ModelError, UnsupportedOpError
from edgeforge.frontends import tflite_patterns
from edgeforge.ir import (
    OP_BY_TFLITE,
    OPS,
    WEIGHTED,
    Act,
    BinaryAttrs,
    ConcatAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    GatherAttrs,
    GeluAttrs,
    Graph,
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
    QuantParams,
    ReshapeAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    StridedSliceAttrs,
    Tensor,
    TransposeAttrs,
    TransposeConvAttrs,
    quant_problem,
    verify,
)

try:  # the schema ships with ai-edge-litert; keep import errors for read time
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover - exercised only on broken installs
    schema = None

FILE_IDENTIFIER = b"TFL3"

# TensorType code -> numpy dtype name (only the types a model we handle can carry)
DTYPES: dict[int, str] = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64",
                          6: "bool", 7: "int16", 9: "int8", 10: "float64"}

# ActivationFunctionType code -> Act (TANH=4 and SIGN_BIT=5 have no IR form)
ACTS: dict[int, Act] = {0: Act.NONE, 1: Act.RELU, 2: Act.RELU_N1_TO_1, 3: Act.RELU6}

PAD_SAME, PAD_VALID = 0, 1   # schema Padding enum


def builtin_names() -> dict[int, str]:
    """BuiltinOperator code -> name, from the schema itself."""
    return {v: k for k, v in vars(schema.BuiltinOperator).items()
            if not k.startswith("_") and isinstance(v, int)}


def type_name(code: int) -> str:
    """TensorType code -> its schema name (INT4, STRING, ...)."""
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return names.get(code, f"type {code}")


class _Unsupported(Exception):
    """Raised by an importer for an op the IR cannot represent (collected, not fatal)."""


class _Malformed(Exception):
    """Raised by an importer for an op whose tensors contradict TFLite's own rules."""


# ---------------------------------------------------------------- padding as TFLite does it
def out_size(in_size: int, filt: int, stride: int, dilation: int, padding: int) -> int:
    """TFLite ComputeOutSize."""
    eff = (filt - 1) * dilation + 1
    if padding == PAD_SAME:
        return (in_size + stride - 1) // stride
    return (in_size - eff + stride) // stride


def same_pads(in_hw: tuple[int, int], filt: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], padding: int) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) for SAME/VALID (TFLite ComputePaddingHeightWidth)."""
    before, after = [], []
    for i in range(2):
        eff = (filt[i] - 1) * dilation[i] + 1
        out = out_size(in_hw[i], filt[i], stride[i], dilation[i], padding)
        total = max((out - 1) * stride[i] + eff - in_hw[i], 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return (before[0], before[1], after[0], after[1])


def f32(x: float) -> float:
    """A float32 option as the shortest decimal that round-trips (0.2, not 0.2000000029...)."""
    return float(str(np.float32(x)))


# ---------------------------------------------------------------- per-op importers
class _Ctx:
    """What an importer sees of one operator: its options and its operand tensors."""

    def __init__(self, op: Any, tensors: list[Any], consts: dict[int, np.ndarray]):
        self.op, self.tensors, self.consts = op, tensors, consts
        self.opts = op.builtinOptions

    def opt(self, name: str, default: Any) -> Any:
        return default if self.opts is None else getattr(self.opts, name, default)

    def shape(self, k: int, output: bool = False) -> tuple[int, ...]:
        idx = (self.op.outputs if output else self.op.inputs)[k]
        shp = self.tensors[idx].shape
        return () if shp is None else tuple(int(d) for d in shp)

    def const_input(self, k: int, what: str) -> np.ndarray:
        ins = self.op.inputs
        if ins is None or len(ins) <= k or ins[k] < 0:
            raise _Unsupported(f"missing {what} input")
        if ins[k] not in self.consts:
            raise _Unsupported(f"{what} must be a constant tensor")
        return self.consts[ins[k]]

    def act(self) -> Act:
        code = int(self.opt("fusedActivationFunction", 0))
        if code not in ACTS:
            raise _Unsupported(f"fused activation {code} not supported")
        return ACTS[code]


def _conv_geometry(c: _Ctx, filt: tuple[int, int]) -> dict[str, Any]:
    x = c.shape(0)
    if len(x) != 4:
        raise _Unsupported(f"input rank {len(x)}, expected 4 (NHWC)")
    stride = (int(c.opt("strideH", 1)), int(c.opt("strideW", 1)))
    dilation = (int(c.opt("dilationHFactor", 1)), int(c.opt("dilationWFactor", 1)))
    if min(stride + dilation) < 1:
        raise _Unsupported(f"stride {stride} / dilation {dilation} must be >= 1")
    padding = int(c.opt("padding", PAD_SAME))
    if padding not in (PAD_SAME, PAD_VALID):
        raise _Unsupported(f"padding {padding}")
    pad = same_pads((x[1], x[2]), filt, stride, dilation, padding)
    y = c.shape(0, output=True)
    want = tuple(out_size(x[1 + i], filt[i], stride[i], dilation[i], padding) for i in range(2))
    if len(y) != 4 or y[1:3] != want or y[0] != x[0]:
        raise _Malformed(f"output shape {list(y)}, but TFLite computes [{x[0]}, {want[0]}, "
                         f"{want[1]}, C] from input {list(x)}")
    return {"stride": stride, "dilation": dilation, "pad": pad}


def import_conv(c: _Ctx) -> Conv2dAttrs:
    w = c.shape(1)
    if len(w) != 4:
        raise _Unsupported(f"weight rank {len(w)}, expected 4 (OHWI)")
    if w[3] != c.shape(0)[-1]:
        raise _Unsupported(f"grouped convolution (weight C_IN {w[3]} != input C {c.shape(0)[-1]})")
    return Conv2dAttrs(act=c.act(), **_conv_geometry(c, (w[1], w[2])))


def import_dwconv(c: _Ctx) -> DwConv2dAttrs:
    w, x = c.shape(1), c.shape(0)
    if len(w) != 4 or w[0] != 1:
        raise _Unsupported(f"depthwise weight shape {w}, expected [1, KH, KW, C_OUT]")
    if x[-1] == 0 or w[3] % x[-1]:
        raise _Unsupported(f"weight channels {w[3]} not a multiple of input channels {x[-1]}")
    # LiteRT derives the multiplier from the shapes too; the option is sometimes stale
    return DwConv2dAttrs(depth_multiplier=w[3] // x[-1], act=c.act(),
                         **_conv_geometry(c, (w[1], w[2])))


def import_fc(c: _Ctx) -> FcAttrs:
    if int(c.opt("weightsFormat", 0)) != 0:
        raise _Unsupported("shuffled weights format")
    if len(c.shape(1)) != 2:
        raise _Unsupported(f"weight rank {len(c.shape(1))}, expected 2 [C_OUT, C_IN]")
    keep = bool(c.opt("keepNumDims", False))
    x, (cout, cin), y = c.shape(0), c.shape(1), c.shape(0, output=True)
    n = int(np.prod(x, dtype=np.int64))
    if cin == 0 or n % cin or x[-1:] != (cin,) and keep:
        raise _Malformed(f"input {list(x)} does not match weights [{cout}, {cin}]")
    want = x[:-1] + (cout,) if keep else (n // cin, cout)
    if int(np.prod(y, dtype=np.int64)) != int(np.prod(want, dtype=np.int64)):
        out = c.op.outputs[0]
        sig = c.tensors[out].shapeSignature
        if sig is None or -1 not in list(sig):
            raise _Malformed(f"output shape {list(y)}, expected {list(want)}")
        c.tensors[out] = copy.copy(c.tensors[out])   # a dynamic dim the file records as 1
        c.tensors[out].shape = np.asarray(want, np.int32)
    return FcAttrs(act=c.act(), keep_num_dims=keep)


def import_pool(c: _Ctx) -> Pool2dAttrs:
    filt = (int(c.opt("filterHeight", 1)), int(c.opt("filterWidth", 1)))
    geo = _conv_geometry(c, filt)
    return Pool2dAttrs(kernel=filt, stride=geo["stride"], pad=geo["pad"], act=c.act())


def import_binary(c: _Ctx) -> BinaryAttrs:
    a, b, y = c.shape(0), c.shape(1), c.shape(0, output=True)
    try:
        want = tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise _Malformed(f"input shapes {list(a)} and {list(b)} do not broadcast") from None
    if want != y:
        raise _Malformed(f"output shape {list(y)}, expected {list(want)} from {list(a)}, {list(b)}")
    return BinaryAttrs(act=c.act())


def import_noattrs(c: _Ctx) -> NoAttrs:
    return NoAttrs()


def import_reshape(c: _Ctx) -> ReshapeAttrs:
    x = c.shape(0)
    n = int(np.prod(x, dtype=np.int64))
    new = c.opt("newShape", None)
    if len(c.op.inputs) > 1 and c.op.inputs[1] >= 0 and c.op.inputs[1] in c.consts:
        new = c.consts[c.op.inputs[1]]
    if new is None or (np.size(new) == 0 and c.shape(0, output=True) != ()):
        new = c.shape(0, output=True)   # shape given only by the output tensor
    shape = [int(d) for d in np.ravel(new)]
    if shape.count(-1) > 1:
        raise _Unsupported(f"new shape {shape} has more than one -1")
    if -1 in shape:
        rest = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if rest == 0 or n % rest:
            raise _Unsupported(f"cannot reshape {list(x)} to {shape}")
        shape[shape.index(-1)] = n // rest
    if int(np.prod(shape, dtype=np.int64)) != n:
        raise _Unsupported(f"cannot reshape {list(x)} ({n} elements) to {shape}")
    return ReshapeAttrs(shape=tuple(shape))


def import_softmax(c: _Ctx) -> SoftmaxAttrs:
    return SoftmaxAttrs(beta=f32(c.opt("beta", 1.0)), axis=max(len(c.shape(0)) - 1, 0))


def import_concat(c: _Ctx) -> ConcatAttrs:
    rank = len(c.shape(0, output=True))
    axis = int(c.opt("axis", 0))
    if not -rank <= axis < rank:
        raise _Unsupported(f"axis {axis} out of range for rank {rank}")
    return ConcatAttrs(axis=axis % rank, act=c.act())


def import_pad(c: _Ctx) -> PadAttrs:
    pads = c.const_input(1, "paddings")
    rank = len(c.shape(0))
    if pads.shape != (rank, 2):
        raise _Unsupported(f"paddings shape {pads.shape}, expected ({rank}, 2)")
    if (pads < 0).any():
        raise _Unsupported("negative paddings")
    value = 0.0
    if len(c.op.inputs) > 2 and c.op.inputs[2] >= 0:   # PADV2 constant value
        v = c.const_input(2, "constant_values").ravel()
        if v.size != 1:
            raise _Unsupported("constant_values must be a scalar")
        value = f32(v[0]) if v.dtype.kind == "f" else float(v[0])
        q = c.tensors[c.op.inputs[2]].quantization
        if q is not None and q.scale is not None and len(q.scale):
            zp = int(q.zeroPoint[0]) if q.zeroPoint is not None and len(q.zeroPoint) else 0
            value = f32(float(q.scale[0]) * (value - zp))
    return PadAttrs(pads=tuple((int(a), int(b)) for a, b in pads), value=value)


def import_mean(c: _Ctx) -> MeanAttrs:
    rank = len(c.shape(0))
    axes = c.const_input(1, "axes").ravel()
    if any(not -rank <= int(a) < rank for a in axes):
        raise _Unsupported(f"axes {axes.tolist()} out of range for rank {rank}")
    norm = tuple(sorted({int(a) % rank for a in axes}))
    return MeanAttrs(axes=norm, keepdims=bool(c.opt("keepDims", False)))


def import_leaky_relu(c: _Ctx) -> LeakyReluAttrs:
    return LeakyReluAttrs(alpha=f32(c.opt("alpha", 0.0)))


def import_transpose(c: _Ctx) -> TransposeAttrs:
    perm = [int(p) for p in c.const_input(1, "perm").ravel()]
    if sorted(perm) != list(range(len(c.shape(0)))):
        raise _Unsupported(f"perm {perm} is not a permutation of rank {len(c.shape(0))}")
    return TransposeAttrs(perm=tuple(perm))


def import_matmul(c: _Ctx) -> NoAttrs:
    if c.opt("adjX", False) or c.opt("adjY", False):
        raise _Unsupported("adj_x/adj_y (transposed operands) not supported")
    return NoAttrs()


def import_lrn(c: _Ctx) -> LrnAttrs:
    return LrnAttrs(radius=int(c.opt("radius", 0)), bias=f32(c.opt("bias", 0.0)),
                    alpha=f32(c.opt("alpha", 0.0)), beta=f32(c.opt("beta", 0.0)))


def import_transpose_conv(c: _Ctx) -> TransposeConvAttrs:
    """Operands (output_shape, weights, input[, bias]); the IR keeps (input, weights, bias).
    TFLite pads the OUTPUT: top/left as ComputePaddingHeightWidth on the output size, and
    what lies past the output's end is cropped (our bottom/right)."""
    out_shape = [int(d) for d in c.const_input(0, "output_shape").ravel()]
    w, x, y = c.shape(1), c.shape(2), c.shape(0, output=True)
    if len(w) != 4 or len(x) != 4 or w[3] != x[3] or tuple(out_shape) != y or y[3] != w[0]:
        raise _Malformed(f"weights {list(w)}, input {list(x)}, output_shape {out_shape}, "
                         f"output {list(y)} do not fit together")
    stride = (int(c.opt("strideH", 1)), int(c.opt("strideW", 1)))
    padding = int(c.opt("padding", PAD_SAME))
    if padding not in (PAD_SAME, PAD_VALID) or min(stride) < 1:
        raise _Unsupported(f"padding {padding} / stride {stride}")
    top, left, _, _ = same_pads((y[1], y[2]), (w[1], w[2]), stride, (1, 1), padding)
    bottom = (x[1] - 1) * stride[0] + w[1] - top - y[1]
    right = (x[2] - 1) * stride[1] + w[2] - left - y[2]
    return TransposeConvAttrs(stride=stride, pad=(top, left, bottom, right), act=c.act())


def import_lstm(c: _Ctx) -> LstmAttrs:
    """UNIDIRECTIONAL_SEQUENCE_LSTM as TFLM runs it: all four gates, no peephole, projection
    or layer norm, cell gate TANH. The hidden / cell states are variable tensors (no data):
    they become constants holding the value TFLite resets them to (int8: zero point, else 0)."""
    ins = list(c.op.inputs if c.op.inputs is not None else [])
    if len(ins) != 24:
        raise _Unsupported(f"{len(ins)} inputs, expected 24 (TFLite's fused LSTM)")
    if int(c.opt("fusedActivationFunction", 4)) != 4:
        raise _Unsupported("cell gate activation other than TANH")
    if c.opt("diagonalRecurrentTensors", False):
        raise _Unsupported("diagonal recurrent weights")
    kinds = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection",
             17: "projection", 20: "layer norm", 21: "layer norm", 22: "layer norm",
             23: "layer norm"}
    used = sorted({kinds[k] for k in kinds if ins[k] >= 0})
    if used:
        raise _Unsupported(f"LSTM with {' and '.join(used)} (TFLM's kernel has neither)")
    if ins[1] < 0 or ins[5] < 0:
        raise _Unsupported("LSTM without an input gate (CIFG): TFLM's kernel needs all four")
    for k in (*range(1, 9), *range(12, 16)):
        if ins[k] < 0 or ins[k] not in c.consts:
            raise _Unsupported(f"LSTM operand {k} must be a constant tensor")
    x = c.shape(0)
    if len(x) != 3:
        raise _Unsupported(f"input rank {len(x)}, expected 3")
    dtypes = {DTYPES.get(c.tensors[ins[k]].type) for k in (0, 2)}
    if dtypes not in ({"float32"}, {"int8"}):
        raise _Unsupported(f"input / weight types {sorted(map(str, dtypes))}: float32 or int8 "
                           "(hybrid LSTM is not supported)")
    time_major = bool(c.opt("timeMajor", False))
    hidden = c.shape(2)[0]
    batch = x[1] if time_major else x[0]
    want = (x[0], x[1], hidden)
    if c.shape(0, output=True) != want:
        raise _Malformed(f"output shape {list(c.shape(0, output=True))}, expected {list(want)}")
    for k in (18, 19):
        t = c.tensors[ins[k]]
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if int(np.prod(shape)) != batch * hidden:
            raise _Malformed(f"state operand {k} has shape {list(shape)}, expected "
                             f"{batch * hidden} values")
        if ins[k] not in c.consts:
            q = _quant(t)
            dt = np.dtype(DTYPES[t.type])
            zp = int(q.zero_point[0]) if q is not None and dt == np.int8 else 0
            c.consts[ins[k]] = np.full(shape, zp, dt)
    return LstmAttrs(cell_clip=f32(c.opt("cellClip", 0.0)), time_major=time_major)


def import_gather(c: _Ctx) -> GatherAttrs:
    rank = len(c.shape(0))
    axis = int(c.opt("axis", 0))
    if int(c.opt("batchDims", 0)) != 0:
        raise _Unsupported("batch_dims != 0")
    if not -rank <= axis < rank:
        raise _Unsupported(f"axis {axis} out of range for rank {rank}")
    c.const_input(1, "indices")
    return GatherAttrs(axis=axis % rank)


def import_gelu(c: _Ctx) -> GeluAttrs:
    return GeluAttrs(approximate=bool(c.opt("approximate", False)))


def _slice_bounds(x: tuple[int, ...], begin: list[int], end: list[int], strides: list[int]
                  ) -> StridedSliceAttrs:
    """Resolved bounds (negative indices wrapped, clamped to the dims) -> StridedSliceAttrs;
    an empty or reversed slice has no IR form."""
    b_out, e_out = [], []
    for d, b, e, s in zip(x, begin, end, strides):
        if s < 1:
            raise _Unsupported(f"stride {s} (only positive strides)")
        b = min(max(b + d if b < 0 else b, 0), d)
        e = min(max(e + d if e < 0 else e, 0), d)
        if e <= b:
            raise _Unsupported(f"empty slice [{b}:{e}] of a dim of {d}")
        b_out.append(b)
        e_out.append(e)
    return StridedSliceAttrs(tuple(b_out), tuple(e_out), tuple(int(s) for s in strides))


def import_strided_slice(c: _Ctx, shrink_ok: bool = False) -> StridedSliceAttrs:
    """STRIDED_SLICE -> resolved bounds; a shrunk dim (shrink_ok: the caller reshapes it
    away) is the one-element slice [b:b+1]."""
    x = c.shape(0)
    begin = [int(v) for v in c.const_input(1, "begin").ravel()]
    end = [int(v) for v in c.const_input(2, "end").ravel()]
    strides = ([int(v) for v in c.const_input(3, "strides").ravel()]
               if len(c.op.inputs) > 3 and c.op.inputs[3] >= 0 else [1] * len(x))
    if not len(begin) == len(end) == len(strides) == len(x):
        raise _Unsupported(f"begin/end/strides of length {len(begin)}/{len(end)}/"
                           f"{len(strides)} for rank {len(x)}")
    for mask in ("ellipsisMask", "newAxisMask") + (() if shrink_ok else ("shrinkAxisMask",)):
        if int(c.opt(mask, 0)):
            raise _Unsupported(f"{mask} on a computed tensor (an IR slice keeps the rank)")
    bm, em = int(c.opt("beginMask", 0)), int(c.opt("endMask", 0))
    sm = int(c.opt("shrinkAxisMask", 0))
    if c.opt("offset", False):
        end = [b + e for b, e in zip(begin, end)]
    begin = [0 if bm >> i & 1 and not sm >> i & 1 else b for i, b in enumerate(begin)]
    end = [x[i] if em >> i & 1 else e for i, e in enumerate(end)]
    for i in range(len(x)):
        if sm >> i & 1:   # one element at begin (TFLite ignores end, stride and masks there)
            b = begin[i] + x[i] if begin[i] < 0 else begin[i]
            begin[i], end[i], strides[i] = b, b + 1, 1
    return _slice_bounds(x, begin, end, strides)


def import_slice(c: _Ctx) -> StridedSliceAttrs:
    x = c.shape(0)
    begin = [int(v) for v in c.const_input(1, "begin").ravel()]
    size = [int(v) for v in c.const_input(2, "size").ravel()]
    if not len(begin) == len(size) == len(x):
        raise _Unsupported(f"begin/size of length {len(begin)}/{len(size)} for rank {len(x)}")
    end = [d if s == -1 else b + s for d, b, s in zip(x, begin, size)]
    return _slice_bounds(x, begin, end, [1] * len(x))


def import_resize_nearest(c: _Ctx) -> ResizeAttrs:
    x = c.shape(0)
    size = [int(v) for v in c.const_input(1, "size").ravel()]
    if len(x) != 4 or len(size) != 2:
        raise _Unsupported(f"input rank {len(x)} / size {size}, expected NHWC and [H, W]")
    return ResizeAttrs(size=(size[0], size[1]), align_corners=bool(c.opt("alignCorners", False)),
                       half_pixel_centers=bool(c.opt("halfPixelCenters", False)))


def import_as_reshape(c: _Ctx) -> ReshapeAttrs:
    """EXPAND_DIMS / SQUEEZE: a RESHAPE to the output tensor's shape (same bytes)."""
    x, y = c.shape(0), c.shape(0, output=True)
    if int(np.prod(x, dtype=np.int64)) != int(np.prod(y, dtype=np.int64)):
        raise _Malformed(f"output shape {list(y)} does not hold input {list(x)}")
    return ReshapeAttrs(shape=y)


def split_parts(c: _Ctx) -> list[tuple[int, int, StridedSliceAttrs]]:
    """SPLIT (axis, x) / SPLIT_V (x, sizes, axis): one (output, data input, slice) per part."""
    split_v = len(c.op.inputs) == 3
    src = 0 if split_v else 1
    x = c.shape(src)
    axis = int(c.const_input(2 if split_v else 0, "axis").ravel()[0])
    if not -len(x) <= axis < len(x):
        raise _Unsupported(f"axis {axis} out of range for rank {len(x)}")
    axis %= len(x)
    n = len(c.op.outputs)
    if split_v:
        sizes = [int(v) for v in c.const_input(1, "size_splits").ravel()]
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = x[axis] - (sum(sizes) + 1)
    else:
        sizes = [x[axis] // n] * n if n and x[axis] % n == 0 else []
    if len(sizes) != n or sum(sizes) != x[axis] or min(sizes, default=0) < 1:
        raise _Unsupported(f"cannot split {x[axis]} into {n} parts {sizes}")
    parts, start = [], 0
    for j, size in enumerate(sizes):
        begin = [start if i == axis else 0 for i in range(len(x))]
        end = [start + size if i == axis else d for i, d in enumerate(x)]
        parts.append((j, src, StridedSliceAttrs(tuple(begin), tuple(end), (1,) * len(x))))
        start += size
    return parts


def unpack_parts(c: _Ctx) -> list[StridedSliceAttrs]:
    """UNPACK (x, axis, num): output j is x[..., j:j+1, ...] with that axis dropped."""
    x = c.shape(0)
    axis = int(c.opt("axis", 0))
    if not -len(x) <= axis < len(x):
        raise _Unsupported(f"axis {axis} out of range for rank {len(x)}")
    axis %= len(x)
    if len(c.op.outputs) != x[axis]:
        raise _Malformed(f"{len(c.op.outputs)} outputs for axis {axis} of {list(x)}")
    return [StridedSliceAttrs(tuple(j if i == axis else 0 for i in range(len(x))),
                              tuple(j + 1 if i == axis else d for i, d in enumerate(x)),
                              (1,) * len(x)) for j in range(x[axis])]


# ---------------------------------------------------------------- constant folding at import
def _fold_strided_slice(o: Any, v: list[np.ndarray]) -> np.ndarray | None:
    opts = o.builtinOptions
    bit = (lambda name, i: int(getattr(opts, name, 0) or 0) >> i & 1) if opts else \
        (lambda name, i: 0)
    if any(bit(m, i) for m in ("ellipsisMask", "newAxisMask") for i in range(v[0].ndim)):
        return None
    strides = v[3].ravel() if len(v) > 3 else np.ones(v[0].ndim, np.int64)
    index: list[Any] = []
    for i, (b, e, s) in enumerate(zip(v[1].ravel(), v[2].ravel(), strides)):
        if getattr(opts, "offset", False):
            e = b + e
        if bit("shrinkAxisMask", i):
            index.append(int(b))
        else:
            index.append(slice(None if bit("beginMask", i) else int(b),
                               None if bit("endMask", i) else int(e), int(s)))
    return v[0][tuple(index)]


def _opt(o: Any, name: str, default: Any) -> Any:
    return default if o.builtinOptions is None else getattr(o.builtinOptions, name, default)


# builtin -> numpy on constant operands (shape arithmetic: Keras reshapes, SHAPE chains)
FOLDERS: dict[str, Callable[[Any, list[np.ndarray]], np.ndarray | None]] = {
    "STRIDED_SLICE": _fold_strided_slice,
    "PACK": lambda o, v: np.stack(v, axis=int(_opt(o, "axis", 0))),
    "CONCATENATION": lambda o, v: np.concatenate(v, axis=int(_opt(o, "axis", 0))),
    "GATHER": lambda o, v: np.take(v[0], v[1], axis=int(_opt(o, "axis", 0))),
    "CAST": lambda o, v: v[0],
    "RESHAPE": lambda o, v: v[0],
    "EXPAND_DIMS": lambda o, v: v[0],
    "SQUEEZE": lambda o, v: v[0],
    "SLICE": lambda o, v: v[0][tuple(slice(int(b), None if int(s) == -1 else int(b) + int(s))
                                     for b, s in zip(v[1].ravel(), v[2].ravel()))],
    "ADD": lambda o, v: v[0] + v[1],
    "SUB": lambda o, v: v[0] - v[1],
    "MUL": lambda o, v: v[0] * v[1],
    "FLOOR_DIV": lambda o, v: v[0] // v[1],
    "FILL": lambda o, v: np.full(tuple(int(d) for d in v[0].ravel()), v[1].reshape(())),
    "REDUCE_PROD": lambda o, v: np.prod(v[0], axis=tuple(int(a) for a in v[1].ravel()),
                                        keepdims=bool(_opt(o, "keepDims", False))),
}


def fold_constant_op(tname: str, o: Any, ins: list[int], outs: list[int], tensors: list[Any],
                     consts: dict[int, np.ndarray]) -> bool:
    """Evaluate a shape computation at import: SHAPE of a tensor with a static shape, and the
    FOLDERS ops (integer arithmetic only) when every operand is constant. The value, cast to
    and shaped as the output tensor, joins `consts`; True if folded."""
    if len(outs) != 1 or outs[0] < 0 or outs[0] in consts:
        return False
    t = tensors[outs[0]]
    if t.type not in DTYPES:
        return False
    dt = np.dtype(DTYPES[t.type])
    if tname == "SHAPE" and ins and ins[0] >= 0 and tensors[ins[0]].shape is not None:
        val = np.asarray(tensors[ins[0]].shape)
    elif tname in FOLDERS and ins and all(i < 0 or i in consts for i in ins):
        v = [consts[i] for i in ins if i >= 0]
        arith = tname in ("ADD", "SUB", "MUL", "FLOOR_DIV", "REDUCE_PROD")
        if tname != "FILL" and any(a.dtype.kind not in "iub" for a in v) and \
                (arith or dt.kind == "f"):   # FILL copies its value: exact in any type
            return False   # float arithmetic stays in the graph, where the runtime rounds it
        if arith and int(_opt(o, "fusedActivationFunction", 0)):
            return False
        val = FOLDERS[tname](o, v)
        if val is None:
            return False
    else:
        return False
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else np.shape(val)))
    val = np.asarray(val).astype(dt)
    if val.size != int(np.prod(shape, dtype=np.int64)):
        return False
    consts[outs[0]] = val.reshape(shape)
    return True


# Op -> importer: options (and constant operands) -> the attrs dataclass
IMPORTERS: dict[Op, Callable[[_Ctx], Any]] = {
    Op.CONV2D: import_conv,
    Op.DWCONV2D: import_dwconv,
    Op.FC: import_fc,
    Op.AVGPOOL2D: import_pool,
    Op.MAXPOOL2D: import_pool,
    Op.ADD: import_binary,
    Op.SUB: import_binary,
    Op.MUL: import_binary,
    Op.RESHAPE: import_reshape,
    Op.SOFTMAX: import_softmax,
    Op.CONCAT: import_concat,
    Op.PAD: import_pad,
    Op.MEAN: import_mean,
    Op.RELU: import_noattrs,
    Op.RELU6: import_noattrs,
    Op.LOGISTIC: import_noattrs,
    Op.TANH: import_noattrs,
    Op.HARD_SWISH: import_noattrs,
    Op.QUANTIZE: import_noattrs,
    Op.DEQUANTIZE: import_noattrs,
    Op.LEAKY_RELU: import_leaky_relu,
    Op.TRANSPOSE: import_transpose,
    Op.DIV: import_binary,
    Op.MATMUL: import_matmul,
    Op.LRN: import_lrn,
    Op.STRIDED_SLICE: import_strided_slice,
    Op.RESIZE_NEAREST: import_resize_nearest,
    Op.RESIZE_BILINEAR: import_resize_nearest,
    Op.MAXIMUM: import_noattrs,
    Op.MINIMUM: import_noattrs,
    Op.SQRT: import_noattrs,
    Op.RSQRT: import_noattrs,
    Op.EXP: import_noattrs,
    Op.GELU: import_gelu,
    Op.SQUARED_DIFFERENCE: import_noattrs,
    Op.SUM: import_mean,
    Op.REDUCE_MAX: import_mean,
    Op.REDUCE_MIN: import_mean,
    Op.GATHER: import_gather,
    Op.PRELU: import_noattrs,
    Op.TRANSPOSE_CONV: import_transpose_conv,
    Op.LSTM: import_lstm,
}

# builtins that are another spelling of an IR op
ALIASES: dict[str, Op] = {"PADV2": Op.PAD}

# operand positions an op consumes into its attrs (dropped from the IR node's inputs)
CONSUMED: dict[Op, int] = {Op.RESHAPE: 1, Op.PAD: 1, Op.MEAN: 1, Op.TRANSPOSE: 1}


# first group of issue 11/20: builtins spelled as other IR ops (their own importers below),
# SPLIT / SPLIT_V as one STRIDED_SLICE per output, and operands consumed into attrs
ALIASES.update({"SLICE": Op.STRIDED_SLICE, "SPLIT": Op.STRIDED_SLICE,
                "UNPACK": Op.STRIDED_SLICE, "PACK": Op.CONCAT,
                "SPLIT_V": Op.STRIDED_SLICE, "EXPAND_DIMS": Op.RESHAPE, "SQUEEZE": Op.RESHAPE})
BY_BUILTIN: dict[str, Callable[[_Ctx], Any]] = {
    "SLICE": import_slice, "EXPAND_DIMS": import_as_reshape, "SQUEEZE": import_as_reshape}
SPLITS = ("SPLIT", "SPLIT_V")
CONSUMED[Op.STRIDED_SLICE] = 1
CONSUMED[Op.RESIZE_NEAREST] = 1
CONSUMED[Op.RESIZE_BILINEAR] = 1


def supported_builtins() -> list[str]:
    return sorted([OPS[op].tflite for op in IMPORTERS if OPS[op].tflite] + list(ALIASES))


# file operand positions of the IR node's inputs (-1: absent optional)
OPERAND_ORDER: dict[Op, tuple[int, ...]] = {Op.TRANSPOSE_CONV: (2, 1, 3)}

# reductions take their axes operand into MeanAttrs, as MEAN does
CONSUMED.update({Op.SUM: 1, Op.REDUCE_MAX: 1, Op.REDUCE_MIN: 1})


# ---------------------------------------------------------------- the reader
def parse_model(buf: bytes, path: str) -> Any:
    """Bytes -> schema ModelT; any parse failure becomes one ModelError."""
    if schema is None:
        raise ModelError(path, "ai-edge-litert (TFLite schema) is not installed")
    if len(buf) < 8:
        raise ModelError(path, f"too short for a .tflite file ({len(buf)} bytes)")
    if buf[4:8] != FILE_IDENTIFIER:
        raise ModelError(path, f"not a .tflite file (file identifier {bytes(buf[4:8])!r}, "
                               f"expected {FILE_IDENTIFIER!r})")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(buf), 0)
    except Exception as e:  # noqa: BLE001 - flatbuffers raises anything on corrupt input
        raise ModelError(path, f"truncated or corrupt flatbuffer ({type(e).__name__}: {e})"
                         ) from None
    if not model.subgraphs:
        raise ModelError(path, "model has no subgraph")
    return model


def _buffer_bytes(model: Any, buf: bytes, idx: int, path: str, tname: str) -> bytes | None:
    if not 0 <= idx < len(model.buffers or []):
        raise ModelError(path, f"tensor {tname!r} refers to missing buffer {idx} "
                               f"(model has {len(model.buffers or [])})")
    b = model.buffers[idx]
    if b.data is not None and len(b.data):
        return bytes(np.asarray(b.data, dtype=np.uint8))
    if b.offset and b.offset > 1:   # large-model layout: data after the flatbuffer
        if b.offset + b.size > len(buf):
            raise ModelError(path, f"buffer {idx} of tensor {tname!r} lies past end of file")
        return bytes(buf[b.offset:b.offset + b.size])
    return None


def _quant(t: Any) -> QuantParams | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zp = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else np.zeros(len(q.scale))
    if len(zp) == 1 and len(q.scale) > 1:
        zp = np.repeat(zp, len(q.scale))
    return QuantParams(np.asarray(q.scale, np.float32), np.asarray(zp, np.int64),
                       int(q.quantizedDimension))


def _name(raw: Any, idx: int) -> str:
    if raw is None:
        return f"t{idx}"
    s = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    return s or f"t{idx}"


def read_tflite(path: str | Path, subgraph: int = 0) -> Graph:
    """Read a .tflite file into the IR (subgraph 0 unless told otherwise)."""
    p = str(path)
    try:
        buf = Path(path).read_bytes()
    except OSError as e:
        raise ModelError(p, f"cannot read ({e.strerror or e})") from None
    return graph_from_bytes(buf, p, subgraph)


def graph_from_bytes(buf: bytes, path: str = "<bytes>", subgraph: int = 0) -> Graph:
    model = parse_model(buf, path)
    try:
        return _to_graph(model, buf, path, subgraph)
    except (ModelError, UnsupportedOpError):
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file can break any field access
        raise ModelError(path, f"malformed model ({type(e).__name__}: {e})") from None


def _decode_consts(model: Any, buf: bytes, tensors: list[Any], path: str
                   ) -> tuple[dict[int, np.ndarray], set[int]]:
    """Tensor index -> constant data, decoded once with its shape checked against the buffer
    size; and the indices of sparse tensors (kept as raw bytes, like unsupported types: an op
    using one is refused)."""
    consts: dict[int, np.ndarray] = {}
    sparse: set[int] = set()
    for i, t in enumerate(tensors):
        tname = _name(t.name, i)
        data = _buffer_bytes(model, buf, int(t.buffer), path, tname)
        if data is None:
            continue
        if t.type not in DTYPES or t.sparsity is not None:
            consts[i] = np.frombuffer(data, np.uint8)   # kept raw; an op using it will fail
            if t.sparsity is not None:
                sparse.add(i)
            continue
        dt = np.dtype(DTYPES[t.type])
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(data):
            raise ModelError(path, f"tensor {i} {tname!r}: buffer has {len(data)} bytes, "
                                   f"shape {list(shape)} of {dt.name} needs "
                                   f"{int(np.prod(shape, dtype=np.int64)) * dt.itemsize}")
        consts[i] = np.frombuffer(data, dt).reshape(shape).copy()
    return consts, sparse


def _to_graph(model: Any, buf: bytes, path: str, sg_index: int) -> Graph:
    sg = model.subgraphs[sg_index]
    tensors = sg.tensors or []
    n_t = len(tensors)
    names = builtin_names()

    def check_index(i: int, where: str) -> int:
        i = int(i)
        if not -1 <= i < n_t:
            raise ModelError(path, f"{where} refers to tensor {i}, but subgraph has {n_t}")
        return i

    consts, sparse = _decode_consts(model, buf, tensors, path)
    for i, t in enumerate(tensors):          # before any runtime or importer uses them
        q = _quant(t) if t.type in DTYPES else None
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        why = quant_problem(q, DTYPES[t.type], shape) if q is not None else None
        if q is None and DTYPES.get(t.type) == "int8":    # LiteRT aborts on one (SIGABRT)
            why = "int8 without quantization parameters (scale, zero point)"
        if why:
            raise ModelError(path, f"tensor {i} {_name(t.name, i)!r}: {why}")

    # operators -> (op, attrs) or a problem
    problems: list[tuple[int, str, str, str]] = []
    imported: list[tuple[int, Op, Any, list[int], list[int]]] = []
    hybrid: set[int] = set()
    asymmetric: set[int] = set()   # hybrid weights of layers quantizing inputs asymmetrically
    folded = 0
    for k, o in enumerate(sg.operators or []):
        ins = [check_index(i, f"operator {k} input") for i in (o.inputs if o.inputs is not None
                                                                 else [])]
        outs = [check_index(i, f"operator {k} output") for i in (o.outputs if o.outputs
                                                                   is not None else [])]
        if not 0 <= o.opcodeIndex < len(model.operatorCodes or []):
            raise ModelError(path, f"operator {k} has opcode index {o.opcodeIndex}, model has "
                                   f"{len(model.operatorCodes or [])} operator codes")
        oc = model.operatorCodes[o.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        tname = names.get(code, f"BUILTIN_{code}")
        label = ",".join(_name(tensors[i].name, i) for i in outs if i >= 0)[:80] or f"op{k}"
        if tname == "CUSTOM":
            custom = oc.customCode.decode("utf-8", "replace") if oc.customCode else "?"
            problems.append((k, label, f"CUSTOM:{custom}", "custom ops are not supported"))
            continue
        if fold_constant_op(tname, o, ins, outs, tensors, consts):   # static shape math
            continue
        if tname in tflite_patterns.PENDING:   # meaningful with its neighbours: rewritten below
            imported.append((k, None, (tname, o, label), ins, outs))
            continue
        op = OP_BY_TFLITE.get(tname) or ALIASES.get(tname)
        if op is None or op not in IMPORTERS:
            problems.append((k, label, tname, "no importer for this builtin"))
            continue
        if not outs or outs[0] < 0:
            raise ModelError(path, f"operator {k} ({tname}) has no output")
        try:
            lo = OPS[op].n_inputs[0]
            if len([i for i in ins if i >= 0]) < lo:
                raise _Unsupported(f"{len(ins)} inputs, expected at least {lo}")
            if op == Op.DEQUANTIZE and ins[0] in consts:
                # float16 / int8 weights stored compressed: fold into a float32 constant
                consts[outs[0]] = _const_dequantize(consts[ins[0]], tensors[ins[0]])
                folded += 1
                continue
            for i in ins + outs:
                if i in sparse:
                    raise _Unsupported(f"tensor {i} is sparse (densify the model first)")
                if i >= 0 and tensors[i].type not in DTYPES:
                    raise _Unsupported(f"tensor {i} has type {type_name(tensors[i].type)}, "
                                       f"supported: {', '.join(sorted(DTYPES.values()))}")
            if tname == "STRIDED_SLICE" and int(getattr(o.builtinOptions, "shrinkAxisMask", 0)
                                                  or 0):
                # a slice keeping the shrunk dims as 1, then a RESHAPE dropping them (a
                # tensor of its own, past the file's: Keras' last LSTM step x[:, -1, :])
                a = import_strided_slice(_Ctx(o, tensors, consts), shrink_ok=True)
                mid = copy.copy(tensors[outs[0]])
                mid.shape = np.asarray([-(-(e - b) // s) for b, e, s in
                                        zip(a.begin, a.end, a.strides)], np.int32)
                mid.name = (_name(tensors[outs[0]].name, outs[0]) + "/unshrunk").encode()
                tensors.append(mid)
                imported += [(k, op, a, [ins[0]], [len(tensors) - 1]),
                             (k, Op.RESHAPE, ReshapeAttrs(_Ctx(o, tensors, consts).shape(
                                 0, output=True)), [len(tensors) - 1], [outs[0]])]
                continue
            if tname == "UNPACK":   # per output: a STRIDED_SLICE, a RESHAPE dropping the axis
                for j, a in enumerate(unpack_parts(_Ctx(o, tensors, consts))):
                    mid = copy.copy(tensors[outs[j]])
                    mid.shape = np.asarray([e - b for b, e in zip(a.begin, a.end)], np.int32)
                    mid.name = (_name(tensors[outs[j]].name, outs[j]) + "/unpacked").encode()
                    tensors.append(mid)
                    imported += [(k, op, a, [ins[0]], [len(tensors) - 1]),
                                 (k, Op.RESHAPE, ReshapeAttrs(_Ctx(o, tensors, consts).shape(
                                     j, output=True)), [len(tensors) - 1], [outs[j]])]
                continue
            if tname == "PACK":   # a RESHAPE inserting the axis per input, one CONCAT
                y = _Ctx(o, tensors, consts).shape(0, output=True)
                axis = int(_opt(o, "axis", 0)) % max(len(y), 1)
                mids = []
                for i in ins:
                    mid = copy.copy(tensors[i])
                    mid.shape = np.asarray(y[:axis] + (1,) + y[axis + 1:], np.int32)
                    mid.name = (_name(tensors[i].name, i) + f"/packed{k}").encode()
                    mid.buffer = 0
                    tensors.append(mid)
                    mids.append(len(tensors) - 1)
                    imported.append((k, Op.RESHAPE, ReshapeAttrs(tuple(int(d) for d in mid.shape)),
                                     [i], [mids[-1]]))
                imported.append((k, op, ConcatAttrs(axis=axis), mids, outs[:1]))
                continue
            if tname in SPLITS:   # one STRIDED_SLICE per output
                imported += [(k, op, a, [ins[src]], [outs[j]])
                             for j, src, a in split_parts(_Ctx(o, tensors, consts))]
                continue
            attrs = BY_BUILTIN.get(tname, IMPORTERS[op])(_Ctx(o, tensors, consts))
            if op == Op.RESHAPE and tuple(_Ctx(o, tensors, consts).shape(0, output=True)) \
                    != attrs.shape:   # a dynamic dim recorded as 1: the operand decides
                tensors[outs[0]] = copy.copy(tensors[outs[0]])
                tensors[outs[0]].shape = np.asarray(attrs.shape, np.int32)
            w = _hybrid_weight(op, ins, tensors, consts)
            if w is not None:
                hybrid.add(w)
                if getattr(o.builtinOptions, "asymmetricQuantizeInputs", False):
                    asymmetric.add(w)   # no IR attr says so: dequantized float, not hybrid
        except _Unsupported as e:
            problems.append((k, label, tname, str(e)))
            continue
        except _Malformed as e:
            raise ModelError(path, f"operator {k} ({tname}): {e}") from None
        imported.append((k, op, attrs, ins, outs))
    imported, pending = tflite_patterns.rewrite(imported, tensors, consts,
                                                [int(i) for i in (sg.outputs if sg.outputs
                                                                  is not None else [])])
    problems = sorted(problems + pending)
    if problems:
        raise UnsupportedOpError(path, problems, supported_builtins())

    # tensors actually used by the IR (operands consumed into attrs are dropped)
    used: list[int] = [check_index(i, "subgraph input") for i in (sg.inputs if sg.inputs
                                                                  is not None else [])]
    node_ins: list[list[int]] = []
    for k, op, attrs, ins, outs in imported:
        keep = ins[:CONSUMED[op]] if op in CONSUMED else ins
        if op in OPERAND_ORDER:   # the IR's operand order differs from the file's
            keep = [ins[i] if i < len(ins) else -1 for i in OPERAND_ORDER[op]]
        node_ins.append(keep)
        used += [i for i in keep + outs if i >= 0]
    used += [check_index(i, "subgraph output") for i in (sg.outputs if sg.outputs is not None
                                                         else [])]
    g = Graph(name=_model_name(sg, path))
    ir_name: dict[int, str] = {}
    for i in sorted(set(used)):
        t = tensors[i]
        if t.type not in DTYPES:
            raise ModelError(path, f"tensor {i} {_name(t.name, i)!r} has unsupported type "
                                   f"{type_name(t.type)}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        name = g.unique_name(_name(t.name, i))
        if i in hybrid:   # symmetric int8 keeps its scales: a hybrid weight (sdk/ir.py)
            q = _quant(t)
            keep = (q if DTYPES[t.type] == "int8" and not q.zero_point.any()
                    and i not in asymmetric else None)
            g.add_tensor(Tensor(name, shape, "float32", keep, _dequantize(consts[i], q)))
            g.meta.setdefault("dequantized_weights", []).append(name)
        else:
            g.add_tensor(Tensor(name, shape, DTYPES[t.type], _quant(t), consts.get(i)))
        ir_name[i] = name
    g.inputs = [ir_name[i] for i in (sg.inputs if sg.inputs is not None else []) if i >= 0]
    g.outputs = [ir_name[i] for i in (sg.outputs if sg.outputs is not None else []) if i >= 0]
    for (k, op, attrs, ins, outs), keep in zip(imported, node_ins):
        g.nodes.append(Node(op, tuple(ir_name[i] if i >= 0 else "" for i in keep),
                            tuple(ir_name[i] for i in outs if i >= 0), attrs,
                            f"{op.value.lower()}_{k}"))
    g.meta["source"] = path
    g.meta["format"] = "tflite"
    g.meta["tflite_index"] = {v: k for k, v in ir_name.items() if k < n_t}
    if folded:
        g.meta["folded_dequantize"] = folded
    if len(model.subgraphs) > 1:
        g.meta["ignored_subgraphs"] = len(model.subgraphs) - 1
    try:
        verify(g)
    except IRError as e:
        raise ModelError(path, f"inconsistent graph: {e}") from None
    return g


def _hybrid_weight(op: Op, ins: list[int], tensors: list[Any], consts: dict) -> int | None:
    """Index of an int8 weight feeding a float conv/FC (dynamic-range quantization), else None.

    LiteRT runs such "hybrid" layers by quantizing activations on the fly; the IR has no such
    op, so the importer dequantizes the weight to float32 and the graph stays a float graph;
    symmetric int8 weights keep their scales as a hybrid weight (sdk/ir.py: hybrid_int8).
    """
    if op in WEIGHTED and len(ins) > 1 and ins[1] >= 0:
        x, w = DTYPES.get(tensors[ins[0]].type), DTYPES.get(tensors[ins[1]].type)
        if x == "float32" and w in ("int8", "uint8"):
            if ins[1] not in consts or _quant(tensors[ins[1]]) is None:
                raise _Unsupported("float input with non-constant or unquantized int8 weights")
            return ins[1]
    return None


def _const_dequantize(data: np.ndarray, t: Any) -> np.ndarray:
    q = _quant(t)
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    if q is None:
        raise _Malformed("DEQUANTIZE of an integer constant without quantization")
    return _dequantize(data, q)


def _dequantize(data: np.ndarray, q: QuantParams) -> np.ndarray:
    shape = [1] * data.ndim
    if q.per_channel:
        shape[q.axis] = -1
    scale = q.scale.reshape(shape).astype(np.float32)
    zp = q.zero_point.reshape(shape)
    return (scale * (data.astype(np.int64) - zp).astype(np.float32)).astype(np.float32)


def _model_name(sg: Any, path: str) -> str:
    stem = Path(path).stem if path and not path.startswith("<") else ""
    return stem or (_name(sg.name, 0) if sg.name else "model")
