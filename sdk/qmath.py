"""Quantization conventions and fixed-point arithmetic, in ONE module.

Everyone who computes int8 numbers (runtime/reference.py, quantize/, codegen/) calls these,
so the host reference, the C kernels and the runtimes they mirror agree byte for byte.

Conventions (as CMSIS-NN's arm_nn_types.h states them):
  * real = scale * (q - zero_point); int8 activations are asymmetric per-tensor,
    int8 weights symmetric (zero_point 0) per output channel.
  * in_offset = -input_zero_point; out_offset = +output_zero_point.
  * a (multiplier, shift) pair means real ~= multiplier * 2^(shift - 31);
    shift > 0 is a LEFT shift.
  * the numerics profile picks the requantization rounding:
      tflm   -> double rounding (gemmlowp SaturatingRoundingDoublingHighMul, then
                RoundingDivideByPOT), as TFLM's reference kernels do;
      litert -> single rounding (TFLITE_SINGLE_ROUNDING: one 64-bit multiply, one
                rounding shift), as ai-edge-litert's kernels do.
"""
from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np

from edgeforge.errors import QuantizeError
from edgeforge.ir import ACT_RANGE, Act

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class Numerics(enum.StrEnum):
    """Whose integer arithmetic the int8 model reproduces byte for byte."""
    TFLM = "tflm"        # TFLite Micro (and CMSIS-NN) as built by default: double rounding
    LITERT = "litert"    # ai-edge-litert's kernels (double rounding, but FC and SUM single)
    SINGLE = "single"    # TFLM semantics built with TFLITE_SINGLE_ROUNDING=1: every
    #                      requantization rounds once, the rounding float-scale runtimes
    #                      (onnxruntime, TensorRT) nearly match, so model_qdq.onnx agrees best


DEFAULT_NUMERICS = Numerics.TFLM


class Rounding(enum.StrEnum):
    """How a kernel rounds its Q31 requantization: TFLite's TFLITE_SINGLE_ROUNDING switch.
    Which one each op uses under a Numerics profile is edgeforge.qparams.rounding(op, profile)."""
    DOUBLE = "double"   # SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT
    SINGLE = "single"   # one rounding right shift of the 64-bit product


def quantize_multiplier(real: float, rounding: Rounding = Rounding.DOUBLE) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real -> (Q31 multiplier, shift); shift > 0 = left.
    A real that is not a finite number >= 0 is a QuantizeError (OverflowError in frexp /
    floor before); qparams.prepare refuses shifts the kernels cannot do."""
    if not math.isfinite(real) or real < 0:
        raise QuantizeError(f"requantization multiplier {real} is not a finite number >= 0 "
                            "(a quantization scale is 0, negative or out of range)")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away_int(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if Rounding(rounding) is Rounding.SINGLE and shift > 30:      # single rounding clamps
        return (1 << 31) - 1, 30
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: np.ndarray, rounding: Rounding = Rounding.DOUBLE
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel quantize_multiplier; returns int32 arrays (mult, shift)."""
    pairs = [quantize_multiplier(float(r), rounding) for r in np.ravel(reals)]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def round_half_away_int(x: float) -> int:
    """std::round: halves away from zero (NOT numpy's half-to-even)."""
    a = abs(x)
    f = math.floor(a)
    return (f + (a - f >= 0.5)) * (1 if x >= 0 else -1)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Vectorized std::round. Exact: `floor(|x| + 0.5)` would round 0.49999997f up in
    float32, so compare the (exact) fractional part with 0.5 instead."""
    a = np.abs(x)
    f = np.floor(a)
    return np.sign(x) * (f + (a - f >= 0.5))


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap of an int64 array (C's int32 arithmetic)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    neg = (ab >> 63) & 0x7FFFFFFF          # 2^31 - 1 where ab < 0, else 0 (no np.where)
    s = ab + ((1 << 30) - neg)             # nudge: 2^30, or 1 - 2^30 when ab < 0
    # C integer division truncates toward zero (numpy's >> floors): add 2^31 - 1 first
    # when s < 0 (s < 0 exactly when ab < 0, given the nudge's sign)
    high = (s + ((s >> 63) & 0x7FFFFFFF)) >> 31
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high) if overflow.any() else high


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def requantize(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int,
               rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(acc, mult, shift) rounded as `rounding`; int64 in and out.

    `mult`/`shift` broadcast against `acc` (per-channel arrays go on the last axis).
    """
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if Rounding(rounding) is Rounding.SINGLE:
        total = 31 - shift
        rnd = np.int64(1) << (total - 1)
        return (acc * mult + rnd) >> total
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(srdhm(wrap32(acc << left), mult), right)


def act_range_q(act: Act, scale: float, zero_point: int,
                qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized: the fused activation as an int clamp."""
    lo, hi = ACT_RANGE[Act(act)]

    if not (math.isfinite(scale) and scale > 0):
        raise QuantizeError(f"activation clamp with scale {scale} (must be finite and > 0)")

    def q(f: float) -> int:
        with np.errstate(over="ignore"):
            v = float(np.float32(f) / np.float32(scale))
        return zero_point + (round_half_away_int(v) if math.isfinite(v) else
                             (1 << 40 if v > 0 else -(1 << 40)))     # clamped below

    return (max(qmin, q(lo)) if np.isfinite(lo) else qmin,
            min(qmax, q(hi)) if np.isfinite(hi) else qmax)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """float -> int with TFLite's rounding (half away from zero) and saturation."""
    info = np.iinfo(dtype)
    q = round_half_away(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int
               ) -> np.ndarray:
    return ((np.asarray(q, dtype=np.int64) - zero_point) * np.asarray(scale)).astype(np.float32)


# ---------------------------------------------------------------- float definitions
# The float function a LUT op tabulates lives here, below both its users: the reference
# runtime evaluates it, and qparams builds the int8 table from it.
_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray, a: Any) -> np.ndarray:
    """0.5 x (1 + erf(x / sqrt 2)), or the tanh form when `a.approximate` (ir.GeluAttrs)."""
    xd = x.astype(np.float64)
    if a.approximate:
        return (0.5 * xd * (1 + np.tanh(0.7978845608028654 * (xd + 0.044715 * xd ** 3)))
                ).astype(np.float32)
    return (0.5 * xd * (1 + _erf(xd * 0.7071067811865476))).astype(np.float32)
