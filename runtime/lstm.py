"""UNIDIRECTIONAL_SEQUENCE_LSTM kernels of the reference: float32 and int8 ("8x8_16").

Gates in TFLite's order i, f, c (cell, tanh), o; per step (batches independent, vectorized):
  gate = act(W_x x_t + b + W_h h), c = f * c + i * g (clipped), h = o * tanh(c), y_t = h.
The int8 kernel follows TFLM lstm_eval.cc / LiteRT EvalInteger8x8_16 step by step with the
parameters of edgeforge.qparams_lstm (where they differ, LstmQuant.litert picks the side).
"""
from __future__ import annotations

import numpy as np

from edgeforge.ir import LSTM_B, LSTM_C, LSTM_H, LSTM_R, LSTM_W, LstmAttrs
from edgeforge.qmath import Rounding, requantize, rounding_divide_by_pot
from edgeforge.qparams_lstm import LstmQuant

F32 = np.float32


def _steps(x: np.ndarray, a: LstmAttrs) -> np.ndarray:
    """x as [T, B, F] whatever its layout."""
    return x if a.time_major else np.swapaxes(x, 0, 1)


def _unsteps(y: np.ndarray, a: LstmAttrs) -> np.ndarray:
    return y if a.time_major else np.swapaxes(y, 0, 1)


def _state(v: object, batch: int, dtype: type) -> np.ndarray:
    """A state [B, H] (a batch-1 state broadcast: calibration runs the graph rebatched)."""
    s = np.asarray(v).astype(dtype)
    s = s.reshape(-1, s.shape[-1]) if s.ndim else s.reshape(1, 1)
    return np.array(np.broadcast_to(s, (batch, s.shape[-1])) if s.shape[0] == 1 else s)


def _sigmoid_f32(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (F32(1) / (F32(1) + np.exp(-v))).astype(F32)


def _per_sample(kernel):
    """Calibration and bias correction stack samples on a leading axis of a batch-B graph's
    input ([S, B, T, F]): run each sample's sequence batch on its own."""
    def run(*args):
        x = args[0]
        if x is None or np.ndim(x) <= 3:
            return kernel(*args)
        outs = [kernel(xs, *args[1:]) for xs in x]
        if isinstance(outs[0], tuple):
            return tuple(np.stack(o) for o in zip(*outs))
        return np.stack(outs)
    run.__name__, run.__doc__ = kernel.__name__, kernel.__doc__
    return run


@_per_sample
def lstm(*args: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Float kernel: inputs in TFLite's order (absent ones None), then LstmAttrs. Returns the
    output and every step's cell state (same layout), which calibration observes when the
    node lists a second output (edgeforge.quantize.rules.with_lstm_cells)."""
    *ins, a = args
    x = _steps(np.asarray(ins[0], F32), a)
    h, c = _state(ins[LSTM_H], x.shape[1], F32), _state(ins[LSTM_C], x.shape[1], F32)
    w = [np.asarray(ins[k], F32) for k in LSTM_W]
    r = [np.asarray(ins[k], F32) for k in LSTM_R]
    b = [np.asarray(ins[k], F32) for k in LSTM_B]
    out = np.empty((x.shape[0], x.shape[1], h.shape[1]), F32)
    cells = np.empty_like(out)
    for t in range(x.shape[0]):
        pre = [(x[t] @ w[k].T + b[k] + h @ r[k].T).astype(F32) for k in range(4)]
        i, f, o = _sigmoid_f32(pre[0]), _sigmoid_f32(pre[1]), _sigmoid_f32(pre[3])
        c = (f * c + i * np.tanh(pre[2])).astype(F32)
        if a.cell_clip > 0:
            c = np.clip(c, -F32(a.cell_clip), F32(a.cell_clip))
        h = (o * np.tanh(c)).astype(F32)
        out[t], cells[t] = h, c
    return _unsteps(out, a), _unsteps(cells, a)


# ---------------------------------------------------------------- int16 fixed point
def _sat16(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -32768, 32767)


def sigmoid16(v: np.ndarray, table: np.ndarray) -> np.ndarray:
    """reference_integer_ops::Logistic(0, 0, ...) on Q3.12 int16: Q0.15 out."""
    t = table.astype(np.int64)
    x = v.astype(np.int64) * 3
    ax = np.abs(x)
    uh = np.minimum(ax >> 9, 254)
    interp = (t[uh] << 9) + (ax & 0x1FF) * (t[uh + 1] - t[uh])
    res = np.where((ax >> 9) >= 255, 0x7FFF << 10, interp)
    res = np.where(x >= 0, res + (1 << 9), (1 << 25) - res + (1 << 9) - 1)
    return res >> 10


def tanh16(v: np.ndarray, mult: int, shift: int, table: np.ndarray) -> np.ndarray:
    """reference_integer_ops::Tanh(mult, shift, ...) (mult already 3 << left shift)."""
    t = table.astype(np.int64)
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    x = (v.astype(np.int64) * mult + rnd) >> shift
    ax = np.abs(x)
    uh = np.minimum(ax >> 8, 254)
    interp = (t[uh] << 8) + (ax & 0xFF) * (t[uh + 1] - t[uh])
    res = np.where((ax >> 8) >= 255, 0xFFFF << 8, interp)
    res = np.where(x >= 0, res - (1 << 23) + (1 << 7), -res + (1 << 23) + (1 << 7) - 1)
    return res >> 8


@_per_sample
def lstm_s8(*args: object) -> np.ndarray:
    """int8 kernel: inputs in TFLite's order (int8 x, weights and hidden state, int16 cell,
    int32 biases), LstmAttrs, LstmQuant, numerics (unused: LstmQuant carries the profile)."""
    *ins, a, q, _numerics = args
    assert isinstance(q, LstmQuant)
    x = _steps(np.asarray(ins[0]).astype(np.int64), a)
    h = _state(ins[LSTM_H], x.shape[1], np.int64)
    c = _state(ins[LSTM_C], x.shape[1], np.int64)
    w = [np.asarray(ins[k]).astype(np.int64) for k in LSTM_W]
    r = [np.asarray(ins[k]).astype(np.int64) for k in LSTM_R]
    b = [np.asarray(ins[k]).astype(np.int64) for k in LSTM_B]
    out = np.empty((x.shape[0], x.shape[1], h.shape[1]), np.int8)
    rnd = Rounding.SINGLE if q.single else Rounding.DOUBLE

    def gate(k: int, xt: np.ndarray, h: np.ndarray) -> np.ndarray:
        a_ = _sat16(requantize((xt + q.in_offset) @ w[k].T + b[k], q.in_mult[k], q.in_shift[k],
                               rnd))
        r_ = requantize((h + q.h_offset) @ r[k].T, q.rec_mult[k], q.rec_shift[k], rnd)
        return _sat16(a_ + (r_ if q.litert else _sat16(r_)))

    for t in range(x.shape[0]):
        if q.litert:        # gemmlowp FixedPoint<int16_t, 3> (tensor_utils::ApplySigmoid/Tanh)
            f, i, o = (sigmoid16_gemmlowp(gate(k, x[t], h)) for k in (1, 0, 3))
            g = tanh16_gemmlowp(gate(2, x[t], h), 3)
        else:               # the interpolated table (reference_integer_ops::Logistic/Tanh)
            f, i, o = (sigmoid16(gate(k, x[t], h), q.table) for k in (1, 0, 3))
            g = tanh16(gate(2, x[t], h), 3, 0, q.table)
        if q.litert:
            fc = rounding_divide_by_pot(f * c, 15)
            ig = rounding_divide_by_pot(i * g, 30 + q.cell_power)
        else:
            fc = requantize(f * c, q.fc_mult, q.fc_shift, rnd)
            ig = requantize(i * g, q.ig_mult, q.ig_shift, rnd)
        c = _sat16(_sat16(fc) + _sat16(ig))
        if q.cell_clip > 0:
            c = np.clip(c, -q.cell_clip, q.cell_clip)
        if not q.litert:
            th = tanh16(c, q.tanh_mult, q.tanh_shift, q.table)
        elif q.cell_power >= -15:     # ApplyTanh(15 + cell_power, ...): Q(int bits) in
            th = tanh16_gemmlowp(c, 15 + q.cell_power)
        else:   # no FixedPoint<int16, < 0> case: LiteRT leaves the buffer, the input gate
            th = i
        h = np.clip(requantize(o * th, q.h_mult, q.h_shift, rnd) + q.out_zp, -128, 127)
        out[t] = h
    return _unsteps(out, a)


# ---------------------------------------------------------------- gemmlowp on int16 (LiteRT)
# LiteRT's integer LSTM runs its gate sigmoids / tanhs in gemmlowp FixedPoint<int16_t, 3>
# (tensor_utils::ApplySigmoid / ApplyTanh(3, ...)): the int32 algorithms of
# edgeforge.fixedpoint with int16 raw values, wrapping adds and constants rescaled by
# RoundingDivideByPOT(c, 16).
def _w16(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _rdbp(x: np.ndarray, e: int) -> np.ndarray:
    return rounding_divide_by_pot(np.asarray(x, np.int64), e)


def _c16(v: int) -> int:
    return int(_w16(_rdbp(np.int64(v), 16)))


def _mul16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul<int16_t> (C division truncates)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    r = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, _w16(r))


def _pot16(x: np.ndarray, e: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<e> on int16."""
    if e > 0:
        thr = (1 << (15 - e)) - 1
        return np.where(x > thr, 32767, np.where(x < -thr, -32768, _w16(x << e)))
    return _rdbp(x, -e) if e < 0 else x


def _half_sum16(a: np.ndarray, b: int) -> np.ndarray:
    s = np.asarray(a, np.int64) + b
    t = s + np.where(s >= 0, 1, -1)
    return _w16(np.where(t >= 0, t // 2, -((-t) // 2)))


def _exp_neg16(a: np.ndarray, int_bits: int) -> np.ndarray:
    """exp_on_negative_values: Q(int_bits) int16 <= 0 -> Q0.15."""
    frac = 15 - int_bits
    quarter = 1 << (frac - 2)
    a_mod = _w16((a & (quarter - 1)) - quarter)
    x = _w16(_pot16(a_mod, int_bits) + (1 << 12))            # Rescale<0>, + 1/8
    x2 = _mul16(x, x)
    x3 = _mul16(x2, x)
    x4 = _mul16(x2, x2)
    t = _pot16(_w16(_mul16(_w16(_pot16(x4, -2) + x3), _c16(715827883)) + x2), -1)
    c = _c16(1895147668)
    r = np.clip(c + _mul16(c, _w16(x + t)), -32768, 32767)   # AddSaturatingIf16Bit
    rem = _w16(a_mod - a)
    for e, m in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                 (2, 39332535), (3, 720401), (4, 242)):
        if int_bits > e:
            r = np.where((rem & (1 << (frac + e))) != 0, _mul16(r, _c16(m)), r)
    return np.where(a == 0, 32767, r)


def _newton16(half_den: np.ndarray) -> np.ndarray:
    x = _w16(_c16(1515870810) + _mul16(half_den, _c16(-1010580540)))
    for _ in range(3):
        one_minus = _w16((1 << 13) - _mul16(half_den, x))
        x = _w16(x + _pot16(_mul16(x, one_minus), 2))
    return x


def sigmoid16_gemmlowp(v: np.ndarray) -> np.ndarray:
    """gemmlowp::logistic(FixedPoint<int16_t, 3>) -> Q0.15."""
    a = np.asarray(v, np.int64)
    pos = a > 0
    abs_a = np.where(pos, a, _w16(-a))
    e = _exp_neg16(_w16(-abs_a), 3)
    r_pos = _pot16(_newton16(_half_sum16(e, 32767)), 1)   # ExactMulByPot<-1>, Rescale<0>
    r_neg = _w16(32767 - r_pos)
    return np.where(a == 0, _c16(1 << 30), np.where(pos, r_pos, r_neg))


def tanh16_gemmlowp(v: np.ndarray, int_bits: int = 3) -> np.ndarray:
    """gemmlowp::tanh(FixedPoint<int16_t, int_bits>) -> Q0.15."""
    a = np.asarray(v, np.int64)
    neg = a < 0
    n = np.where(neg, a, _w16(-a))
    e = _exp_neg16(n, int_bits + 1)                 # ExactMulByPot<1>: same raw, Q4
    t = _pot16(_w16(_newton16(_half_sum16(e, 32767)) - (1 << 13)), 2)
    return np.where(a == 0, 0, np.where(neg, _w16(-t), t))
