"""gemmlowp fixed-point arithmetic, emulated bit for bit in numpy (int32 values in int64).

TFLite's int8 LOGISTIC, TANH and SOFTMAX kernels (and TFLM's) compute in gemmlowp's
FixedPoint<int32, IntegerBits> types; the reference runtime and the LUT builders in
edgeforge.qparams call these so their bytes match the runtimes'. The int16 helpers at the end
are the ones TFLite's HARD_SWISH uses. Quantization parameters live in qparams; the shared
rounding and saturation primitives (srdhm, rounding_divide_by_pot, wrap32) in qmath.
"""
from __future__ import annotations

import numpy as np

from edgeforge.qmath import INT32_MAX, INT32_MIN, rounding_divide_by_pot, srdhm, wrap32


# int32 values held in int64 numpy arrays; the functions mirror gemmlowp/fixedpoint.h.
def _mul_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<exponent>."""
    x = np.asarray(x, dtype=np.int64)
    if exponent > 0:
        thr = (1 << (31 - exponent)) - 1
        return np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, x << exponent))
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return x


def _rescale_fx(x: np.ndarray, src_bits: int, dst_bits: int) -> np.ndarray:
    return _mul_pot(x, src_bits - dst_bits)


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31 in and out)."""
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = _mul_pot(x4, -2)
    t = _mul_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), 715827883) + x2), -1)
    const = 1895147668
    return wrap32(const + srdhm(const, wrap32(x + t)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def fx_exp_on_negative_values(a: np.ndarray, int_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: Q(int_bits) <= 0 -> Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    frac = 31 - int_bits
    quarter = 1 << (frac - 2)
    a_mod = wrap32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(_rescale_fx(a_mod, int_bits, 0))
    remainder = wrap32(a_mod - a)
    for exponent, m in _EXP_BARREL:
        if int_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, m), result)
    if int_bits > 5:
        clamp = -(1 << (36 - int_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    s = np.asarray(a, dtype=np.int64) + b
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    return np.where(t >= 0, t // 2, -((-t) // 2))   # C division truncates


def _newton_reciprocal(half_den: np.ndarray) -> np.ndarray:
    """The Newton-Raphson loop shared by one_over_one_plus_x and one_minus_x_over_..."""
    one_f2 = 1 << 29
    x = wrap32(1515870810 + srdhm(half_den, -1010580540))
    for _ in range(3):
        hdx = srdhm(half_den, x)
        one_minus = wrap32(one_f2 - hdx)
        x = wrap32(x + _rescale_fx(srdhm(x, one_minus), 2 + 2, 2))
    return x


def fx_one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 -> Q0.31."""
    x = _newton_reciprocal(_rounding_half_sum(a, INT32_MAX))
    return _rescale_fx(_mul_pot(x, -1), 2, 0)


def fx_logistic(a: np.ndarray, int_bits: int) -> np.ndarray:
    """gemmlowp logistic: Q(int_bits) -> Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    pos = a > 0
    abs_a = np.where(pos, a, wrap32(-a))
    r_pos = fx_one_over_one_plus_x(fx_exp_on_negative_values(wrap32(-abs_a), int_bits))
    r_neg = wrap32(INT32_MAX - r_pos)
    return np.where(a == 0, 1 << 30, np.where(pos, r_pos, r_neg))


def fx_tanh(a: np.ndarray, int_bits: int) -> np.ndarray:
    """gemmlowp tanh: Q(int_bits) -> Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    neg = a < 0
    n = np.where(neg, a, wrap32(-a))
    e = fx_exp_on_negative_values(_mul_pot(n, 1), int_bits)
    x = _newton_reciprocal(_rounding_half_sum(e, INT32_MAX))
    t = _rescale_fx(wrap32(x - (1 << 29)), 2, 0)
    return np.where(a == 0, 0, np.where(neg, wrap32(-t), t))


def fx_reciprocal(x: np.ndarray, x_int_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: (Q0.31 1/x scaled, num_bits_over_unit) for positive x."""
    x = np.asarray(x, dtype=np.int64)
    clz = np.array([32 - int(v).bit_length() for v in np.ravel(x)],
                   dtype=np.int64).reshape(x.shape)
    bits_over = x_int_bits - clz
    shifted = wrap32(((x << clz) & 0xFFFFFFFF) - (1 << 31))
    return fx_one_over_one_plus_x(shifted), bits_over


# ---------------------------------------------------------------- int16 helpers (hard swish)
def wrap16(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul for int16."""
    a = np.asarray(a, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    s = ab + nudge
    r = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, wrap16(r))


def sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite SaturatingDoublingHighMul (no rounding; C division truncates)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    r = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, wrap16(r))


def sat_lshift16(a: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.asarray(a, dtype=np.int64) << n, -32768, 32767)


def downscale_int16(m: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier."""
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16
