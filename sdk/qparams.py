"""Host-side "Prepare" of every int8 op: the constants an int8 kernel needs, computed ONCE.

TFLM computes these in each kernel's Prepare (CalculateOpDataConv, CalculateReluOpData, ...);
we compute them on the host and both runtime/reference.py and the C codegen consume the same
values, so the reference and the generated C cannot drift. `PREPARE[op](node, g, numerics)`
returns a small frozen dataclass whose fields mirror the C params structs.

Sign conventions (one place, as in CMSIS-NN's arm_nn_types.h):
  * in_offset  = -input_zero_point   (added to every input value)
  * out_offset = +output_zero_point  (added after requantization)
  * (mult, shift): real ~= mult * 2^(shift - 31), shift > 0 is a LEFT shift; apply with
    edgeforge.qmath.requantize (rounding picked by the numerics profile)
  * act_min / act_max: the output clamp, already quantized (fused activation included)
  * lut: int8[256], output for input value v stored at index v + 128

Differences between the profiles live here (or in sdk/qmath.py), each commented with its
source; runtime/reference.py's docstring lists them. The Q31 rounding an op's kernel must use
is `rounding(op, numerics)` (a Rounding for edgeforge.qmath.requantize): it is per OP, not per
profile, because ai-edge-litert single-rounds only its FULLY_CONNECTED.

Elementwise unary ops (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU) are prepared as a
256-entry lookup table: exact for int8 (one output per input value) and it hides the
profile differences (TFLM computes them in gemmlowp fixed point, LiteRT's reference kernels
fill a float LUT) from both the reference and the C kernel.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeforge.errors import QuantizeError
from edgeforge.fixedpoint import (
    downscale_int16,
    fx_logistic,
    fx_tanh,
    sat_lshift16,
    sdhm16,
    srdhm16,
    wrap16,
)
from edgeforge.ir import Act, Graph, Node, Op
from edgeforge.qmath import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    Numerics,
    Rounding,
    act_range_q,
    quantize_multiplier,
    quantize_multipliers,
    requantize,
    round_half_away,
    round_half_away_int,
    rounding_divide_by_pot,
    srdhm,
    wrap32,
)
from edgeforge.qparams_lstm import prepare_lstm


# ---------------------------------------------------------------- params structs
@dataclass(frozen=True)
class ConvQuant:                 # CONV2D, DWCONV2D, FC (per-channel; per-tensor = length 1)
    in_offset: int               # -input zero point
    out_offset: int              # +output zero point
    mult: np.ndarray             # int32 [C_OUT] (or [1])
    shift: np.ndarray            # int32 [C_OUT] (or [1]); > 0 = left
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolQuant:                 # AVGPOOL2D, MAXPOOL2D (input and output share scale/zp)
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddQuant:                  # ADD, SUB: TFLite's 20-bit left-shifted rescale of both inputs
    in1_offset: int              # -input1 zero point
    in2_offset: int              # -input2 zero point
    out_offset: int
    left_shift: int              # 20 for int8 (TFLite add.cc / sub.cc)
    in1_mult: int
    in1_shift: int               # <= 0
    in2_mult: int
    in2_shift: int               # <= 0
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MulQuant:                  # MUL: out = out_offset + rq((x1+in1_offset)*(x2+in2_offset))
    in1_offset: int
    in2_offset: int
    out_offset: int
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class RequantQuant:              # RELU, RELU6, QUANTIZE(int8->int8)
    in_offset: int               # out = clamp(out_offset + rq(x + in_offset, mult, shift))
    out_offset: int
    mult: int
    shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MeanQuant:                 # MEAN int8: out = out_offset + rq(sum(x) + in_offset*count)
    in_offset: int               # -input zero point (added count times to the sum)
    out_offset: int
    mult: int                    # in_scale / out_scale / count, folded as TFLite does
    shift: int
    count: int                   # number of reduced elements
    act_min: int
    act_max: int


@dataclass(frozen=True)
class LutQuant:                  # LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU: y = lut[x + 128]
    lut: np.ndarray              # int8 [256]


@dataclass(frozen=True)
class SoftmaxQuant:              # SOFTMAX int8 -> int8 (gemmlowp fixed point, both profiles)
    in_mult: int                 # beta * in_scale * 2^(31-5) as Q31 mult ...
    in_left_shift: int           # ... with this left shift (>= 0)
    diff_min: int                # input diffs below this (negative) give exp() = 0


@dataclass(frozen=True)
class QuantizeQuant:             # QUANTIZE float->int8 (requant is None) or int8->int8
    scale: float                 # output scale (float->int8: y = round(x / scale) + zp)
    zero_point: int
    requant: RequantQuant | None


@dataclass(frozen=True)
class DequantizeQuant:           # DEQUANTIZE int8->float: y = float(scale * (x - zero_point))
    scale: float
    zero_point: int


@dataclass(frozen=True)
class PadQuant:                  # PAD: values are copied, the border gets pad_value
    pad_value: int               # quantized PadAttrs.value (0.0 -> the zero point)


@dataclass(frozen=True)
class PreluQuant:                # PRELU: rq(x + in_offset) or rq((x + in_offset) * (a + a_off))
    in_offset: int
    alpha_offset: int
    out_offset: int
    mult1: int                   # in_s / out_s (x >= zero point)
    shift1: int
    mult2: int                   # in_s * alpha_s / out_s (x < zero point)
    shift2: int


@dataclass(frozen=True)
class NoQuant:                   # RESHAPE, TRANSPOSE, CONCAT: bytes move, values do not change
    pass


@dataclass(frozen=True)
class SharedQuant:               # STRIDED_SLICE, RESIZE_NEAREST, MAXIMUM, MINIMUM: operands and
    op: Op                       # output share one quantization, so int8 bytes move unchanged
    rows: np.ndarray | None = None   # RESIZE_NEAREST: input row of each output row
    cols: np.ndarray | None = None   # ... and input column of each output column


# ---------------------------------------------------------------- rounding per op
# The Q31 requantization rounding each int8 kernel uses, per profile; this is the value to
# pass as edgeforge.qmath.requantize's / quantize_multiplier's `rounding` for that op.
#   tflm: double rounding everywhere (TFLM's common.h without TFLITE_SINGLE_ROUNDING).
#   litert: ai-edge-litert 2.x is built WITHOUT TFLITE_SINGLE_ROUNDING -- its BUILTIN_REF
#     conv/depthwise/add/softmax double-round (measured: TFLM-identical bytes on KWS and
#     ResNet-8) -- but its FULLY_CONNECTED int8 path single-rounds (measured on the same
#     models' FC layers: single rounding 0 diffs / 80 inputs, double rounding 5).
SINGLE_ROUNDING_OPS: dict[Numerics, frozenset[Op]] = {
    Numerics.TFLM: frozenset(),
    # SUM: ai-edge-litert 2.3's BUILTIN_REF int8 SUM writes -1 everywhere (measured); its
    # default (XNNPACK) kernel single-rounds, so the litert profile follows that one
    Numerics.LITERT: frozenset({Op.FC, Op.SUM}),
    # TFLite's common.h with TFLITE_SINGLE_ROUNDING: MultiplyByQuantizedMultiplier is one
    # rounding shift of the 64-bit product for every op (and QuantizeMultiplier clamps)
    Numerics.SINGLE: frozenset(Op),
}


def rounding(op: Op, numerics: Numerics | str) -> Rounding:
    """The rounding op's kernel uses under profile `numerics`."""
    single = op in SINGLE_ROUNDING_OPS[Numerics(numerics)]
    return Rounding.SINGLE if single else Rounding.DOUBLE


# ---------------------------------------------------------------- helpers
def _sz(g: Graph, name: str) -> tuple[float, int]:
    t = g.tensors[name]
    if t.quant is None:
        raise ValueError(f"tensor {name!r} has no quantization parameters")
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _act(node: Node) -> Act:
    return getattr(node.attrs, "act", Act.NONE)


def _out_range(node: Node, g: Graph) -> tuple[int, int]:
    s, z = _sz(g, node.outputs[0])
    return act_range_q(_act(node), s, z)


def _f32(x: float) -> float:
    return float(np.float32(x))


# ---------------------------------------------------------------- weighted ops
def prepare_conv(node: Node, g: Graph, numerics: Numerics) -> ConvQuant:
    """PopulateConvolutionQuantizationParams (kernel_util.cc), same in TFLM and LiteRT:
    per channel, double(in_scale) * double(w_scale[c]) / double(out_scale)."""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    w_s = g.tensors[node.inputs[1]].quant.scale.astype(np.float64)
    mult, shift = quantize_multipliers(in_s * w_s / out_s, rnd)
    lo, hi = _out_range(node, g)
    return ConvQuant(-in_z, out_z, mult, shift, lo, hi)


# ---------------------------------------------------------------- pooling / reductions
def prepare_pool(node: Node, g: Graph, numerics: Numerics) -> PoolQuant:
    return PoolQuant(*_out_range(node, g))


def prepare_mean(node: Node, g: Graph, numerics: Numerics) -> MeanQuant:
    """reference_ops::QuantizedMeanOrSum (integer form, as TFLM and ai-edge-litert run it):
    QuantizeMultiplier(in_s / out_s), then 1/count folded into the multiplier:
    n = min(floor(log2(count)), 32, 31 + shift); mult = (mult << n) // count; shift -= n.
    (Measured: both runtimes round the result this way, not sum/count then rescale.)"""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    shape = g.tensors[node.inputs[0]].shape
    count = int(np.prod([shape[a] for a in node.attrs.axes]))
    mult, shift = quantize_multiplier(float(in_s) / float(out_s), rnd)
    if node.op == Op.SUM:         # compute_sum: no 1/count folded in
        return MeanQuant(-in_z, out_z, int(mult), int(shift), count, INT8_MIN, INT8_MAX)
    n = min(count.bit_length() - 1, 32, 31 + shift)
    mult, shift = (mult << n) // count, shift - n
    return MeanQuant(-in_z, out_z, int(mult), int(shift), count, INT8_MIN, INT8_MAX)


# ---------------------------------------------------------------- elementwise binary
ADD_LEFT_SHIFT = 20   # TFLite add.cc / sub.cc: int8 inputs are shifted left by 20 first


def prepare_add(node: Node, g: Graph, numerics: Numerics) -> AddQuant:
    """TFLite/TFLM PrepareGeneralSubOp / CalculateOpDataAdd (all in double)."""
    rnd = rounding(node.op, numerics)
    s1, z1 = _sz(g, node.inputs[0])
    s2, z2 = _sz(g, node.inputs[1])
    so, zo = _sz(g, node.outputs[0])
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max, rnd)
    m2, sh2 = quantize_multiplier(s2 / twice_max, rnd)
    mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * so), rnd)
    lo, hi = _out_range(node, g)
    return AddQuant(-z1, -z2, zo, ADD_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, lo, hi)


def prepare_mul(node: Node, g: Graph, numerics: Numerics) -> MulQuant:
    """TFLite mul.cc: double(s1) * double(s2) / double(s_out)."""
    rnd = rounding(node.op, numerics)
    s1, z1 = _sz(g, node.inputs[0])
    s2, z2 = _sz(g, node.inputs[1])
    so, zo = _sz(g, node.outputs[0])
    m, sh = quantize_multiplier(s1 * s2 / so, rnd)
    lo, hi = _out_range(node, g)
    return MulQuant(-z1, -z2, zo, m, sh, lo, hi)


def prepare_prelu(node: Node, g: Graph, numerics: Numerics) -> PreluQuant:
    """prelu_common.cc CalculatePreluParams (TFLM and LiteRT): both multipliers in double."""
    rnd = rounding(node.op, numerics)
    s1, z1 = _sz(g, node.inputs[0])
    sa, za = _sz(g, node.inputs[1])
    so, zo = _sz(g, node.outputs[0])
    m1, sh1 = quantize_multiplier(s1 / so, rnd)
    m2, sh2 = quantize_multiplier(s1 * sa / so, rnd)
    return PreluQuant(-z1, -za, zo, m1, sh1, m2, sh2)


def prepare_reduce_minmax(node: Node, g: Graph, numerics: Numerics) -> PoolQuant:
    """reduce.cc int8 MAX/MIN: both runtimes require output quant == input quant."""
    if g.tensors[node.inputs[0]].quant != g.tensors[node.outputs[0]].quant:
        raise QuantizeError(f"node {node.name or node.op} ({node.op}): int8 REDUCE_MAX/MIN "
                            "needs the output's scale and zero point equal to the input's")
    return PoolQuant(INT8_MIN, INT8_MAX)


def prepare_matmul(node: Node, g: Graph, numerics: Numerics) -> MulQuant:
    """batch_matmul.cc (TFLM and LiteRT): acc = sum((x1 - z1) * (x2 - z2)), requantized by
    GetQuantizedConvolutionMultipler: double(float(s1 * s2)) / double(s_out) (the product
    of the two scales is taken in float)."""
    rnd = rounding(node.op, numerics)
    s1, z1 = _sz(g, node.inputs[0])
    s2, z2 = _sz(g, node.inputs[1])
    so, zo = _sz(g, node.outputs[0])
    m, sh = quantize_multiplier(float(np.float32(s1) * np.float32(s2)) / so, rnd)
    return MulQuant(-z1, -z2, zo, m, sh, INT8_MIN, INT8_MAX)


SQDIFF_LEFT_SHIFT = 7   # squared_difference.cc: 255^2 * 2^14 still fits int32


def prepare_squared_difference(node: Node, g: Graph, numerics: Numerics) -> AddQuant:
    """squared_difference.cc PrepareQuantized (TFLM and LiteRT): inputs scaled by
    s / (2 max(s1, s2)); output multiplier (2 max)^2 / (2^14 * s_out), all in double."""
    rnd = rounding(node.op, numerics)
    s1, z1 = _sz(g, node.inputs[0])
    s2, z2 = _sz(g, node.inputs[1])
    so, zo = _sz(g, node.outputs[0])
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max, rnd)
    m2, sh2 = quantize_multiplier(s2 / twice_max, rnd)
    mo, sho = quantize_multiplier(twice_max * twice_max / ((1 << 2 * SQDIFF_LEFT_SHIFT) * so),
                                  rnd)
    return AddQuant(-z1, -z2, zo, SQDIFF_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, INT8_MIN,
                    INT8_MAX)


# ---------------------------------------------------------------- elementwise unary
def _rescale(node: Node, g: Graph, numerics: Numerics, lo_f: float, hi_f: float
             ) -> RequantQuant:
    """Requantize in -> out and clamp to [lo_f, hi_f] (float bounds, on the output scale),
    as TFLite's ReluX: act = zp + roundf(f / scale) in float."""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    m, sh = quantize_multiplier(_real_div(in_s, out_s, numerics), rnd)
    lo = INT8_MIN if lo_f == -math.inf else max(
        INT8_MIN, out_z + round_half_away_int(_f32(np.float32(lo_f) / np.float32(out_s))))
    hi = INT8_MAX if hi_f == math.inf else min(
        INT8_MAX, out_z + round_half_away_int(_f32(np.float32(hi_f) / np.float32(out_s))))
    return RequantQuant(-in_z, out_z, m, sh, lo, hi)


def _real_div(a: float, b: float, numerics: Numerics) -> float:
    """TFLM computes scale ratios in double; LiteRT's activations.cc divides the two float
    scales in float first (`double real_multiplier = input->params.scale / output->...`)."""
    if numerics == Numerics.LITERT:
        return _f32(np.float32(a) / np.float32(b))
    return float(a) / float(b)


# identity (mult, shift): requantize(x, 1<<30, 1) == x exactly in both rounding modes
IDENTITY_MULT, IDENTITY_SHIFT = 1 << 30, 1


def prepare_relu(node: Node, g: Graph, numerics: Numerics) -> RequantQuant:
    return _rescale(node, g, numerics, 0.0, math.inf)


def prepare_relu6(node: Node, g: Graph, numerics: Numerics) -> RequantQuant:
    """LiteRT: ReluX requantizes in -> out and clamps at out_zp + round(6 / out_scale).
    TFLM activations.cc Relu6: NO requantization, clamps the input bytes to
    [in_zp, FloatToQuantizedType(6, in_scale, in_zp)] (it assumes in q == out q)."""
    if numerics == Numerics.LITERT:
        return _rescale(node, g, numerics, 0.0, 6.0)
    in_s, in_z = _sz(g, node.inputs[0])
    six = int(np.clip(round(6.0 / np.float32(in_s)) + in_z, INT8_MIN, INT8_MAX))
    return RequantQuant(-in_z, in_z, IDENTITY_MULT, IDENTITY_SHIFT, max(INT8_MIN, in_z), six)


def prepare_requant(node: Node, g: Graph, numerics: Numerics) -> RequantQuant:
    """int8 -> int8 rescale (QUANTIZE requant): double(in_s) / double(out_s)."""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    m, sh = quantize_multiplier(float(in_s) / float(out_s), rnd)
    return RequantQuant(-in_z, out_z, m, sh, INT8_MIN, INT8_MAX)


def prepare_quantize(node: Node, g: Graph, numerics: Numerics) -> QuantizeQuant:
    out_s, out_z = _sz(g, node.outputs[0])
    src = g.tensors[node.inputs[0]]
    rq = prepare_requant(node, g, numerics) if src.dtype == "int8" else None
    return QuantizeQuant(out_s, out_z, rq)


def prepare_dequantize(node: Node, g: Graph, numerics: Numerics) -> DequantizeQuant:
    s, z = _sz(g, node.inputs[0])
    return DequantizeQuant(s, z)


def prepare_concat(node: Node, g: Graph, numerics: Numerics) -> NoQuant:
    """int8 CONCATENATION copies bytes: TFLM (concatenation.cc) and LiteRT both refuse inputs
    whose scale/zero point differ from the output's, so the quantizer must unify them."""
    out_q = g.tensors[node.outputs[0]].quant
    for name in node.inputs:
        if g.tensors[name].quant != out_q:
            raise QuantizeError(f"node {node.name or node.op} (CONCAT): input {name!r} has "
                                "quant params different from the output's; TFLM and LiteRT "
                                "require all int8 CONCAT operands to share scale/zero point")
    return NoQuant()


def prepare_pad(node: Node, g: Graph, numerics: Numerics) -> PadQuant:
    """TFLite pad.cc: int8 PAD pads with the output zero point (PADV2: its quantized value)."""
    s, z = _sz(g, node.outputs[0])
    v = z + round_half_away_int(_f32(np.float32(node.attrs.value) / np.float32(s)))
    return PadQuant(int(np.clip(v, INT8_MIN, INT8_MAX)))


def nearest_maps(in_hw: tuple[int, ...], size: tuple[int, int], align_corners: bool,
                 half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray]:
    """Input row and column of every output pixel of RESIZE_NEAREST_NEIGHBOR, as TFLite's
    GetNearestNeighbor computes them (float32 scale, TfLiteRound with align_corners)."""
    maps = []
    for n_in, n_out in zip(in_hw, size):
        if align_corners and n_out > 1:
            scale = np.float32(n_in - 1) / np.float32(n_out - 1)
        else:
            scale = np.float32(n_in) / np.float32(n_out)
        offset = np.float32(0.5 if half_pixel_centers else 0.0)
        pos = (np.arange(n_out, dtype=np.float32) + offset) * scale
        idx = round_half_away(pos) if align_corners else np.floor(pos)
        idx = np.minimum(idx.astype(np.int64), n_in - 1)
        maps.append(np.maximum(idx, 0) if half_pixel_centers else idx)
    return maps[0], maps[1]


def bilinear_taps(in_hw: tuple[int, ...], size: tuple[int, int], align_corners: bool,
                  half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per output row and per output column: (lower input index, upper input index, 10-bit
    fraction input_pos - 1024 * lower), as TFLite's ResizeBilinearInteger computes them
    (reference_ops ComputeInterpolationValuesInteger; C division truncates toward zero)."""
    out = []
    for n_in, n_out in zip(in_hw, size):
        if align_corners and n_out > 1:
            scale = ((1 << 10) * (n_in - 1) + (n_out - 1) // 2) // (n_out - 1)
        else:
            scale = ((1 << 10) * n_in + n_out // 2) // n_out
        v = np.arange(n_out, dtype=np.int64) * scale
        if half_pixel_centers:
            v = v + scale // 2 - (1 << 9)
        lo = np.maximum(np.trunc(v / 1024).astype(np.int64), 0)
        hi = np.minimum(np.trunc((v + 1023) / 1024).astype(np.int64), n_in - 1)
        out.append(np.stack([lo, hi, v - 1024 * lo], axis=1))
    return out[0], out[1]


def prepare_shared(node: Node, g: Graph, numerics: Numerics) -> SharedQuant:
    """STRIDED_SLICE / RESIZE_NEAREST / MAXIMUM / MINIMUM: TFLM and LiteRT move (or compare)
    int8 bytes without requantizing, so every operand must carry the output's quantization."""
    out_q = g.tensors[node.outputs[0]].quant
    for name in node.inputs:
        if name and g.tensors[name].quant != out_q:
            raise QuantizeError(f"node {node.name or node.op} ({node.op}): operand {name!r} has "
                                "quant params different from the output's; int8 "
                                f"{node.op} moves bytes, so they must share scale/zero point")
    if node.op == Op.RESIZE_NEAREST:
        a = node.attrs
        rows, cols = nearest_maps(g.tensors[node.inputs[0]].shape[1:3], a.size,
                                  a.align_corners, a.half_pixel_centers)
        return SharedQuant(node.op, rows, cols)
    if node.op == Op.RESIZE_BILINEAR:
        a = node.attrs
        rows, cols = bilinear_taps(g.tensors[node.inputs[0]].shape[1:3], a.size,
                                   a.align_corners, a.half_pixel_centers)
        return SharedQuant(node.op, rows, cols)
    return SharedQuant(node.op)


def prepare_none(node: Node, g: Graph, numerics: Numerics) -> NoQuant:
    return NoQuant()


# ---------------------------------------------------------------- LUT ops
def _float_lut(node: Node, g: Graph, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """LiteRT LUTPopulate<int8_t> (kernels/internal/reference/integer_ops/lut.h): dequantize
    in float, apply fn in float, y = round(fn(x) / out_scale) + zp, clamp."""
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    v = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int32)
    x = (np.float32(in_s) * (v - in_z).astype(np.float32)).astype(np.float32)
    inv = np.float32(1.0) / np.float32(out_s)
    r = round_half_away((fn(x).astype(np.float32) * inv).astype(np.float32))
    return np.clip(r.astype(np.int64) + out_z, INT8_MIN, INT8_MAX).astype(np.int8)


def _sigmoid_f32(x: np.ndarray) -> np.ndarray:
    # 1.0f / (1.0f + std::exp(-value)) in float; exp evaluated in double then rounded to
    # float (glibc expf is correctly rounded in practice)
    with np.errstate(over="ignore"):           # expf overflows to inf too: 1/(1+inf) = 0
        e = np.exp(-x.astype(np.float64)).astype(np.float32)
    return (np.float32(1.0) / (np.float32(1.0) + e)).astype(np.float32)


def _tanh_f32(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.astype(np.float64)).astype(np.float32)


def _fixed_act_params(in_s: float) -> tuple[int, int, int]:
    """TFLM logistic_common.cc / tanh.cc: input to Q4.27 via frexp (not QuantizeMultiplier)."""
    real = float(in_s) * float(1 << (31 - 4))
    q, left_shift = math.frexp(real)
    mult = round_half_away_int(q * (1 << 31))
    radius = calculate_input_radius(4, left_shift, 31)
    return mult, left_shift, radius


def prepare_logistic(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
    """LiteRT (BUILTIN_REF) SigmoidPrepare: float LUT. TFLM: gemmlowp::logistic in Q4.27
    (reference_integer_ops::Logistic), tabulated here over all 256 inputs."""
    rnd = rounding(node.op, numerics)
    if numerics == Numerics.LITERT:
        return LutQuant(_float_lut(node, g, _sigmoid_f32))
    in_s, in_z = _sz(g, node.inputs[0])
    mult, left_shift, radius = _fixed_act_params(in_s)
    x = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64) - in_z
    q4 = requantize(x, mult, left_shift, rnd)
    y = rounding_divide_by_pot(fx_logistic(q4, 4), 31 - 8) - 128
    y = np.where(x <= -radius, INT8_MIN, np.where(x >= radius, INT8_MAX, y))
    return LutQuant(np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8))


def prepare_tanh(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
    """LiteRT (BUILTIN_REF) TanhPrepare: float LUT. TFLM: gemmlowp::tanh in Q4.27."""
    rnd = rounding(node.op, numerics)
    if numerics == Numerics.LITERT:
        return LutQuant(_float_lut(node, g, _tanh_f32))
    in_s, in_z = _sz(g, node.inputs[0])
    mult, left_shift, radius = _fixed_act_params(in_s)
    x = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64) - in_z
    q4 = requantize(x, mult, left_shift, rnd)
    y = rounding_divide_by_pot(fx_tanh(q4, 4), 31 - 7)
    y = np.where(x <= -radius, INT8_MIN, np.where(x >= radius, INT8_MAX, y))
    return LutQuant(np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8))


def prepare_hard_swish(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
    """reference_ops::HardSwish<int8> (both runtimes), int16 fixed point, tabulated."""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    hires_s = np.float32(1.0 / 128.0) * np.float32(in_s)
    reluish_s = np.float32(3.0 / 32768.0)
    om32, oexp = quantize_multiplier(_f32(hires_s / np.float32(out_s)), rnd)
    rm32, rexp = quantize_multiplier(_f32(hires_s / reluish_s), rnd)
    om, rm = downscale_int16(om32), downscale_int16(rm32)
    x = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64) - in_z
    hires = wrap16(x * 128)
    pre_out = srdhm16(hires, om)
    reluish = hires
    if rexp > 0:
        reluish = sat_lshift16(reluish, rexp - 1)
    reluish = srdhm16(reluish, rm)
    if rexp > 0:
        reluish = sat_lshift16(reluish, 1)
    if rexp < 0:
        reluish = rounding_divide_by_pot(reluish, -rexp)
    reluish = (reluish + (1 << 15)) >> 1
    pre = sdhm16(reluish, pre_out)
    y = wrap16(rounding_divide_by_pot(pre, -oexp) + out_z)
    return LutQuant(np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8))


def prepare_leaky_relu(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
    """reference_ops::QuantizeLeakyRelu: identity or alpha requant by the input's sign.
    TFLM: double(in_s * alpha / out_s) computed in float; LiteRT the same expression."""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    alpha = np.float32(node.attrs.alpha)
    ma, sa = quantize_multiplier(_f32(np.float32(in_s) * alpha / np.float32(out_s)), rnd)
    mi, si = quantize_multiplier(_real_div(in_s, out_s, numerics), rnd)
    x = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64) - in_z
    y = np.where(x >= 0, requantize(x, mi, si, rnd), requantize(x, ma, sa, rnd))
    return LutQuant(np.clip(y + out_z, INT8_MIN, INT8_MAX).astype(np.int8))


def _inv_sqrt_multiplier_exp(v: int) -> tuple[int, int]:
    """TFLite GetInvSqrtQuantizedMultiplierExp(v, kReverseShift): gemmlowp Newton-Raphson
    1/sqrt in Q3 fixed point; returns (multiplier, shift with > 0 = left)."""
    if v <= 1:
        return INT32_MAX, 0
    shift = 11
    while v >= (1 << 29):
        v //= 4
        shift += 1
    pairs = ((32 - v.bit_length()) - 1) // 2 - 1
    shift -= pairs
    v <<= 2 * pairs

    def mul(a: int, b: int) -> int:
        return int(srdhm(a, b))

    def rescale3(x: int, from_bits: int) -> int:   # Rescale<3>: saturating x * 2^(bits-3)
        return int(np.clip(x << (from_bits - 3), INT32_MIN, INT32_MAX))

    half_input = int(rounding_divide_by_pot(v >> 1, 1))
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28                              # F3::One()
    for _ in range(5):
        x3 = rescale3(mul(mul(x, x), x), 9)
        x = rescale3(int(wrap32(mul(half_three, x) - mul(half_input, x3))), 6)
    x = mul(x, 1518500250)                   # * sqrt(2) / 2
    if shift < 0:
        x <<= -shift
        shift = 0
    return x, -shift


def prepare_rsqrt(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
    """elementwise.cc RsqrtEvalQuantized (TFLM and LiteRT alike), tabulated: v = x - zp,
    v == 0 -> 127, else rq(rq(1, inv_sqrt(v), s + 20), 1/(sqrt(in_s) * out_s), shift - 20).
    Negative v is an error in both runtimes; the table gives 127 there."""
    rnd = rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    real = 1.0 / float(np.float32(np.sqrt(np.float32(in_s))) * np.float32(out_s))
    m, sh = quantize_multiplier(real, rnd)
    out = []
    for v in range(INT8_MIN - in_z, INT8_MAX + 1 - in_z):
        if v <= 0:
            out.append(INT8_MAX)
            continue
        im, ish = _inv_sqrt_multiplier_exp(v)
        data = int(requantize(1, im, ish + 20, rnd))
        out.append(int(requantize(data, m, sh - 20, rnd)) + out_z)
    return LutQuant(np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8))


def _float_fn_lut(fn: Callable[[np.ndarray], np.ndarray]) -> Prepare:
    """A LiteRT LUTPopulate op (EXP, GELU: TFLM has no int8 kernel for them)."""
    def prep(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
        return LutQuant(_float_lut(node, g, lambda x: fn(x, node.attrs)))
    return prep


def _exp_f32(x: np.ndarray, a: object) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64)).astype(np.float32)


def prepare_sqrt(node: Node, g: Graph, numerics: Numerics) -> LutQuant:
    """LiteRT int8 SQRT (TFLM: float only): sqrt of the dequantized value in float, divided
    by the output scale and TRUNCATED, not rounded (measured: rounding differs on 142 of 256
    inputs, truncation on none); negative inputs give sqrt(0)."""
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    v = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int32)
    x = (np.float32(in_s) * (v - in_z).astype(np.float32)).astype(np.float32)
    r = np.sqrt(np.maximum(x, np.float32(0))).astype(np.float32) / np.float32(out_s)
    y = np.trunc(r.astype(np.float32)).astype(np.int64) + out_z
    return LutQuant(np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8))


def _gelu_f32(x: np.ndarray, a: object) -> np.ndarray:
    from edgeforge.qmath import gelu
    return gelu(x, a)


# ---------------------------------------------------------------- softmax
def calculate_input_radius(int_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """TFLite CalculateInputRadius."""
    max_rescaled = (1.0 * ((1 << int_bits) - 1) * (1 << (total_bits - int_bits))
                    / (1 << left_shift))
    return math.floor(max_rescaled)


def prepare_softmax(node: Node, g: Graph, numerics: Numerics) -> SoftmaxQuant:
    """PreprocessSoftmaxScaling (quantization_util.cc) with kScaledDiffIntegerBits = 5.
    The cap on the real multiplier is (1<<31)-1 under double rounding, (1<<30)-1 under
    TFLITE_SINGLE_ROUNDING."""
    rnd = rounding(node.op, numerics)
    in_s, _ = _sz(g, node.inputs[0])
    single = rnd is Rounding.SINGLE
    cap = float((1 << 30) - 1) if single else float((1 << 31) - 1)
    real = min(float(node.attrs.beta) * float(in_s) * (1 << (31 - 5)), cap)
    mult, left_shift = quantize_multiplier(real, rnd)   # QuantizeMultiplierGreaterThanOne
    diff_min = -calculate_input_radius(5, left_shift, 31)
    return SoftmaxQuant(mult, left_shift, diff_min)


# ---------------------------------------------------------------- the registry
Prepare = Callable[[Node, Graph, Numerics], object]

PREPARE: dict[Op, Prepare] = {
    Op.CONV2D: prepare_conv,
    Op.DWCONV2D: prepare_conv,
    Op.FC: prepare_conv,
    Op.AVGPOOL2D: prepare_pool,
    Op.MAXPOOL2D: prepare_pool,
    Op.MEAN: prepare_mean,
    Op.ADD: prepare_add,
    Op.SUB: prepare_add,
    Op.MUL: prepare_mul,
    Op.RELU: prepare_relu,
    Op.RELU6: prepare_relu6,
    Op.LEAKY_RELU: prepare_leaky_relu,
    Op.LOGISTIC: prepare_logistic,
    Op.TANH: prepare_tanh,
    Op.HARD_SWISH: prepare_hard_swish,
    Op.RESHAPE: prepare_none,
    Op.TRANSPOSE: prepare_none,
    Op.CONCAT: prepare_concat,
    Op.PAD: prepare_pad,
    Op.SOFTMAX: prepare_softmax,
    Op.QUANTIZE: prepare_quantize,
    Op.DEQUANTIZE: prepare_dequantize,
    Op.STRIDED_SLICE: prepare_shared,
    Op.RESIZE_NEAREST: prepare_shared,
    Op.MAXIMUM: prepare_shared,
    Op.MINIMUM: prepare_shared,
    Op.RESIZE_BILINEAR: prepare_shared,
    Op.RSQRT: prepare_rsqrt,
    Op.SQRT: prepare_sqrt,
    Op.EXP: _float_fn_lut(_exp_f32),
    Op.GELU: _float_fn_lut(_gelu_f32),
    Op.SQUARED_DIFFERENCE: prepare_squared_difference,
    Op.MATMUL: prepare_matmul,
    Op.SUM: prepare_mean,
    Op.REDUCE_MAX: prepare_reduce_minmax,
    Op.REDUCE_MIN: prepare_reduce_minmax,
    Op.GATHER: prepare_none,
    Op.PRELU: prepare_prelu,
    Op.TRANSPOSE_CONV: prepare_conv,     # PopulateConvolutionQuantizationParams, as CONV_2D
    Op.LSTM: prepare_lstm,               # edgeforge.qparams_lstm
}


def _check_shifts(q: object) -> None:
    """Every *shift field is a left shift of at most 31: the kernels shift int32 values (a
    shift of 121, from scales 1e38 apart, was C undefined behaviour)."""
    for name, v in getattr(q, "__dict__", {}).items():
        if name.endswith("shift") and np.size(v) and int(np.max(v)) > 31:
            raise QuantizeError(f"{name} {int(np.max(v))} is past 31: the quantization "
                                "scales are out of range")


def prepare(node: Node, g: Graph, numerics: Numerics | str = Numerics.TFLM) -> object:
    """The params struct for one int8 node (PREPARE[node.op]); a QuantizeError names the node."""
    try:
        q = PREPARE[node.op](node, g, Numerics(numerics))
        _check_shifts(q)
        return q
    except QuantizeError as e:
        where = g.meta.get("source") or g.name
        raise QuantizeError(f"{where}: node '{node.name or node.outputs[0]}' ({node.op.value}): "
                            f"{e}") from None
