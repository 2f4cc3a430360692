"""Host-side Prepare of the 16x8 ops (int16 activations, int8 weights), and their arithmetic.

The int16 twin of edgeforge.qparams: `prepare(node, g, numerics)` returns the constants an
int16 kernel needs, consumed by runtime/reference.py (REFERENCE_S16) and the C codegen alike.
16x8 follows TFLite's int16 spec: activations symmetric (zero point 0), weights int8
symmetric per channel, conv / depthwise / FC bias int64 (int32 accepted, as TFLM does).

What differs from int8, read from TFLM's kernels (LiteRT shares the reference kernels; both
measured byte-equal on the converter's 16x8 models in tests/models/int16):
  * CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with int64 bias (or none) accumulate in
    int64 and requantize with the int64 MultiplyByQuantizedMultiplier (common.cc): the Q31
    multiplier reduced to Q15 (rounded), one rounding shift -- the same in both profiles.
    With int32 bias they accumulate in int32 and requantize as int8 layers do.
  * ADD / SUB shift inputs left by 15 (not 20); MUL, pooling, MEAN and QUANTIZE are the int8
    algorithms with int16 clamps.
  * LOGISTIC / TANH: reference_integer_ops' int16 kernels, a 256-entry sigmoid table with
    linear interpolation after an input rescale to 1/(3*4096) (`prepare_logistic` etc.).
  * SOFTMAX: SoftmaxInt16, two 513-entry interpolated LUTs (exp on [-10, 0], 1/(1+x) on
    [0, 1]) filled by LUTPopulateInt16<float>; output scale 1/32768.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeforge import qparams as qp
from edgeforge.errors import QuantizeError
from edgeforge.ir import Act, Graph, Node, Op
from edgeforge.qmath import (
    Numerics,
    act_range_q,
    quantize_multiplier,
    quantize_multipliers,
    round_half_away,
    round_half_away_int,
)

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
ADD_LEFT_SHIFT_S16 = 15          # add_common.cc: int16 inputs are shifted left by 15
LUT16_SIZE = 513                 # LUTSize<int16_t>(): 512 steps + 1 for the last slope


# ---------------------------------------------------------------- params structs
class Quant16:
    """Base of every 16x8 params struct: the reference runs such a node's REFERENCE_S16."""


class _ZeroOffsets:
    """16x8 activations are symmetric: the zero-point offsets of the int8 structs are 0
    (codegen.c's mean / add / mul emitters serve both kinds and read them)."""
    in_offset = out_offset = in1_offset = in2_offset = 0


@dataclass(frozen=True)
class ConvQuant16(Quant16):
    """CONV2D, DWCONV2D, FC with int16 activations"""
    mult: np.ndarray             # int32 [C_OUT] (or [1]); Q31
    shift: np.ndarray            # int32 [C_OUT]; > 0 = left
    act_min: int
    act_max: int
    acc64: bool                  # int64 accumulator (int64 bias or none) vs int32 (int32 bias)


@dataclass(frozen=True)
class ClampQuant16(Quant16):
    """AVGPOOL2D, MAXPOOL2D (input and output share the scale)"""
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MeanQuant16(_ZeroOffsets, Quant16):
    """MEAN: rq(sum(x)) with 1/count folded in, as int8"""
    mult: int
    shift: int
    count: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddQuant16(_ZeroOffsets, Quant16):
    """ADD, SUB: (x << 15) rescaled per input, summed, rescaled"""
    left_shift: int
    in1_mult: int
    in1_shift: int
    in2_mult: int
    in2_shift: int
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MulQuant16(_ZeroOffsets, Quant16):
    """MUL: rq(x1 * x2); fields named as ef_mul_params'"""
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class RequantQuant16(Quant16):
    """QUANTIZE int8 <-> int16 / int16 -> int16: rq(x - in_zp) + out_zp"""
    in_offset: int
    out_offset: int
    mult: int
    shift: int
    out_min: int
    out_max: int


@dataclass(frozen=True)
class QuantizeQuant16(Quant16):
    """QUANTIZE float -> int16 (requant None) or a requantize"""
    scale: float
    zero_point: int
    requant: RequantQuant16 | None


@dataclass(frozen=True)
class SigmoidQuant16(Quant16):
    """LOGISTIC, TANH int16: x * mult (rounded) >> left_shift"""
    mult: int                    # <= 32767 (0 in the file means the power-of-two case: 3)
    left_shift: int


@dataclass(frozen=True)
class MoveQuant16(Quant16):
    """RESHAPE: bytes move, values do not change"""


@dataclass(frozen=True)
class PadQuant16(Quant16):
    """PAD: values are copied, the border gets pad_value"""
    pad_value: int


@dataclass(frozen=True)
class DequantizeQuant16(Quant16):
    """DEQUANTIZE int16 -> float: scale * (x - zero_point)"""
    scale: float
    zero_point: int


@dataclass(frozen=True)
class SoftmaxQuant16(Quant16):
    """SOFTMAX int16 -> int16"""
    in_mult: int                 # beta * in_scale / (10 / 65535), Q31 ...
    in_shift: int                # ... and its shift (> 0 = left)
    exp_lut: np.ndarray          # int16 [513]: exp on [-10, 0]
    recip_lut: np.ndarray        # int16 [513]: 1 / (1 + x) on [0, 1]


# ---------------------------------------------------------------- arithmetic
def requantize64(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int
                 ) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int64_t x, ...) (common.cc, both rounding builds): the
    Q31 multiplier reduced to Q15 with rounding (saturating at 0x7FFF), then one rounding
    right shift by 15 - shift. int64 in and out."""
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    reduced = np.where(mult < 0x7FFF0000, (mult + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    return (acc * reduced + (np.int64(1) << (total - 1))) >> total


def lut16_lookup(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """LUTLookup(int16_t, const int16_t*): the high 9 bits index, the low 7 interpolate."""
    v = np.asarray(x, dtype=np.int64)
    lut = np.asarray(lut, dtype=np.int64)
    idx = 256 + (v >> 7)
    base = lut[idx]
    slope = _wrap16(lut[idx + 1] - base)
    delta = (slope * (v & 0x7F) + 64) >> 7
    return _wrap16(base + delta)


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _f(x: float) -> np.float32:
    return np.float32(x)


def _round_f32(x: np.ndarray) -> np.ndarray:
    """TfLiteRound on float (roundf: halves away from zero), kept in float32."""
    return round_half_away(np.asarray(x, dtype=np.float32)).astype(np.float32)


def lut16_populate(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                   fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """LUTPopulateInt16<float> (common.h), every step in float32 as the C++ evaluates it:
    512 samples over the input range, each biased by half its midpoint interpolation error,
    plus the end point."""
    s_in, s_out = _f(in_scale), _f(out_scale)
    in_min = s_in * _f(INT16_MIN - in_zp)
    in_max = s_in * _f(INT16_MAX - in_zp)
    out_min = s_out * _f(INT16_MIN - out_zp)
    out_max = s_out * _f(INT16_MAX - out_zp)
    steps = LUT16_SIZE - 1
    step = (in_max - in_min) / _f(steps)
    half = step / _f(2)
    inv = _f(65536) / (out_max - out_min)
    i = np.arange(steps, dtype=np.float32)
    at = (in_min + i * step).astype(np.float32)
    val = fn(at)
    mid = fn((at + half).astype(np.float32))
    nxt = fn((in_min + (i + _f(1)) * step).astype(np.float32))
    sample = _round_f32(val * inv)
    interp = _round_f32((nxt * inv + sample) / _f(2))
    err = interp - _round_f32(mid * inv)
    bias = _round_f32(err / _f(2))
    lut = np.clip(sample - bias, INT16_MIN, INT16_MAX)
    last = np.clip(_round_f32(fn(np.array([in_max], np.float32)) * inv), INT16_MIN, INT16_MAX)
    return np.concatenate([lut, last]).astype(np.int16)


def _expf(x: np.ndarray) -> np.ndarray:
    return np.exp(x.astype(np.float64)).astype(np.float32)


def _recip1p(x: np.ndarray) -> np.ndarray:
    return (np.float32(1) / (np.float32(1) + x.astype(np.float32))).astype(np.float32)


# sigmoid(i / 24) in Q0.16, i = 0..255: the table reference_integer_ops' int16 LOGISTIC and
# TANH interpolate. It is not round(65536 sigmoid(i/24)) (44 entries differ by one), so it
# was measured: ai-edge-litert's int16 TANH run on every input at 400 input scales, read
# where the interpolation weight is 0 (output = entry - 32768).
SIGMOID_TABLE_U16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535], dtype=np.int64)


def logistic16(x: np.ndarray, q: SigmoidQuant16) -> np.ndarray:
    """reference_integer_ops::Logistic(int16): |x| in Q?.9 steps of the sigmoid table."""
    v = _scaled_input(x, q)
    a = np.abs(v)
    uh = a >> 9
    ua = SIGMOID_TABLE_U16[np.minimum(uh, 254)]
    ub = SIGMOID_TABLE_U16[np.minimum(uh, 254) + 1]
    r = np.where(uh >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return _wrap16(r >> 10).astype(np.int16)


def tanh16(x: np.ndarray, q: SigmoidQuant16) -> np.ndarray:
    """reference_integer_ops::Tanh(int16): tanh(x) = 2 sigmoid(2x) - 1 on the same table."""
    v = _scaled_input(x, q)
    a = np.abs(v)
    uh = a >> 8
    ua = SIGMOID_TABLE_U16[np.minimum(uh, 254)]
    ub = SIGMOID_TABLE_U16[np.minimum(uh, 254) + 1]
    r = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return _wrap16(r >> 8).astype(np.int16)


def _scaled_input(x: np.ndarray, q: SigmoidQuant16) -> np.ndarray:
    mult, shift = (3 << q.left_shift, 0) if q.mult == 0 else (q.mult, q.left_shift)
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    return (np.asarray(x, dtype=np.int64) * mult + rnd) >> shift


def softmax16(x: np.ndarray, q: SoftmaxQuant16, rounding: object) -> np.ndarray:
    """reference_ops::SoftmaxInt16 over the last axis."""
    from edgeforge.qmath import requantize
    v = np.asarray(x, dtype=np.int64)
    diff = v - v.max(axis=-1, keepdims=True)
    scaled = requantize(diff, q.in_mult, q.in_shift, rounding)
    e = lut16_lookup(np.clip(scaled + 32767, INT16_MIN, INT16_MAX), q.exp_lut)
    total = e.sum(axis=-1, keepdims=True)                     # Q16.15, > 0
    headroom = 32 - np.frexp(total.astype(np.float64))[1].astype(np.int64)   # clz(total)
    shifted = ((total << (headroom - 1)) + (1 << 13)) >> 14
    sym = np.clip(shifted - ((1 << 15) + (1 << 16)), INT16_MIN, INT16_MAX)
    recip = lut16_lookup(sym, q.recip_lut)
    right = 31 - headroom
    out = (e * recip + (np.int64(1) << (right - 1))) >> right
    return np.clip(out, 0, INT16_MAX).astype(np.int16)


# ---------------------------------------------------------------- prepare
def _sz(g: Graph, name: str) -> tuple[float, int]:
    t = g.tensors[name]
    if t.quant is None:
        raise QuantizeError(f"tensor {name!r} has no quantization parameters")
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _symmetric(g: Graph, node: Node, names: tuple[str, ...]) -> None:
    """TFLite's 16x8 kernels require zero point 0 on every int16 activation."""
    for n in names:
        t = g.tensors[n]
        if n and t.dtype == "int16" and t.quant is not None and t.quant.zero_point.any():
            raise QuantizeError(f"int16 tensor {n!r} has zero point "
                                f"{int(t.quant.zero_point[0])}; 16x8 activations are symmetric")


def qrange(dtype: str) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _out_range(node: Node, g: Graph) -> tuple[int, int]:
    s, z = _sz(g, node.outputs[0])
    return act_range_q(getattr(node.attrs, "act", Act.NONE), s, z, INT16_MIN, INT16_MAX)


def prepare_conv(node: Node, g: Graph, numerics: object) -> ConvQuant16:
    """PopulateConvolutionQuantizationParams, as int8; the accumulator follows the bias type."""
    rnd = qp.rounding(node.op, numerics)
    in_s, _ = _sz(g, node.inputs[0])
    out_s, _ = _sz(g, node.outputs[0])
    w_s = g.tensors[node.inputs[1]].quant.scale.astype(np.float64)
    mult, shift = quantize_multipliers(in_s * w_s / out_s, rnd)
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    acc64 = not bias or g.tensors[bias].dtype == "int64"
    if node.op == Op.FC and Numerics(numerics) == Numerics.LITERT:
        acc64 = False     # ai-edge-litert's int16 FC requantizes as int8 (measured, any bias)
    return ConvQuant16(mult, shift, *_out_range(node, g), acc64)


def prepare_pool(node: Node, g: Graph, numerics: object) -> ClampQuant16:
    return ClampQuant16(*_out_range(node, g))


def prepare_mean(node: Node, g: Graph, numerics: object) -> MeanQuant16:
    """QuantizedMeanOrSum<int16_t>: the int8 fold of 1/count into the multiplier."""
    q = qp.prepare_mean(node, g, numerics)
    return MeanQuant16(q.mult, q.shift, q.count, INT16_MIN, INT16_MAX)


def prepare_add(node: Node, g: Graph, numerics: object) -> AddQuant16:
    """CalculateOpDataAdd with left_shift 15 (int16 output), all in double."""
    rnd = qp.rounding(node.op, numerics)
    s1, _ = _sz(g, node.inputs[0])
    s2, _ = _sz(g, node.inputs[1])
    so, _ = _sz(g, node.outputs[0])
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max, rnd)
    m2, sh2 = quantize_multiplier(s2 / twice_max, rnd)
    mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT_S16) * so), rnd)
    return AddQuant16(ADD_LEFT_SHIFT_S16, m1, sh1, m2, sh2, mo, sho, *_out_range(node, g))


def prepare_mul(node: Node, g: Graph, numerics: object) -> MulQuant16:
    rnd = qp.rounding(node.op, numerics)
    s1, _ = _sz(g, node.inputs[0])
    s2, _ = _sz(g, node.inputs[1])
    so, _ = _sz(g, node.outputs[0])
    m, sh = quantize_multiplier(s1 * s2 / so, rnd)
    return MulQuant16(m, sh, *_out_range(node, g))


def prepare_requant(node: Node, g: Graph, numerics: object) -> RequantQuant16:
    """quantize.cc Requantize (int8 <-> int16): double(in_s) / double(out_s)."""
    rnd = qp.rounding(node.op, numerics)
    in_s, in_z = _sz(g, node.inputs[0])
    out_s, out_z = _sz(g, node.outputs[0])
    m, sh = quantize_multiplier(float(in_s) / float(out_s), rnd)
    return RequantQuant16(-in_z, out_z, m, sh, *qrange(g.tensors[node.outputs[0]].dtype))


def prepare_quantize(node: Node, g: Graph, numerics: object) -> QuantizeQuant16:
    out_s, out_z = _sz(g, node.outputs[0])
    src = g.tensors[node.inputs[0]].dtype
    rq = prepare_requant(node, g, numerics) if src in ("int8", "int16") else None
    return QuantizeQuant16(out_s, out_z, rq)


def _checked_log2(x: float) -> tuple[int, bool]:
    """CheckedLog2 (quantization_util.cc), in float: (rounded log2, is a power of two)."""
    lg = np.float32(np.float32(np.log(np.float32(x))) * (np.float32(1) /
                                                         np.float32(np.log(np.float32(2)))))
    r = np.float32(round_half_away_int(float(lg)))
    return int(r), abs(float(np.float32(lg - r))) < 1e-3


def _sigmoid_params(node: Node, g: Graph, pot_shifts: tuple[int, ...]) -> SigmoidQuant16:
    """logistic_common.cc / tanh.cc int16 Prepare: input to 1/(3*4096) per step."""
    in_s, _ = _sz(g, node.inputs[0])
    out_s, _ = _sz(g, node.outputs[0])
    lg, pot = _checked_log2(in_s)
    left = (15 - 3) + lg
    if pot and left in pot_shifts:
        return SigmoidQuant16(0, left)
    real, left = float(np.float32(in_s)) * 4096.0 * 3.0, 0
    while real <= 32767.0 / 2.0 and left <= 30:
        left += 1
        real *= 2.0
    out_lg, out_pot = _checked_log2(out_s)
    if not out_pot or out_lg != -15:
        raise QuantizeError(f"int16 {node.op.value} needs output scale 1/32768, not {out_s}")
    return SigmoidQuant16(int(real), left)


def prepare_logistic(node: Node, g: Graph, numerics: object) -> SigmoidQuant16:
    return _sigmoid_params(node, g, (0,))


def prepare_tanh(node: Node, g: Graph, numerics: object) -> SigmoidQuant16:
    return _sigmoid_params(node, g, (0, 1))


def prepare_softmax(node: Node, g: Graph, numerics: object) -> SoftmaxQuant16:
    """softmax_common.cc CalculateSoftmaxParams (int16): the input diff scaled so that
    [-65535, 0] is [-10, 0]; the two LUTs as InitializeLutForInt16 fills them."""
    in_s, _ = _sz(g, node.inputs[0])
    out_s, _ = _sz(g, node.outputs[0])
    if abs(out_s - 1.0 / 32768) > 0.001 / 32768:
        raise QuantizeError(f"int16 SOFTMAX needs output scale 1/32768, not {out_s}")
    real = float(np.float32(in_s)) * float(np.float32(node.attrs.beta)) / (10.0 / 65535.0)
    mult, shift = quantize_multiplier(real, qp.rounding(node.op, numerics))
    rng = INT16_MAX - INT16_MIN
    exp_lut = lut16_populate(float(_f(10.0) / _f(rng)), INT16_MAX, float(_f(2.0) / _f(rng)), 0,
                             _expf)
    recip_lut = lut16_populate(float(_f(1.0) / _f(rng)), INT16_MIN, float(_f(2.0) / _f(rng)), 0,
                               _recip1p)
    return SoftmaxQuant16(mult, shift, exp_lut, recip_lut)


def prepare_none(node: Node, g: Graph, numerics: object) -> MoveQuant16:
    return MoveQuant16()


def prepare_pad(node: Node, g: Graph, numerics: object) -> PadQuant16:
    """pad.cc: int16 PAD pads with the quantized pad value (0.0 -> 0)."""
    s, z = _sz(g, node.outputs[0])
    v = z + round_half_away_int(float(np.float32(node.attrs.value) / np.float32(s)))
    return PadQuant16(int(np.clip(v, INT16_MIN, INT16_MAX)))


def prepare_shared(node: Node, g: Graph, numerics: object) -> MoveQuant16:
    """CONCAT / STRIDED_SLICE / TRANSPOSE move int16 values: operands share the output's
    quantization (as int8, the runtimes refuse otherwise)."""
    qp.prepare_concat(node, g, Numerics(numerics))
    return MoveQuant16()


def prepare_dequantize(node: Node, g: Graph, numerics: object) -> DequantizeQuant16:
    s, z = _sz(g, node.inputs[0])
    return DequantizeQuant16(s, z)


PREPARE_S16: dict[Op, Callable[[Node, Graph, object], object]] = {
    Op.CONV2D: prepare_conv,
    Op.DWCONV2D: prepare_conv,
    Op.FC: prepare_conv,
    Op.AVGPOOL2D: prepare_pool,
    Op.MAXPOOL2D: prepare_pool,
    Op.MEAN: prepare_mean,
    Op.ADD: prepare_add,
    Op.SUB: prepare_add,
    Op.MUL: prepare_mul,
    Op.LOGISTIC: prepare_logistic,
    Op.TANH: prepare_tanh,
    Op.SOFTMAX: prepare_softmax,
    Op.RESHAPE: prepare_none,
    Op.PAD: prepare_pad,
    Op.CONCAT: prepare_shared,
    Op.TRANSPOSE: prepare_shared,
    Op.STRIDED_SLICE: prepare_shared,
    Op.QUANTIZE: prepare_quantize,
    Op.DEQUANTIZE: prepare_dequantize,
}


def is_s16_node(node: Node, g: Graph) -> bool:
    """Does the node read or write an int16 activation (so it runs a 16x8 kernel)?"""
    from edgeforge.ir import OPS
    names = [i for k, i in enumerate(node.inputs) if i and k not in OPS[node.op].weights]
    return any(g.tensors[n].dtype == "int16" for n in names + list(node.outputs))


def prepare(node: Node, g: Graph, numerics: object) -> object:
    """The params struct for one 16x8 node; a QuantizeError names the node."""
    where = g.meta.get("source") or g.name
    fn = PREPARE_S16.get(node.op)
    try:
        if fn is None:
            raise QuantizeError(f"no int16 (16x8) kernel for {node.op.value}; supported: "
                                + ", ".join(sorted(o.value for o in PREPARE_S16)))
        _symmetric(g, node, tuple(i for i in node.inputs if i) + node.outputs)
        return fn(node, g, Numerics(numerics))
    except QuantizeError as e:
        raise QuantizeError(f"{where}: node '{node.name or node.outputs[0]}' ({node.op.value}): "
                            f"{e}") from None


__all__ = [
    "PREPARE_S16",
    "is_s16_node",
    "logistic16",
    "lut16_lookup",
    "lut16_populate",
    "prepare",
    "requantize64",
    "softmax16",
    "tanh16",
]
