"""UNIDIRECTIONAL_SEQUENCE_LSTM kernels of the reference: float32 and int8 ("8x8_16").

Gates in TFLite's order i, f, c (cell, tanh), o; per step (batches independent, vectorized):
  gate = act(W_x x_t + b + W_h h), c = f * c + i * g (clipped), h = o * tanh(c), y_t = h.
The int8 kernel follows TFLM lstm_eval.cc / LiteRT EvalInteger8x8_16 step by step with the
parameters of edgeforge.qparams_lstm (where they differ, LstmQuant.litert picks the side).
"""
from __future__ import annotations

import numpy as np

from edgeforge.ir import LSTM_B, LSTM_C, LSTM_H, LSTM_R, LSTM_W, LstmAttrs
from edgeforge.qmath import requantize, rounding_divide_by_pot
from edgeforge.qparams_lstm import LstmQuant

F32 = np.float32


def _steps(x: np.ndarray, a: LstmAttrs) -> np.ndarray:
    """x as [T, B, F] whatever its layout."""
    return x if a.time_major else np.swapaxes(x, 0, 1)


def _unsteps(y: np.ndarray, a: LstmAttrs) -> np.ndarray:
    return y if a.time_major else np.swapaxes(y, 0, 1)


def _sigmoid_f32(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (F32(1) / (F32(1) + np.exp(-v))).astype(F32)


def lstm(*args: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Float kernel: inputs in TFLite's order (absent ones None), then LstmAttrs. Returns the
    output and every step's cell state (same layout), which calibration observes when the
    node lists a second output (edgeforge.quantize.rules.with_lstm_cells)."""
    *ins, a = args
    x = _steps(np.asarray(ins[0], F32), a)
    h = np.array(ins[LSTM_H], F32).reshape(x.shape[1], -1)
    c = np.array(ins[LSTM_C], F32).reshape(x.shape[1], -1)
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


def lstm_s8(*args: object) -> np.ndarray:
    """int8 kernel: inputs in TFLite's order (int8 x, weights and hidden state, int16 cell,
    int32 biases), LstmAttrs, LstmQuant, numerics (unused: LstmQuant carries the profile)."""
    *ins, a, q, _numerics = args
    assert isinstance(q, LstmQuant)
    x = _steps(np.asarray(ins[0]).astype(np.int64), a)
    h = np.asarray(ins[LSTM_H]).astype(np.int64).reshape(x.shape[1], -1)
    c = np.asarray(ins[LSTM_C]).astype(np.int64).reshape(x.shape[1], -1)
    w = [np.asarray(ins[k]).astype(np.int64) for k in LSTM_W]
    r = [np.asarray(ins[k]).astype(np.int64) for k in LSTM_R]
    b = [np.asarray(ins[k]).astype(np.int64) for k in LSTM_B]
    out = np.empty((x.shape[0], x.shape[1], h.shape[1]), np.int8)

    def gate(k: int, xt: np.ndarray, h: np.ndarray) -> np.ndarray:
        a_ = _sat16(requantize((xt + q.in_offset) @ w[k].T + b[k], q.in_mult[k], q.in_shift[k]))
        r_ = requantize((h + q.h_offset) @ r[k].T, q.rec_mult[k], q.rec_shift[k])
        return _sat16(a_ + (r_ if q.litert else _sat16(r_)))

    for t in range(x.shape[0]):
        f = sigmoid16(gate(1, x[t], h), q.table)
        i = sigmoid16(gate(0, x[t], h), q.table)
        g = tanh16(gate(2, x[t], h), 3, 0, q.table)
        o = sigmoid16(gate(3, x[t], h), q.table)
        if q.litert:
            fc = rounding_divide_by_pot(f * c, 15)
            ig = rounding_divide_by_pot(i * g, 30 + q.cell_power)
        else:
            fc = requantize(f * c, q.fc_mult, q.fc_shift)
            ig = requantize(i * g, q.ig_mult, q.ig_shift)
        c = _sat16(_sat16(fc) + _sat16(ig))
        if q.cell_clip > 0:
            c = np.clip(c, -q.cell_clip, q.cell_clip)
        th = tanh16(c, q.tanh_mult, q.tanh_shift, q.table)
        h = np.clip(requantize(o * th, q.h_mult, q.h_shift) + q.out_zp, -128, 127)
        out[t] = h
    return _unsteps(out, a)
