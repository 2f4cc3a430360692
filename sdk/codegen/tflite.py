"""IR (float or int8) -> .tflite, through the TFLite schema's object API + flatbuffers.Builder.

The file is schema version 3 with identifier "TFL3"; buffer 0 is the empty sentinel and each
constant gets its own 16-byte-aligned buffer; operator codes carry both builtin_code and
deprecated_builtin_code (min(code, 127)), as readers of either era expect.

Padding: TFLite has no explicit pads, only SAME and VALID. A conv/pool whose explicit pad equals
what SAME (or VALID) computes is written with that padding. Any other pad is written as an
explicit PAD op (PADV2 for max pooling, padding with the lowest value) in front of a VALID
conv/pool -- numerically the same, since TFLite pads conv inputs with the input zero point.
Average pooling cannot take that route (TFLite excludes padded taps from the divisor), so an
average pool with other pads is refused with an UnsupportedOpError.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np

from edgeforge.errors import UnsupportedOpError
from edgeforge.frontends.tflite import ACTS, DTYPES, FILE_IDENTIFIER, PAD_SAME, PAD_VALID, same_pads
from edgeforge.ir import OPS, Act, Graph, Node, Op, QuantParams, Tensor, hybrid_int8, verify

try:
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover
    schema = None

SCHEMA_VERSION = 3
TYPE_CODES: dict[str, int] = {v: k for k, v in DTYPES.items()}
ACT_CODES: dict[Act, int] = {v: k for k, v in ACTS.items()}


class _Refused(Exception):
    """An IR node with no .tflite form (collected into one UnsupportedOpError)."""


class _AlignedBuffer:
    """schema BufferT whose data vector starts on a 16-byte boundary (as the converter does)."""

    def __init__(self, data: bytes | None):
        self.data = data

    def Pack(self, builder: flatbuffers.Builder) -> int:
        vec = None
        if self.data:
            builder.StartVector(1, len(self.data), 16)
            builder.head -= len(self.data)
            builder.Bytes[builder.head:builder.head + len(self.data)] = self.data
            vec = builder.EndVector()
        schema.BufferStart(builder)
        if vec is not None:
            schema.BufferAddData(builder, vec)
        return schema.BufferEnd(builder)


class _Writer:
    """Accumulates tensors, buffers, operator codes and operators for subgraph 0."""

    def __init__(self, g: Graph):
        self.g = g
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [_AlignedBuffer(None)]
        self.index: dict[str, int] = {}
        self.codes: dict[str, int] = {}
        self.opcodes: list[Any] = []
        self.operators: list[Any] = []
        self.names: set[str] = set(g.tensors)
        self.codes_by_name = {k: v for k, v in vars(schema.BuiltinOperator).items()
                              if not k.startswith("_")}

    # -- tensors
    def tensor(self, name: str) -> int:
        """Index of an IR tensor ("" -> -1, the optional-input marker)."""
        if not name:
            return -1
        if name not in self.index:
            self.index[name] = self._add(self.g.tensors[name])
        return self.index[name]

    def _add(self, t: Tensor) -> int:
        tt = schema.TensorT()
        tt.name = t.name.encode()
        tt.shape = np.asarray(t.shape, dtype=np.int32)
        if t.dtype not in TYPE_CODES:
            raise _Refused(f"tensor {t.name!r} has dtype {t.dtype} with no TFLite type")
        tt.type = TYPE_CODES[t.dtype]
        tt.buffer = 0
        hybrid = hybrid_int8(t)
        if hybrid is not None:   # a hybrid weight is stored as int8, as the converter does
            tt.type = TYPE_CODES["int8"]
        if t.data is not None:
            data = np.ascontiguousarray(hybrid if hybrid is not None
                                        else np.asarray(t.data, dtype=t.dtype))
            self.buffers.append(_AlignedBuffer(data.tobytes()))
            tt.buffer = len(self.buffers) - 1
        if t.quant is not None:
            q = schema.QuantizationParametersT()
            q.scale = np.asarray(t.quant.scale, np.float32)
            q.zeroPoint = np.asarray(t.quant.zero_point, np.int64)
            q.quantizedDimension = int(t.quant.axis)
            tt.quantization = q
        self.tensors.append(tt)
        return len(self.tensors) - 1

    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def const(self, base: str, data: np.ndarray, quant: QuantParams | None = None) -> int:
        data = np.asarray(data)
        name = self.fresh(base)
        return self._add(Tensor(name, tuple(data.shape), data.dtype.name, quant, data))

    def temp(self, base: str, like: Tensor, shape: tuple[int, ...]) -> int:
        return self._add(Tensor(self.fresh(base), shape, like.dtype, like.quant, None))

    # -- operators
    def emit(self, builtin: str, ins: list[int], outs: list[int], opt_type: str = "NONE",
             opts: Any = None) -> None:
        if builtin not in self.codes:
            code = self.codes_by_name[builtin]
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self.codes[builtin] = len(self.opcodes)
            self.opcodes.append(oc)
        o = schema.OperatorT()
        o.opcodeIndex = self.codes[builtin]
        o.inputs = np.asarray(ins, dtype=np.int32)
        o.outputs = np.asarray(outs, dtype=np.int32)
        o.builtinOptionsType = getattr(schema.BuiltinOptions, opt_type)
        o.builtinOptions = opts
        self.operators.append(o)


# ---------------------------------------------------------------- per-op exporters
def _opts(cls_name: str, **fields: Any) -> Any:
    o = getattr(schema, cls_name)()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def _act(a: Act) -> int:
    return ACT_CODES[a]


def _padding(w: _Writer, n: Node, filt: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int], pad_value: str) -> tuple[int, int]:
    """(TFLite padding code, input tensor index), inserting a PAD op for other pads."""
    x = w.g.tensors[n.inputs[0]]
    hw = (x.shape[1], x.shape[2])
    pad = tuple(n.attrs.pad)
    for code in (PAD_VALID, PAD_SAME):
        if same_pads(hw, filt, stride, dilation, code) == pad:
            return code, w.tensor(n.inputs[0])
    if pad_value == "refuse":
        raise _Refused(f"pad {pad} is neither SAME nor VALID, and TFLite's average pool "
                       f"excludes padded taps, so no PAD op can stand in")
    top, left, bottom, right = pad
    shape = (x.shape[0], hw[0] + top + bottom, hw[1] + left + right, x.shape[3])
    padded = w.temp(f"{n.inputs[0]}/pad", x, shape)
    pads = w.const(f"{n.inputs[0]}/paddings",
                   np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32))
    if pad_value == "zero":
        w.emit("PAD", [w.tensor(n.inputs[0]), pads], [padded], "PadOptions",
               _opts("PadOptionsT"))
    else:   # max pool: pad with the lowest value so padded taps never win
        low = np.array(np.iinfo(x.dtype).min if x.dtype != "float32"
                       else np.finfo(np.float32).min, dtype=x.dtype)
        value = w.const(f"{n.inputs[0]}/pad_value", low, x.quant)
        w.emit("PADV2", [w.tensor(n.inputs[0]), pads, value], [padded], "PadV2Options",
               _opts("PadV2OptionsT"))
    return PAD_VALID, padded


def _io(w: _Writer, n: Node) -> tuple[list[int], list[int]]:
    return [w.tensor(i) for i in n.inputs], [w.tensor(o) for o in n.outputs]


def _with_bias(w: _Writer, n: Node, ins: list[int]) -> list[int]:
    """LiteRT's conv kernels require a bias (int8: `has_bias`), so an absent one is written
    as zeros: int32 with scale in_scale * w_scale for int8 graphs (int64 for 16x8, whose
    accumulator follows the bias type: TFLM sums a bias-less 16x8 layer in int64), float32
    otherwise."""
    if len(ins) > 2 and ins[2] >= 0:
        return ins
    x, wt = w.g.tensors[n.inputs[0]], w.g.tensors[n.inputs[1]]
    cout = wt.shape[OPS[n.op].out_axis]
    if wt.quant is not None and x.quant is not None:
        scale = (x.quant.scale[0] * np.broadcast_to(wt.quant.scale, (cout,))).astype(np.float32)
        q = QuantParams(scale, np.zeros(cout, np.int64), 0)
        dtype = np.int64 if x.dtype == "int16" else np.int32
        b = w.const(f"{n.outputs[0]}/zero_bias", np.zeros(cout, dtype), q)
    else:
        b = w.const(f"{n.outputs[0]}/zero_bias", np.zeros(cout, np.float32))
    return ins[:2] + [b]


def export_conv(w: _Writer, n: Node) -> None:
    a, wt = n.attrs, w.g.tensors[n.inputs[1]]
    code, x = _padding(w, n, (wt.shape[1], wt.shape[2]), a.stride, a.dilation, "zero")
    ins, outs = _io(w, n)
    w.emit("CONV_2D", _with_bias(w, n, [x] + ins[1:]), outs, "Conv2DOptions", _opts(
        "Conv2DOptionsT", padding=code, strideH=a.stride[0], strideW=a.stride[1],
        dilationHFactor=a.dilation[0], dilationWFactor=a.dilation[1],
        fusedActivationFunction=_act(a.act)))


def export_dwconv(w: _Writer, n: Node) -> None:
    a, wt = n.attrs, w.g.tensors[n.inputs[1]]
    code, x = _padding(w, n, (wt.shape[1], wt.shape[2]), a.stride, a.dilation, "zero")
    ins, outs = _io(w, n)
    opts = _opts("DepthwiseConv2DOptionsT", padding=code, strideH=a.stride[0],
                 strideW=a.stride[1], dilationHFactor=a.dilation[0],
                 dilationWFactor=a.dilation[1], depthMultiplier=a.depth_multiplier,
                 fusedActivationFunction=_act(a.act))
    w.emit("DEPTHWISE_CONV_2D", _with_bias(w, n, [x] + ins[1:]), outs, "DepthwiseConv2DOptions",
           opts)


def export_fc(w: _Writer, n: Node) -> None:
    ins, outs = _io(w, n)
    w.emit("FULLY_CONNECTED", ins, outs, "FullyConnectedOptions", _opts(
        "FullyConnectedOptionsT", fusedActivationFunction=_act(n.attrs.act),
        keepNumDims=bool(n.attrs.keep_num_dims)))


def _export_pool(builtin: str, pad_value: str) -> Callable[[_Writer, Node], None]:
    def export(w: _Writer, n: Node) -> None:
        a = n.attrs
        if a.count_include_pad and any(a.pad) and builtin == "AVERAGE_POOL_2D":
            raise _Refused("count_include_pad=True with padding has no TFLite form")
        code, x = _padding(w, n, a.kernel, a.stride, (1, 1), pad_value)
        _, outs = _io(w, n)
        w.emit(builtin, [x], outs, "Pool2DOptions", _opts(
            "Pool2DOptionsT", padding=code, strideH=a.stride[0], strideW=a.stride[1],
            filterHeight=a.kernel[0], filterWidth=a.kernel[1],
            fusedActivationFunction=_act(a.act)))
    return export


def _export_binary(builtin: str, opt: str) -> Callable[[_Writer, Node], None]:
    def export(w: _Writer, n: Node) -> None:
        ins, outs = _io(w, n)
        w.emit(builtin, ins, outs, opt, _opts(opt + "T", fusedActivationFunction=_act(n.attrs.act)))
    return export


def _export_plain(builtin: str) -> Callable[[_Writer, Node], None]:
    def export(w: _Writer, n: Node) -> None:
        ins, outs = _io(w, n)
        w.emit(builtin, ins, outs)
    return export


def export_reshape(w: _Writer, n: Node) -> None:
    shape = np.asarray(n.attrs.shape, np.int32)
    ins, outs = _io(w, n)
    w.emit("RESHAPE", [ins[0], w.const(f"{n.outputs[0]}/shape", shape)], outs,
           "ReshapeOptions", _opts("ReshapeOptionsT", newShape=shape.copy()))


def export_softmax(w: _Writer, n: Node) -> None:
    rank = len(w.g.tensors[n.inputs[0]].shape)
    if n.attrs.axis not in (rank - 1, -1):
        raise _Refused(f"softmax over axis {n.attrs.axis}; TFLite only has the last axis")
    ins, outs = _io(w, n)
    w.emit("SOFTMAX", ins, outs, "SoftmaxOptions", _opts("SoftmaxOptionsT", beta=n.attrs.beta))


def export_concat(w: _Writer, n: Node) -> None:
    ins, outs = _io(w, n)
    w.emit("CONCATENATION", ins, outs, "ConcatenationOptions", _opts(
        "ConcatenationOptionsT", axis=n.attrs.axis, fusedActivationFunction=_act(n.attrs.act)))


def export_pad(w: _Writer, n: Node) -> None:
    pads = w.const(f"{n.outputs[0]}/paddings", np.asarray(n.attrs.pads, np.int32).reshape(-1, 2))
    ins, outs = _io(w, n)
    if n.attrs.value == 0.0:
        w.emit("PAD", [ins[0], pads], outs, "PadOptions", _opts("PadOptionsT"))
        return
    out = w.g.tensors[n.outputs[0]]
    q = out.quant
    if q is not None:   # int8 graphs hold the real value; the file holds it quantized
        qv = np.round(n.attrs.value / float(q.scale[0])) + int(q.zero_point[0])
        info = np.iinfo(out.dtype)
        value = np.array(np.clip(qv, info.min, info.max), dtype=out.dtype)
    else:
        value = np.array(n.attrs.value, dtype=out.dtype)
    v = w.const(f"{n.outputs[0]}/pad_value", value, q)
    w.emit("PADV2", [ins[0], pads, v], outs, "PadV2Options", _opts("PadV2OptionsT"))


def export_mean(w: _Writer, n: Node) -> None:
    axes = w.const(f"{n.outputs[0]}/axes", np.asarray(n.attrs.axes, np.int32))
    ins, outs = _io(w, n)
    w.emit(OPS[n.op].tflite, [ins[0], axes], outs, "ReducerOptions",
           _opts("ReducerOptionsT", keepDims=bool(n.attrs.keepdims)))


def export_leaky_relu(w: _Writer, n: Node) -> None:
    ins, outs = _io(w, n)
    w.emit("LEAKY_RELU", ins, outs, "LeakyReluOptions",
           _opts("LeakyReluOptionsT", alpha=float(n.attrs.alpha)))


def export_transpose(w: _Writer, n: Node) -> None:
    perm = w.const(f"{n.outputs[0]}/perm", np.asarray(n.attrs.perm, np.int32))
    ins, outs = _io(w, n)
    w.emit("TRANSPOSE", [ins[0], perm], outs, "TransposeOptions", _opts("TransposeOptionsT"))


def export_matmul(w: _Writer, n: Node) -> None:
    ins, outs = _io(w, n)
    w.emit("BATCH_MATMUL", ins, outs, "BatchMatMulOptions", _opts("BatchMatMulOptionsT"))


def export_lrn(w: _Writer, n: Node) -> None:
    a = n.attrs
    ins, outs = _io(w, n)
    w.emit("LOCAL_RESPONSE_NORMALIZATION", ins, outs, "LocalResponseNormalizationOptions",
           _opts("LocalResponseNormalizationOptionsT", radius=int(a.radius), bias=float(a.bias),
                 alpha=float(a.alpha), beta=float(a.beta)))


def export_transpose_conv(w: _Writer, n: Node) -> None:
    """TFLite derives top/left pads from the output size and SAME/VALID; any other top/left
    pad has no TRANSPOSE_CONV form. The bias is written as zeros when absent (LiteRT)."""
    a = n.attrs
    x, wt, y = (w.g.tensors[i] for i in (n.inputs[0], n.inputs[1], n.outputs[0]))
    filt = (wt.shape[1], wt.shape[2])
    for code in (PAD_SAME, PAD_VALID):
        if same_pads((y.shape[1], y.shape[2]), filt, a.stride, (1, 1), code)[:2] == a.pad[:2]:
            break
    else:
        raise _Refused(f"pad {a.pad}: TFLite computes the top/left pad from the output size "
                       "(SAME or VALID), and neither gives this one")
    ins, outs = _io(w, n)
    if len(ins) < 3 or ins[2] < 0:
        cout = wt.shape[0]
        if wt.quant is not None and x.quant is not None:
            scale = (x.quant.scale[0] * np.broadcast_to(wt.quant.scale, (cout,))).astype(np.float32)
            q = QuantParams(scale, np.zeros(cout, np.int64), 0)
            bias = w.const(f"{n.outputs[0]}/zero_bias", np.zeros(cout, np.int32), q)
        else:
            bias = w.const(f"{n.outputs[0]}/zero_bias", np.zeros(cout, np.float32))
        ins = ins[:2] + [bias]
    shape = w.const(f"{n.outputs[0]}/output_shape", np.asarray(y.shape, np.int32))
    w.emit("TRANSPOSE_CONV", [shape, ins[1], ins[0], ins[2]], outs, "TransposeConvOptions",
           _opts("TransposeConvOptionsT", padding=code, strideH=a.stride[0],
                 strideW=a.stride[1], fusedActivationFunction=_act(a.act)))


def export_lstm(w: _Writer, n: Node) -> None:
    """UNIDIRECTIONAL_SEQUENCE_LSTM: the 24 operands as the IR keeps them; the states become
    variable tensors with no data (both runtimes reset them: int8 to the zero point, else 0).
    An int8 LSTM carries the converter's five intermediates (gate scratch, unquantized
    float32 [0], and the effective hidden scale with the output's quantization), which
    LiteRT's integer kernel reads."""
    from edgeforge.ir import LSTM_C, LSTM_H
    ins, outs = _io(w, n)
    for k in (LSTM_H, LSTM_C):
        t = w.tensors[ins[k]]
        t.isVariable = True
        if t.buffer == len(w.buffers) - 1:
            w.buffers.pop()
        t.buffer = 0
    o = _opts("UnidirectionalSequenceLSTMOptionsT", fusedActivationFunction=4,
              cellClip=float(n.attrs.cell_clip), projClip=0.0,
              timeMajor=bool(n.attrs.time_major), asymmetricQuantizeInputs=False,
              diagonalRecurrentTensors=False)
    w.emit("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, "UnidirectionalSequenceLSTMOptions", o)
    y = w.g.tensors[n.outputs[0]]
    if y.dtype == "int8":
        names = ("input_to_input", "input_to_forget", "input_to_cell", "input_to_output")
        mids = [w._add(Tensor(w.fresh(f"{n.outputs[0]}/{k}_intermediate"), (0,), "float32"))
                for k in names]
        mids.append(w._add(Tensor(w.fresh(f"{n.outputs[0]}/effective_hidden_scale"), (0,),
                                  "int8", y.quant)))
        w.operators[-1].intermediates = np.asarray(mids, np.int32)


def export_gather(w: _Writer, n: Node) -> None:
    ins, outs = _io(w, n)
    w.emit("GATHER", ins, outs, "GatherOptions",
           _opts("GatherOptionsT", axis=int(n.attrs.axis), batchDims=0))


def export_gelu(w: _Writer, n: Node) -> None:
    ins, outs = _io(w, n)
    w.emit("GELU", ins, outs, "GeluOptions",
           _opts("GeluOptionsT", approximate=bool(n.attrs.approximate)))


def export_strided_slice(w: _Writer, n: Node) -> None:
    a = n.attrs
    ins, outs = _io(w, n)
    vecs = [w.const(f"{n.outputs[0]}/{k}", np.asarray(v, np.int32))
            for k, v in (("begin", a.begin), ("end", a.end), ("strides", a.strides))]
    w.emit("STRIDED_SLICE", [ins[0], *vecs], outs, "StridedSliceOptions",
           _opts("StridedSliceOptionsT"))


def _export_resize(builtin: str, options: str) -> Callable[[_Writer, Node], None]:
    def export(w: _Writer, n: Node) -> None:
        a = n.attrs
        size = w.const(f"{n.outputs[0]}/size", np.asarray(a.size, np.int32))
        ins, outs = _io(w, n)
        w.emit(builtin, [ins[0], size], outs, options,
               _opts(options + "T", alignCorners=bool(a.align_corners),
                     halfPixelCenters=bool(a.half_pixel_centers)))
    return export


def _export_minmax(builtin: str) -> Callable[[_Writer, Node], None]:
    def export(w: _Writer, n: Node) -> None:
        ins, outs = _io(w, n)
        w.emit(builtin, ins, outs, "MaximumMinimumOptions", _opts("MaximumMinimumOptionsT"))
    return export


# Op -> exporter: appends the operator(s) for one IR node
EXPORTERS: dict[Op, Callable[[_Writer, Node], None]] = {
    Op.CONV2D: export_conv,
    Op.DWCONV2D: export_dwconv,
    Op.FC: export_fc,
    Op.AVGPOOL2D: _export_pool("AVERAGE_POOL_2D", "refuse"),
    Op.MAXPOOL2D: _export_pool("MAX_POOL_2D", "lowest"),
    Op.ADD: _export_binary("ADD", "AddOptions"),
    Op.SUB: _export_binary("SUB", "SubOptions"),
    Op.MUL: _export_binary("MUL", "MulOptions"),
    Op.RESHAPE: export_reshape,
    Op.SOFTMAX: export_softmax,
    Op.CONCAT: export_concat,
    Op.PAD: export_pad,
    Op.MEAN: export_mean,
    Op.RELU: _export_plain("RELU"),
    Op.RELU6: _export_plain("RELU6"),
    Op.LOGISTIC: _export_plain("LOGISTIC"),
    Op.TANH: _export_plain("TANH"),
    Op.HARD_SWISH: _export_plain("HARD_SWISH"),
    Op.QUANTIZE: _export_plain("QUANTIZE"),
    Op.DEQUANTIZE: _export_plain("DEQUANTIZE"),
    Op.LEAKY_RELU: export_leaky_relu,
    Op.TRANSPOSE: export_transpose,
    Op.DIV: _export_binary("DIV", "DivOptions"),
    Op.MATMUL: export_matmul,
    Op.LRN: export_lrn,
    Op.STRIDED_SLICE: export_strided_slice,
    Op.RESIZE_NEAREST: _export_resize("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions"),
    Op.RESIZE_BILINEAR: _export_resize("RESIZE_BILINEAR", "ResizeBilinearOptions"),
    Op.MAXIMUM: _export_minmax("MAXIMUM"),
    Op.MINIMUM: _export_minmax("MINIMUM"),
    Op.SQRT: _export_plain("SQRT"),
    Op.RSQRT: _export_plain("RSQRT"),
    Op.EXP: _export_plain("EXP"),
    Op.GELU: export_gelu,
    Op.SQUARED_DIFFERENCE: _export_plain("SQUARED_DIFFERENCE"),
    Op.SUM: export_mean,
    Op.REDUCE_MAX: export_mean,
    Op.REDUCE_MIN: export_mean,
    Op.GATHER: export_gather,
    Op.PRELU: _export_plain("PRELU"),
    Op.TRANSPOSE_CONV: export_transpose_conv,
    Op.LSTM: export_lstm,
}


def _signature(graph: Graph, w: _Writer) -> Any:
    """A "serving_default" signature naming every input and output, as the converter writes
    (LiteRT's get_signature_runner needs one; TFLM ignores it)."""
    def tmap(name: str) -> Any:
        t = schema.TensorMapT()
        t.name, t.tensorIndex = name.encode(), w.tensor(name)
        return t
    sig = schema.SignatureDefT()
    sig.signatureKey = b"serving_default"
    sig.subgraphIndex = 0
    sig.inputs = [tmap(n) for n in graph.inputs]
    sig.outputs = [tmap(n) for n in graph.outputs]
    return sig


# ---------------------------------------------------------------- entry points
OFFLINE_METADATA = "OfflineMemoryAllocation"   # TFLM's micro_allocation_info.cc
OFFLINE_VERSION = 1
COMPRESSION_METADATA = "COMPRESSION_METADATA"   # TFLM's compression.h (LUT tensors)


def _pack_msb(idx: np.ndarray, bits: int) -> bytes:
    """`bits`-wide indices packed from each byte's high bits down (TFLM's LUT order)."""
    idx = np.asarray(idx, np.uint8).ravel()
    return np.packbits(((idx[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8)
                       .ravel()).tobytes()


def tflm_lut(w: np.ndarray, bits: int, axis: int | None) -> tuple[bytes, bytes, int] | None:
    """(packed indices, value tables, index bits) of int8 `w` in TFLM's LUT compression
    (compression/metadata.fbs), or None when it would not be smaller than `w`. Per-tensor
    (`axis` None): one table. Per-channel: TFLM reads one table per channel along `axis`;
    the smaller of the tensor's table repeated (stride 2^bits) and each channel's own
    values (stride = the most any channel holds, maybe fewer index bits)."""
    flat = np.asarray(w, np.int8)
    vals, idx = np.unique(flat, return_inverse=True)
    table = np.zeros(1 << bits, np.int8)
    table[:vals.size] = vals
    channels = 1 if axis is None else flat.shape[axis]
    best = (_pack_msb(idx, bits), np.tile(table, channels).tobytes(), bits)
    if axis is not None:
        slices = np.moveaxis(flat, axis, 0)
        per = [np.unique(sl, return_inverse=True) for sl in slices]
        stride = max(v.size for v, _ in per)
        b2 = max(1, int(stride - 1).bit_length())
        if b2 <= 7:
            tables = np.zeros((channels, stride), np.int8)
            for c, (v, _) in enumerate(per):
                tables[c, :v.size] = v
            idx2 = np.moveaxis(np.stack([i.reshape(slices.shape[1:]) for _, i in per]), 0, axis)
            alt = (_pack_msb(idx2, b2), tables.tobytes(), b2)
            if len(alt[0]) + len(alt[1]) < len(best[0]) + len(best[1]):
                best = alt
    return best if len(best[0]) + len(best[1]) < flat.size else None


def _lut_metadata(tensors: list[tuple[int, int, int]]) -> bytes:
    """A COMPRESSION_METADATA flatbuffer: schema_version 1, subgraph 0's LutTensor rows
    (tensor index, value buffer index, index bit width)."""
    b = flatbuffers.Builder(256)
    rows = []
    for t, vb, bits in tensors:
        b.StartObject(3)
        b.PrependInt32Slot(0, t, 0)
        b.PrependUint32Slot(1, vb, 0)
        b.PrependUint8Slot(2, bits, 0)
        rows.append(b.EndObject())
    b.StartVector(4, len(rows), 4)
    for r in reversed(rows):
        b.PrependUOffsetTRelative(r)
    luts = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, luts, 0)
    sub = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sub)
    subs = b.EndVector()
    b.StartObject(2)
    b.ForceDefaults(True)
    b.PrependUint32Slot(0, 1, 1)
    b.PrependUOffsetTRelativeSlot(1, subs, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def tflite_bytes(graph: Graph, description: str = "edgeforge",
                 offline: dict[str, int] | None = None,
                 lut: dict[str, int] | None = None) -> bytes:
    """Serialize a float or int8 IR graph to .tflite bytes (raises UnsupportedOpError).

    `offline` (tensor name -> arena byte offset, e.g. plan.memory.tflm_offline_plan) is
    written as TFLM's "OfflineMemoryAllocation" metadata: int32 [version 1, subgraphs 1,
    n = tensors in the file, one offset per tensor in file order], -1 where TFLM plans the
    tensor itself (constants, tensors the plan lacks). LiteRT ignores it.

    `lut` (weight tensor name -> index bits) stores those int8 weights in TFLM's LUT
    compression (COMPRESSION_METADATA): only a TFLM built with USE_TFLM_COMPRESSION reads
    such a file (LiteRT does not)."""
    if schema is None:  # pragma: no cover
        raise RuntimeError("ai-edge-litert (TFLite schema) is not installed")
    verify(graph)
    w = _Writer(graph)
    for name in graph.inputs:   # graph inputs first, then tensors in IR (= file) order
        w.tensor(name)
    used = {i for n in graph.nodes for i in n.inputs + n.outputs if i} | set(graph.outputs)
    problems: list[tuple[int, str, str, str]] = []
    try:
        for name in graph.tensors:
            if name in used:
                w.tensor(name)
    except _Refused as e:
        problems.append((-1, "tensors", "-", str(e)))
    for k, n in enumerate(graph.nodes):
        exporter = EXPORTERS.get(n.op)
        try:
            if exporter is None or OPS[n.op].tflite is None and n.op not in EXPORTERS:
                raise _Refused("no TFLite builtin for this op")
            exporter(w, n)
        except _Refused as e:
            problems.append((k, n.name or ",".join(n.outputs), n.op.value, str(e)))
    if problems:
        where = str(graph.meta.get("source", graph.name))
        raise UnsupportedOpError(where, problems, sorted(OPS[op].tflite or op.value
                                                         for op in EXPORTERS))

    sg = schema.SubGraphT()
    sg.tensors = w.tensors
    sg.inputs = np.asarray([w.tensor(i) for i in graph.inputs], np.int32)
    sg.outputs = np.asarray([w.tensor(o) for o in graph.outputs], np.int32)
    sg.operators = w.operators
    sg.name = b"main"
    m = schema.ModelT()
    m.version = SCHEMA_VERSION
    m.description = description.encode()
    m.operatorCodes = w.opcodes
    m.subgraphs = [sg]
    m.buffers = w.buffers
    m.signatureDefs = [_signature(graph, w)]
    if offline is not None:
        names = {i: n for n, i in w.index.items()}
        offs = [-1 if _is_const(t) else offline.get(names.get(i, ""), -1)
                for i, t in enumerate(w.tensors)]
        words = np.asarray([OFFLINE_VERSION, 1, len(offs), *offs], "<i4")
        meta = schema.MetadataT()
        meta.name, meta.buffer = OFFLINE_METADATA.encode(), len(w.buffers)
        w.buffers.append(_AlignedBuffer(words.tobytes()))
        m.metadata = [meta]
    if lut:
        rows: list[tuple[int, int, int]] = []
        for name, bits in lut.items():
            i = w.index[name]
            t, q = graph.tensors[name], graph.tensors[name].quant
            axis = int(q.axis) if q is not None and q.per_channel else None
            packed = tflm_lut(t.data, bits, axis)
            if packed is None:
                continue
            w.buffers[w.tensors[i].buffer] = _AlignedBuffer(packed[0])
            w.buffers.append(_AlignedBuffer(packed[1]))
            rows.append((i, len(w.buffers) - 1, packed[2]))
        if rows:        # (TFLM refuses a COMPRESSION_METADATA with no tensor)
            meta = schema.MetadataT()
            meta.name, meta.buffer = COMPRESSION_METADATA.encode(), len(w.buffers)
            w.buffers.append(_AlignedBuffer(_lut_metadata(rows)))
            m.metadata = [*(m.metadata or []), meta]
    size = sum(len(b.data or b"") for b in w.buffers) + 64 * len(w.tensors) + 1024
    builder = flatbuffers.Builder(size)
    builder.Finish(m.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _is_const(t: Any) -> bool:
    """A schema TensorT whose buffer holds data (a weight): never arena-planned."""
    return t.buffer != 0


def write_tflite(graph: Graph, path: str | Path, offline: dict[str, int] | None = None,
                 lut: dict[str, int] | None = None) -> Path:
    """Write `graph` to `path` atomically (temp file in the same folder, then rename); see
    tflite_bytes for `offline`."""
    data = tflite_bytes(graph, offline=offline, lut=lut)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)        # mkstemp makes it private; a model file is not
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
