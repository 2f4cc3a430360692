"""Least-squares building blocks shared by bias correction (quantize) and distillation
(compress): a layer's regression rows and normal equations accumulated over batches."""
from __future__ import annotations

import numpy as np

from edgeforge.ir import Node, Op


def layer_features(x: np.ndarray, n: Node, w_shape: tuple[int, ...]) -> np.ndarray:
    """Regression rows for one layer: CONV2D [rows, KH*KW*C_IN]; FC [rows, C_IN];
    DWCONV2D [rows, KH*KW, C] (one regression per channel)."""
    from edgeforge.runtime.reference import windows
    x = x.astype(np.float64)
    if n.op == Op.FC:
        return x.reshape(-1, w_shape[1])
    if n.op == Op.DWCONV2D and w_shape[3] != x.shape[3]:      # depth multiplier > 1
        x = np.repeat(x, w_shape[3] // x.shape[3], axis=3)
    win = windows(x, w_shape[1:3], n.attrs.stride, n.attrs.dilation, n.attrs.pad)
    rows = int(np.prod(win.shape[:3]))
    if n.op == Op.CONV2D:
        return win.reshape(rows, -1)
    return win.reshape(rows, w_shape[1] * w_shape[2], -1)


def depthwise_rows(x: np.ndarray, n: Node, w_shape: tuple[int, ...]) -> np.ndarray:
    """DWCONV2D regression rows channel first, with the bias column of ones:
    [C, rows, KH*KW + 1] float64, what NormalEquations.add(layer_features(...)) builds from
    three copies, written in one (NormalEquations.add_channels takes it)."""
    from edgeforge.runtime.reference import windows
    if w_shape[3] != x.shape[3]:                              # depth multiplier > 1
        x = np.repeat(x, w_shape[3] // x.shape[3], axis=3)
    win = windows(x, w_shape[1:3], n.attrs.stride, n.attrs.dilation, n.attrs.pad)
    b, oh, ow, kh, kw, c = win.shape
    taps = kh * kw
    fc = np.empty((c, b * oh * ow, taps + 1))
    fc[:, :, taps] = 1.0
    view = fc[:, :, :taps].reshape(c, b, oh, ow, kh, kw)       # a view: no axis is merged
    assert np.shares_memory(view, fc)
    np.copyto(view, win.transpose(5, 0, 1, 2, 3, 4))
    return fc


def rows_with_ones(x: np.ndarray, n: Node, w_shape: tuple[int, ...]) -> np.ndarray:
    """CONV2D / FC regression rows with the bias column of ones: [rows, K + 1] float64,
    what NormalEquations.add(layer_features(...)) builds from two copies, written in one
    (NormalEquations.add_rows takes it)."""
    from edgeforge.runtime.reference import windows
    if n.op == Op.FC:
        src = x.reshape(-1, w_shape[1])
        out = np.empty((src.shape[0], w_shape[1] + 1))
        out[:, :-1] = src
    else:
        win = windows(x, w_shape[1:3], n.attrs.stride, n.attrs.dilation, n.attrs.pad)
        rows, k = int(np.prod(win.shape[:3])), int(np.prod(win.shape[3:]))
        out = np.empty((rows, k + 1))
        view = out[:, :k].reshape(win.shape)                    # a view: no axis is merged
        assert np.shares_memory(view, out)
        np.copyto(view, win)
    out[:, -1] = 1.0
    return out


class NormalEquations:
    """Accumulated normal equations [X 1]^T [X 1] and [X 1]^T Y over batches."""

    def __init__(self) -> None:
        self.g: np.ndarray | None = None
        self.c: np.ndarray | None = None

    def add(self, f: np.ndarray, y: np.ndarray, depthwise: bool) -> None:
        ones = np.ones(f.shape[:1] + (1,) + f.shape[2:], f.dtype)
        fx = np.concatenate([f, ones], axis=1)
        if depthwise:
            self.add_channels(np.ascontiguousarray(fx.transpose(2, 0, 1)), y)
            return
        self.add_rows(fx, y)

    def add_rows(self, fx: np.ndarray, y: np.ndarray) -> None:
        """Rows [R, K+1] with the ones column (rows_with_ones)."""
        self._sum(fx.T @ fx, fx.T @ y)

    def add_channels(self, fc: np.ndarray, y: np.ndarray) -> None:
        """Depthwise rows [C, R, T+1] (depthwise_rows): per channel [C, T+1, T+1] and
        [C, T+1], one BLAS GEMM each."""
        ft = fc.transpose(0, 2, 1)
        self._sum(ft @ fc, (ft @ np.ascontiguousarray(y.T)[:, :, None])[:, :, 0])

    def _sum(self, g: np.ndarray, c: np.ndarray) -> None:
        self.g = g if self.g is None else self.g + g
        self.c = c if self.c is None else self.c + c
