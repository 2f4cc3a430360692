"""Single-op IR graphs for every op and variant the .tflite path supports.

    from tests.opcases import cases, write_case, random_inputs
    for case in cases("int8"):                  # or cases("float32")
        path = write_case(case, tmp_path)       # a .tflite LiteRT and TFLM both load
        feeds = random_inputs(case.graph, n=4, seed=0)   # [[x0, x1, ...], ...] per sample
        ...  # run the IR (runtime.reference), the C kernels, TFLM, LiteRT; compare

API: cases(dtype) -> list[OpCase]; case(name, dtype) -> OpCase; float_only_cases() (DIV,
LRN: float graphs only, not in cases()); write_case(case, dir) -> Path;
random_inputs(graph, n, seed) -> list of per-sample input lists; tflm_arena_size(graph).
OpCase fields: name, graph (one node, IR-verified), op, dtype, note; `case.node` is the node.

Every case is deterministic: its weights and quant params come from a generator seeded by
the case name, so the same name always gives the same graph.

int8 cases follow the int8 IR contract (see sdk/ir.py and docs/ARCHITECTURE.md): int8 activations with
per-tensor asymmetric QuantParams, int8 weights symmetric per output channel (conv axis 0,
depthwise axis 3; FC per-tensor, as the TFLite converter writes it), int32 bias with
scale = in_scale * w_scale and zero point 0. Output quant params are realistic: they come
from the float op's output range on inputs spanning the input's quantized range (LiteRT runs
the float twin of the case), except where TFLite fixes them (`OPS[op].fixed_out_q`) or
requires output == input quant (pooling, reshape, pad, concat, transpose; RELU6 too, see
sdk/quantize/rules.py).
The only non-int8 tensors of an int8 case are the float side of QUANTIZE and DEQUANTIZE.

A case named `*_explicit_pad` has a pad that is neither SAME nor VALID: write_tflite emits a
PAD op in front of the conv/pool, so its file has two operators.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.codegen.tflite import tflite_bytes, write_tflite
from edgeforge.frontends.tflite import PAD_SAME, PAD_VALID, same_pads
from edgeforge.ir import (
    OPS,
    Act,
    BinaryAttrs,
    ConcatAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    GatherAttrs,
    GeluAttrs,
    Graph,
    LeakyReluAttrs,
    LrnAttrs,
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
    verify,
)
from edgeforge.quantize.rules import SHARES_INPUT_Q, const_quant

DTYPES = ("int8", "float32")

# int8 ops whose output must carry the input's quant params (TFLite int8 spec). RELU6 too:
# TFLM's int8 RELU6 clamps without rescaling while LiteRT rescales, so only equal quant agrees.
# output quant == input quant: the quantizer's rule for these ops (CONCAT: every input too)
SAME_QUANT = SHARES_INPUT_Q | {Op.CONCAT, Op.MAXIMUM, Op.MINIMUM}
INT8_ONLY = {Op.QUANTIZE, Op.DEQUANTIZE}


@dataclass
class OpCase:
    """One single-op graph. `graph` has one node (`graph.nodes[0]`) and is IR-verified."""
    name: str                    # unique within one dtype, e.g. "conv_same_s2"
    graph: Graph
    op: Op
    dtype: str                   # "int8" or "float32"
    note: str = ""               # what the variant exercises

    @property
    def node(self) -> Node:
        return self.graph.nodes[0]


@dataclass
class _Spec:
    name: str
    op: Op
    attrs: Any
    inputs: list[tuple[int, ...]]        # activation input shapes
    out: tuple[int, ...]
    weight: tuple[int, ...] | None = None
    bias: bool = True
    per_channel: bool = True
    note: str = ""
    in_range: tuple[float, float] | None = None   # real range of the inputs (int8 quant)
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- geometry helpers
def _pads(x: tuple[int, ...], k: tuple[int, int], s: tuple[int, int], d: tuple[int, int],
          padding: str) -> tuple[int, int, int, int]:
    return same_pads((x[1], x[2]), k, s, d, PAD_SAME if padding == "SAME" else PAD_VALID)


def _out_hw(x: tuple[int, ...], k: tuple[int, int], s: tuple[int, int], d: tuple[int, int],
            pad: tuple[int, int, int, int]) -> tuple[int, int]:
    eff = [(k[i] - 1) * d[i] + 1 for i in range(2)]
    return ((x[1] + pad[0] + pad[2] - eff[0]) // s[0] + 1,
            (x[2] + pad[1] + pad[3] - eff[1]) // s[1] + 1)


def _conv(name: str, x: tuple[int, ...], cout: int, k: tuple[int, int], s=(1, 1), d=(1, 1),
          padding: str | tuple[int, int, int, int] = "SAME", act: Act = Act.NONE,
          per_channel: bool = True, note: str = "", bias: bool = True) -> _Spec:
    pad = _pads(x, k, s, d, padding) if isinstance(padding, str) else padding
    oh, ow = _out_hw(x, k, s, d, pad)
    return _Spec(name, Op.CONV2D, Conv2dAttrs(s, pad, d, act), [x], (x[0], oh, ow, cout),
                 weight=(cout, k[0], k[1], x[3]), per_channel=per_channel, note=note,
                 bias=bias)


def _dw(name: str, x: tuple[int, ...], mult: int, k: tuple[int, int], s=(1, 1), d=(1, 1),
        padding: str = "SAME", act: Act = Act.NONE, note: str = "", bias: bool = True) -> _Spec:
    pad = _pads(x, k, s, d, padding)
    oh, ow = _out_hw(x, k, s, d, pad)
    cout = x[3] * mult
    return _Spec(name, Op.DWCONV2D, DwConv2dAttrs(s, pad, d, mult, act), [x],
                 (x[0], oh, ow, cout), weight=(1, k[0], k[1], cout), note=note, bias=bias)


def _pool(name: str, op: Op, x: tuple[int, ...], k: tuple[int, int], s: tuple[int, int],
          padding: str | tuple[int, int, int, int], act: Act = Act.NONE, note: str = "") -> _Spec:
    pad = _pads(x, k, s, (1, 1), padding) if isinstance(padding, str) else padding
    oh, ow = _out_hw(x, k, s, (1, 1), pad)
    return _Spec(name, op, Pool2dAttrs(k, s, pad, act), [x], (x[0], oh, ow, x[3]), note=note)


def _specs() -> list[_Spec]:
    x8 = (1, 8, 8, 3)
    x6 = (1, 6, 6, 4)
    e = (1, 4, 4, 8)
    sp: list[_Spec] = [
        _conv("conv_same_s1", x8, 4, (3, 3), note="SAME, stride 1"),
        _conv("conv_valid_s1", x8, 4, (3, 3), padding="VALID"),
        _conv("conv_same_s2", x8, 4, (3, 3), s=(2, 2), note="SAME stride 2: asymmetric pads"),
        _conv("conv_valid_s2", (1, 9, 9, 3), 4, (3, 3), s=(2, 2), padding="VALID"),
        _conv("conv_dilation2", x8, 4, (3, 3), d=(2, 2)),
        _conv("conv_nonsquare", (1, 10, 7, 2), 5, (4, 2), s=(2, 1), note="KWS-like 4x2 kernel"),
        _conv("conv_1x1", e, 6, (1, 1)),
        _conv("conv_relu", x8, 4, (3, 3), act=Act.RELU),
        _conv("conv_relu6", x8, 4, (3, 3), act=Act.RELU6),
        _conv("conv_relu_n1_to_1", x8, 4, (3, 3), act=Act.RELU_N1_TO_1),
        _conv("conv_per_tensor", x8, 4, (3, 3), per_channel=False, note="one weight scale"),
        _conv("conv_explicit_pad", x8, 4, (3, 3), padding=(1, 0, 2, 1),
              note="pad not SAME/VALID: written as PAD + VALID conv"),
        _conv("conv_nobias", x8, 4, (3, 3), bias=False,
              note='bias input "" (the .tflite gets a zero bias: LiteRT requires one)'),
        _dw("dwconv_m1_same", x6, 1, (3, 3)),
        _dw("dwconv_nobias", x6, 1, (3, 3), bias=False, note='bias input ""'),
        _dw("dwconv_m2_valid", x6, 2, (3, 3), padding="VALID", note="depth multiplier 2"),
        _dw("dwconv_s2_relu6", x6, 1, (3, 3), s=(2, 2), act=Act.RELU6),
        _dw("dwconv_dilation2", x6, 1, (3, 3), d=(2, 2)),
        _Spec("fc_bias", Op.FC, FcAttrs(), [(1, 16)], (1, 10), weight=(10, 16),
              per_channel=False),
        _Spec("fc_nobias", Op.FC, FcAttrs(), [(1, 16)], (1, 10), weight=(10, 16), bias=False,
              per_channel=False),
        _Spec("fc_relu", Op.FC, FcAttrs(act=Act.RELU), [(2, 16)], (2, 10), weight=(10, 16),
              per_channel=False, note="2 rows"),
        _Spec("fc_keep_num_dims", Op.FC, FcAttrs(keep_num_dims=True), [(1, 3, 8)], (1, 3, 6),
              weight=(6, 8), per_channel=False),
        _pool("avgpool_same_s2", Op.AVGPOOL2D, (1, 7, 7, 4), (3, 3), (2, 2), "SAME"),
        _pool("avgpool_valid_s1", Op.AVGPOOL2D, x6, (2, 2), (1, 1), "VALID"),
        _pool("avgpool_global", Op.AVGPOOL2D, (1, 5, 5, 8), (5, 5), (5, 5), "VALID",
              note="global average pool, as the fixtures use it"),
        _pool("maxpool_same_s2", Op.MAXPOOL2D, (1, 7, 7, 4), (3, 3), (2, 2), "SAME"),
        _pool("maxpool_valid_s2", Op.MAXPOOL2D, x6, (2, 2), (2, 2), "VALID"),
        _pool("maxpool_relu", Op.MAXPOOL2D, x6, (3, 3), (1, 1), "VALID", act=Act.RELU),
        _pool("maxpool_explicit_pad", Op.MAXPOOL2D, x6, (3, 3), (2, 2), (1, 1, 0, 0),
              note="pad not SAME/VALID: written as PADV2(lowest) + VALID pool"),
    ]
    for op in (Op.ADD, Op.SUB, Op.MUL):
        low = op.value.lower()
        sp += [
            _Spec(f"{low}_same_shape", op, BinaryAttrs(), [e, e], e,
                  note="different input scales"),
            _Spec(f"{low}_bcast_channel", op, BinaryAttrs(), [e, (1, 1, 1, 8)], e),
            _Spec(f"{low}_bcast_spatial", op, BinaryAttrs(), [(1, 4, 4, 1), e], e),
            _Spec(f"{low}_relu", op, BinaryAttrs(Act.RELU), [e, e], e),
        ]
    sp += [
        _Spec("concat_channels", Op.CONCAT, ConcatAttrs(axis=3), [(1, 4, 4, 3), (1, 4, 4, 5)],
              (1, 4, 4, 8)),
        _Spec("pad_hw", Op.PAD, PadAttrs(pads=((0, 0), (1, 2), (2, 1), (0, 0))), [(1, 4, 4, 3)],
              (1, 7, 7, 3)),
        _Spec("mean_hw_keepdims", Op.MEAN, MeanAttrs((1, 2), True), [(1, 5, 5, 8)], (1, 1, 1, 8)),
        _Spec("mean_hw", Op.MEAN, MeanAttrs((1, 2), False), [(1, 5, 5, 8)], (1, 8)),
        _Spec("reshape_flatten", Op.RESHAPE, ReshapeAttrs((1, 128)), [e], (1, 128)),
        _Spec("softmax", Op.SOFTMAX, SoftmaxAttrs(1.0, 1), [(1, 10)], (1, 10),
              in_range=(-8.0, 8.0)),
        _Spec("softmax_rows", Op.SOFTMAX, SoftmaxAttrs(1.0, 2), [(1, 3, 12)], (1, 3, 12),
              in_range=(-6.0, 4.0)),
        _Spec("logistic", Op.LOGISTIC, NoAttrs(), [e], e, in_range=(-6.0, 6.0)),
        _Spec("tanh", Op.TANH, NoAttrs(), [e], e, in_range=(-3.0, 3.0)),
        _Spec("hard_swish", Op.HARD_SWISH, NoAttrs(), [e], e, in_range=(-5.0, 5.0)),
        _Spec("relu", Op.RELU, NoAttrs(), [e], e),
        _Spec("relu6", Op.RELU6, NoAttrs(), [e], e, in_range=(-4.0, 8.0)),
        _Spec("leaky_relu", Op.LEAKY_RELU, LeakyReluAttrs(0.2), [e], e),
        _Spec("transpose", Op.TRANSPOSE, TransposeAttrs((0, 3, 1, 2)), [(1, 3, 4, 5)],
              (1, 5, 3, 4)),
        _Spec("quantize_float", Op.QUANTIZE, NoAttrs(), [e], e, note="float32 -> int8",
              extra={"in": "float32"}),
        _Spec("quantize_requant", Op.QUANTIZE, NoAttrs(), [e], e, note="int8 -> int8 requant"),
        _Spec("dequantize", Op.DEQUANTIZE, NoAttrs(), [e], e, note="int8 -> float32",
              extra={"out": "float32"}),
    ]
    sp += _transformer_specs()
    sp += _group1_specs()
    return sp


def _group1_specs() -> list[_Spec]:
    """Issue 11/20's first group: slices (SLICE / STRIDED_SLICE / SPLIT parts), nearest
    resize in TFLite's three coordinate modes, elementwise MAXIMUM / MINIMUM."""
    e = (1, 4, 4, 8)
    return [
        _Spec("strided_slice_channels", Op.STRIDED_SLICE,
              StridedSliceAttrs((0, 0, 0, 4), (1, 4, 4, 8), (1, 1, 1, 1)), [e], (1, 4, 4, 4),
              note="ShuffleNet's channel split (the second half)"),
        _Spec("strided_slice_steps", Op.STRIDED_SLICE,
              StridedSliceAttrs((0, 1, 0, 1), (1, 4, 4, 7), (1, 2, 3, 2)), [e], (1, 2, 2, 3),
              note="offsets and steps on H, W and C"),
        _Spec("strided_slice_rank3", Op.STRIDED_SLICE,
              StridedSliceAttrs((0, 2, 0), (1, 9, 16), (1, 1, 1)), [(1, 9, 16)], (1, 7, 16),
              note="1-D sequence: drop leading frames"),
        _Spec("resize_nearest_x2", Op.RESIZE_NEAREST, ResizeAttrs((8, 8)), [e], (1, 8, 8, 8),
              note="PyTorch nn.Upsample(scale_factor=2)"),
        _Spec("resize_nearest_half_pixel", Op.RESIZE_NEAREST, ResizeAttrs((6, 10), False, True),
              [(1, 4, 5, 3)], (1, 6, 10, 3), note="non-integer factor, half-pixel centers"),
        _Spec("resize_nearest_align_corners", Op.RESIZE_NEAREST, ResizeAttrs((7, 7), True),
              [(1, 4, 4, 2)], (1, 7, 7, 2)),
        _Spec("resize_bilinear_x2", Op.RESIZE_BILINEAR, ResizeAttrs((8, 8)), [e],
              (1, 8, 8, 8), note="TF/Keras UpSampling2D(interpolation='bilinear')"),
        _Spec("resize_bilinear_half_pixel", Op.RESIZE_BILINEAR, ResizeAttrs((6, 10), False, True),
              [(1, 4, 5, 3)], (1, 6, 10, 3), note="PyTorch align_corners=False"),
        _Spec("resize_bilinear_align_corners", Op.RESIZE_BILINEAR, ResizeAttrs((7, 7), True),
              [(1, 4, 4, 2)], (1, 7, 7, 2)),
        _Spec("maximum", Op.MAXIMUM, NoAttrs(), [e, e], e),
        _Spec("minimum_bcast", Op.MINIMUM, NoAttrs(), [e, (1, 1, 1, 8)], e),
    ]


def _transformer_specs() -> list[_Spec]:
    """Issue 11's second group: transformer, reduction and upsampling ops."""
    t = (1, 6, 16)               # [batch, tokens, features]
    return [
        _Spec("rsqrt", Op.RSQRT, NoAttrs(), [t], t, in_range=(0.0, 6.0),
              note="positive inputs (both runtimes refuse x < zero point)"),
        _Spec("sqrt", Op.SQRT, NoAttrs(), [t], t, in_range=(0.0, 6.0),
              note="TFLM: float only; table as LiteRT"),
        _Spec("exp", Op.EXP, NoAttrs(), [t], t, in_range=(-4.0, 2.0),
              note="TFLM: float only; table as LiteRT"),
        _Spec("gelu", Op.GELU, GeluAttrs(False), [t], t, in_range=(-4.0, 4.0),
              note="erf form; TFLM has no GELU"),
        _Spec("gelu_tanh", Op.GELU, GeluAttrs(True), [t], t, in_range=(-4.0, 4.0),
              note="tanh approximation"),
        _Spec("matmul", Op.MATMUL, NoAttrs(), [(1, 3, 8), (1, 8, 5)], (1, 3, 5),
              note="BATCH_MATMUL of two activations"),
        _Spec("matmul_heads", Op.MATMUL, NoAttrs(), [(1, 2, 6, 8), (1, 2, 8, 6)], (1, 2, 6, 6),
              note="attention scores: two heads (rank 4)"),
        _Spec("matmul_bcast", Op.MATMUL, NoAttrs(), [(2, 3, 8), (1, 8, 5)], (2, 3, 5),
              note="batch dim 1 broadcasts"),
        _Spec("sum_last", Op.SUM, MeanAttrs((2,), True), [t], (1, 6, 1)),
        _Spec("sum_hw", Op.SUM, MeanAttrs((1, 2), False), [(1, 3, 4, 5)], (1, 5)),
        _Spec("reduce_max_last", Op.REDUCE_MAX, MeanAttrs((2,), True), [t], (1, 6, 1)),
        _Spec("reduce_max_hw", Op.REDUCE_MAX, MeanAttrs((1, 2), False), [(1, 3, 4, 5)], (1, 5)),
        _Spec("reduce_min_c", Op.REDUCE_MIN, MeanAttrs((3,), False), [(1, 3, 4, 5)], (1, 3, 4)),
        _Spec("mean_last", Op.MEAN, MeanAttrs((2,), True), [t], (1, 6, 1),
              note="LayerNorm's mean over features"),
        _Spec("softmax_rank4", Op.SOFTMAX, SoftmaxAttrs(1.0, 3), [(1, 2, 6, 6)], (1, 2, 6, 6),
              in_range=(-5.0, 5.0), note="attention probabilities (heads, rows, cols)"),
        _Spec("tconv_k2s2", Op.TRANSPOSE_CONV, TransposeConvAttrs((2, 2), (0, 0, 0, 0)),
              [(1, 4, 4, 6)], (1, 8, 8, 5), weight=(5, 2, 2, 6),
              note="U-Net upsampling (ConvTranspose k2 s2)"),
        _Spec("tconv_k3s2_same", Op.TRANSPOSE_CONV, TransposeConvAttrs((2, 2), (0, 0, 1, 1)),
              [(1, 4, 4, 3)], (1, 8, 8, 4), weight=(4, 3, 3, 3),
              note="SAME: overlapping taps, last row/col cropped"),
        _Spec("tconv_k3s1_relu_nobias", Op.TRANSPOSE_CONV,
              TransposeConvAttrs((1, 1), (1, 1, 1, 1), Act.RELU), [(1, 5, 5, 4)], (1, 5, 5, 3),
              weight=(3, 3, 3, 4), bias=False, note='fused RELU, bias ""'),
        _Spec("tconv_k4s2_valid", Op.TRANSPOSE_CONV, TransposeConvAttrs((2, 3), (0, 0, 0, 0)),
              [(1, 3, 3, 2)], (1, 8, 10, 3), weight=(3, 4, 4, 2), per_channel=False,
              note="VALID, unequal strides, one weight scale"),
        _Spec("gather_rows", Op.GATHER, GatherAttrs(1), [t], (1, 3, 16),
              extra={"const": np.array([5, 0, 2], np.int32)}, note="token rows, any order"),
        _Spec("gather_scalar", Op.GATHER, GatherAttrs(1), [t], (1, 16),
              extra={"const": np.array(0, np.int32)}, note="class token x[:, 0]"),
        _Spec("gather_embed", Op.GATHER, GatherAttrs(1), [(1, 10, 8)], (1, 2, 3, 8),
              extra={"const": np.array([[1, 4, 9], [0, 0, 3]], np.int32)},
              note="embedding table rows by 2-D indices"),
        _Spec("prelu_channel", Op.PRELU, NoAttrs(), [(1, 4, 4, 8)], (1, 4, 4, 8),
              extra={"const": np.linspace(-0.5, 0.6, 8).astype(np.float32).reshape(1, 1, 8)},
              note="slope per channel (PyTorch nn.PReLU(C))"),
        _Spec("prelu_scalar", Op.PRELU, NoAttrs(), [t], t,
              extra={"const": np.array([0.25], np.float32)}),
        _Spec("squared_difference", Op.SQUARED_DIFFERENCE, NoAttrs(), [t, t], t),
        _Spec("squared_difference_bcast", Op.SQUARED_DIFFERENCE, NoAttrs(), [t, (1, 6, 1)], t,
              note="x - mean(x) over the last axis, as in a LayerNorm"),
    ]


# ---------------------------------------------------------------- building graphs
def _rng(name: str, dtype: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))   # same weights for both dtypes


def _range_q(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 quant covering [lo, hi] (widened to contain 0), as TFLite does."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-6) / 255.0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QuantParams(np.float32(scale), zp)


def _real_range(q: QuantParams) -> tuple[float, float]:
    s, z = float(q.scale[0]), int(q.zero_point[0])
    return s * (-128 - z), s * (127 - z)


def _float_graph(sp: _Spec, rng: np.random.Generator) -> Graph:
    g = Graph(name=sp.name)
    names = [f"x{i}" if len(sp.inputs) > 1 else "x" for i in range(len(sp.inputs))]
    for n, shp in zip(names, sp.inputs):
        g.add_tensor(Tensor(n, shp, "float32"))
    ins = list(names)
    if sp.weight is not None:
        fan_in = int(np.prod(sp.weight[1:])) if sp.op != Op.DWCONV2D else sp.weight[1] * \
            sp.weight[2]
        w = rng.normal(0, 1.0 / np.sqrt(fan_in), sp.weight).astype(np.float32)
        g.const("w", w)
        ins.append("w")
        cout = sp.weight[0] if sp.op != Op.DWCONV2D else sp.weight[3]
        if sp.bias:
            g.const("b", rng.normal(0, 0.2, (cout,)).astype(np.float32))
            ins.append("b")
        else:
            ins.append("")   # the IR's absent-optional-input marker
    if "const" in sp.extra:   # a constant operand that is not a conv weight (indices, alpha)
        g.const("k", np.asarray(sp.extra["const"]))
        ins.append("k")
    g.add_tensor(Tensor("y", sp.out, "float32"))
    g.nodes.append(Node(sp.op, tuple(ins), ("y",), sp.attrs, f"{sp.op.value.lower()}_0"))
    g.inputs, g.outputs = names, ["y"]
    return g


def _float_out_range(g: Graph, in_ranges: list[tuple[float, float]],
                     rng: np.random.Generator) -> tuple[float, float]:
    """Output range of the float op over inputs spanning `in_ranges` (run by LiteRT)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=tflite_bytes(g),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    lo, hi = np.inf, -np.inf
    for _ in range(8):
        for d, (a, b) in zip(it.get_input_details(), in_ranges):
            it.set_tensor(d["index"], rng.uniform(a, b, d["shape"]).astype(np.float32))
        it.invoke()
        y = it.get_tensor(it.get_output_details()[0]["index"])
        lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
    return lo, hi


def _quantize_weights(w: np.ndarray, axis: int, per_channel: bool) -> tuple[np.ndarray,
                                                                           QuantParams]:
    if per_channel:
        red = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.max(np.abs(w), axis=red)
    else:
        amax = np.array([np.max(np.abs(w))])
        axis = 0
    scale = np.maximum(amax, 1e-8).astype(np.float32) / 127.0
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, QuantParams(scale, np.zeros(scale.size, np.int64), axis)


def _int8_graph(sp: _Spec, fg: Graph, rng: np.random.Generator) -> Graph:
    g = fg.copy()
    g.tensors = {}
    in_q = []
    for i, name in enumerate(fg.inputs):
        if sp.in_range is not None:
            lo, hi = sp.in_range
        else:
            lo, hi = -rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0)
        in_q.append(_range_q(lo, hi))
        dt = sp.extra.get("in", "int8")
        g.add_tensor(Tensor(name, fg.tensors[name].shape, dt, in_q[-1] if dt == "int8" else None))
    # weights and bias
    if sp.weight is not None:
        w = fg.tensors["w"].data
        axis = 3 if sp.op == Op.DWCONV2D else 0
        wq, wqp = _quantize_weights(w, axis, sp.per_channel)
        g.const("w", wq, wqp)
        if "b" in fg.tensors:
            bscale = (in_q[0].scale[0] * wqp.scale).astype(np.float32)
            cout = fg.tensors["b"].shape[0]
            bscale = np.broadcast_to(bscale, (cout,)) if bscale.size == 1 else bscale
            bq = np.round(fg.tensors["b"].data / bscale).astype(np.int32)
            g.const("b", bq, QuantParams(bscale, np.zeros(bscale.size, np.int64), 0))
    if "k" in fg.tensors:     # int constants stay; a float one is per-tensor asymmetric int8
        k = fg.tensors["k"].data
        if k.dtype.kind == "f":
            g.const("k", *const_quant(k))
        else:
            g.const("k", k)
    # output quant
    fixed = OPS[sp.op].fixed_out_q
    if sp.extra.get("out") == "float32":
        out_q, out_dt = None, "float32"
    elif fixed is not None:
        out_q, out_dt = QuantParams(np.float32(fixed[0]), fixed[1]), "int8"
    elif sp.op in SAME_QUANT:
        if sp.op in (Op.CONCAT, Op.MAXIMUM, Op.MINIMUM):   # one quant for every operand
            for name in fg.inputs:
                g.tensors[name].quant = in_q[0]
        out_q, out_dt = in_q[0], "int8"
    elif sp.op == Op.QUANTIZE:
        out_q, out_dt = _range_q(-rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0)), "int8"
    else:
        lo, hi = _float_out_range(fg, [_real_range(q) for q in in_q], rng)
        out_q, out_dt = _range_q(lo, hi), "int8"
    g.add_tensor(Tensor("y", sp.out, out_dt, out_q))
    return g


def lstm_case(name: str, dtype: str, batch: int = 1, steps: int = 5, features: int = 6,
              hidden: int = 8, time_major: bool = False, cell_clip: float = 0.0,
              seed: int = 0) -> OpCase:
    """One LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM) of random weights; int8 through the quantizer
    itself (calibrated on 16 random sequences), as a converted model would be."""
    from edgeforge.ir import LstmAttrs
    from edgeforge.quantize.quantize import quantize_model
    rng = np.random.default_rng(zlib.crc32(f"{name}/{seed}".encode()))
    g = Graph(name=name)
    xs = (steps, batch, features) if time_major else (batch, steps, features)
    ys = (steps, batch, hidden) if time_major else (batch, steps, hidden)
    g.add_tensor(Tensor("x", xs))
    ins = ["x"] + [""] * 23
    scale = 1.0 / np.sqrt(features + hidden)
    for k in range(1, 9):
        cols = features if k < 5 else hidden
        ins[k] = g.const(f"w{k}", (rng.normal(0, 1.5 * scale, (hidden, cols))
                                   ).astype(np.float32)).name
    for k in range(12, 16):
        ins[k] = g.const(f"b{k}", rng.normal(1.0 if k == 13 else 0.0, 0.3, hidden
                                             ).astype(np.float32)).name
    ins[18] = g.const("h0", np.zeros((batch, hidden), np.float32)).name
    ins[19] = g.const("c0", np.zeros((batch, hidden), np.float32)).name
    g.add_tensor(Tensor("y", ys))
    g.nodes.append(Node(Op.LSTM, tuple(ins), ("y",), LstmAttrs(cell_clip, time_major), name))
    g.inputs, g.outputs = ["x"], ["y"]
    verify(g)
    if dtype == "int8":
        calib = rng.normal(0, 1.0, (16,) + xs).astype(np.float32)
        g = quantize_model(g, calib, bias_correction=False, equalize=False, verbose=0)
    g.meta["opcase"] = name
    return OpCase(name, g, Op.LSTM, dtype, f"LSTM B={batch} T={steps} F={features} H={hidden}")


def _lstm_cases(dtype: str) -> list[OpCase]:
    return [
        lstm_case("lstm_b1_t5", dtype),
        lstm_case("lstm_time_major_b2", dtype, batch=2, steps=4, features=3, hidden=5,
                  time_major=True, cell_clip=3.0)]


def _build(sp: _Spec, dtype: str) -> OpCase:
    rng = _rng(sp.name, dtype)
    g = _float_graph(sp, rng)
    if dtype == "int8":
        g = _int8_graph(sp, g, rng)
    g.meta["opcase"] = sp.name
    verify(g)
    return OpCase(sp.name, g, sp.op, dtype, sp.note)


_CACHE: dict[str, list[OpCase]] = {}


def cases(dtype: str = "int8") -> list[OpCase]:
    """Every single-op case for `dtype` ("int8" or "float32"). Fresh graph copies each call."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}, expected one of {DTYPES}")
    if dtype not in _CACHE:
        _CACHE[dtype] = [_build(sp, dtype) for sp in _specs()
                         if not (dtype == "float32" and sp.op in INT8_ONLY)] + _lstm_cases(dtype)
    return [OpCase(c.name, c.graph.copy(), c.op, c.dtype, c.note) for c in _CACHE[dtype]]


def _extra_specs() -> list[_Spec]:
    e = (1, 4, 4, 8)
    return [
        _Spec("div", Op.DIV, BinaryAttrs(), [e, (1, 1, 1, 8)], e, note="float only"),
        _Spec("lrn", Op.LRN, LrnAttrs(radius=2, bias=1.0, alpha=1e-2, beta=0.75), [e], e,
              note="float only; TFLM has no kernel"),
    ]


def float_only_cases() -> list[OpCase]:
    """Float-only ops with a TFLite builtin (DIV, LRN). Not part of cases():
    they have no int8 form, and TFLM lacks some of them."""
    return [_build(sp, "float32") for sp in _extra_specs()]


def case(name: str, dtype: str = "int8") -> OpCase:
    """One case by name."""
    for c in cases(dtype):
        if c.name == name:
            return c
    raise KeyError(f"no {dtype} op case {name!r}")


def write_case(c: OpCase, directory: str | Path) -> Path:
    """Write the case as `<dir>/<name>_<dtype>.tflite` (via write_tflite) and return the path."""
    return write_tflite(c.graph, Path(directory) / f"{c.name}_{c.dtype}.tflite")


def random_inputs(graph: Graph, n: int = 1, seed: int = 0) -> list[list[np.ndarray]]:
    """`n` samples of graph inputs: a list of per-sample lists in `graph.inputs` order.

    int8 inputs are uniform over [-128, 127]; float inputs are uniform over the real range
    that the quantized twin covers when the graph is a QUANTIZE case, else normal(0, 1.5)
    (its absolute value for ops defined on x >= 0: SQRT, RSQRT).
    """
    rng = np.random.default_rng(seed)
    positive = bool(graph.nodes) and graph.nodes[0].op in (Op.SQRT, Op.RSQRT)
    out = []
    for _ in range(n):
        sample = []
        for name in graph.inputs:
            t = graph.tensors[name]
            if t.dtype == "int8":
                sample.append(rng.integers(-128, 128, t.shape).astype(np.int8))
            elif t.dtype == "float32":
                x = rng.normal(0.0, 1.5, t.shape).astype(np.float32)
                sample.append(np.abs(x) + np.float32(0.01) if positive else x)
            else:
                info = np.iinfo(t.dtype)
                sample.append(rng.integers(max(info.min, -1000), min(info.max, 1000),
                                           t.shape).astype(t.dtype))
        out.append(sample)
    return out


def tflm_arena_size(graph: Graph) -> int:
    """A generous TFLM arena for a small graph: every tensor live at once, plus headroom."""
    return 4 * sum(t.nbytes for t in graph.tensors.values()) + 64 * 1024
