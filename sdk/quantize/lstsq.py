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


class NormalEquations:
    """Accumulated normal equations [X 1]^T [X 1] and [X 1]^T Y over batches."""

    def __init__(self) -> None:
        self.g: np.ndarray | None = None
        self.c: np.ndarray | None = None

    def add(self, f: np.ndarray, y: np.ndarray, depthwise: bool) -> None:
        ones = np.ones(f.shape[:1] + (1,) + f.shape[2:], f.dtype)
        fx = np.concatenate([f, ones], axis=1)
        if depthwise:      # per channel: [C, T+1, T+1] and [C, T+1], one BLAS GEMM each
            fc = np.ascontiguousarray(fx.transpose(2, 0, 1))             # [C, R, T+1]
            ft = fc.transpose(0, 2, 1)
            g = ft @ fc
            c = (ft @ np.ascontiguousarray(y.T)[:, :, None])[:, :, 0]
        else:
            g, c = fx.T @ fx, fx.T @ y
        self.g = g if self.g is None else self.g + g
        self.c = c if self.c is None else self.c + c
