"""Checks on calibration data, run by compile after quantizing: warnings, never errors.

    check_calibration(float_graph, arrays, sqnr_rows) -> ["...", ...]

  * too few samples (MIN_SAMPLES): ranges from a handful of inputs miss the tails;
  * data scaled unlike the training data: the first layer's input term W*x against its bias.
    A trained layer's bias is learned for the input scale it saw, so rms(W*x) / rms(b) sits
    near 1..20 (measured: digits 6.0, KWS 17, ResNet-8 1.4); raw 0..255 pixels fed to a 0..1
    model push it past 1,000, 0..1 data for a 0..255 model under 0.01 (SCALE_BAND);
  * any layer whose int8 output is under SQNR_MIN_DB against float, except a softmax input
    (its observer keeps only the row maxima, on purpose).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgeforge.ir import Act, Graph, Op

MIN_SAMPLES = 32
SCALE_BAND = (0.1, 50.0)
SQNR_MIN_DB = 10.0
FIRST_LAYER_OPS = (Op.CONV2D, Op.DWCONV2D, Op.FC)


def _first_layer_ratio(g: Graph, name: str, x: np.ndarray) -> tuple[str, float] | None:
    """(node name, rms(W*x) / rms(b)) of the weighted layer reading input `name` directly."""
    from edgeforge.runtime.reference import REFERENCE
    node = next((n for n in g.nodes if n.op in FIRST_LAYER_OPS and n.inputs
                 and n.inputs[0] == name), None)
    if node is None or len(node.inputs) < 3 or not node.inputs[2]:
        return None
    w, b = g.tensors[node.inputs[1]], g.tensors[node.inputs[2]]
    if w.data is None or b.data is None or w.dtype != "float32":
        return None
    bias = np.asarray(b.data, np.float64)
    brms = float(np.sqrt(np.mean(bias ** 2)))
    if brms == 0:
        return None
    attrs = node.attrs
    if hasattr(attrs, "act"):
        attrs = dataclasses.replace(attrs, act=Act.NONE)
    shape = tuple(g.tensors[name].shape)
    xs = np.asarray(x[:8], np.float32)
    if shape and shape[0] == 1:
        xs = xs.reshape((len(xs),) + shape[1:])
    term = REFERENCE[node.op](xs, np.asarray(w.data, np.float32),
                              np.zeros_like(bias, np.float32), attrs)
    return node.name or node.outputs[0], float(np.sqrt(np.mean(np.square(term)))) / brms


def check_calibration(g: Graph, arrays: list[np.ndarray],
                      sqnr: list[dict[str, Any]] | None = None) -> list[str]:
    """Warnings about calibration data for float graph `g` (see the module docstring)."""
    warn = []
    n = len(arrays[0]) if arrays else 0
    if 0 < n < MIN_SAMPLES:
        warn.append(f"calibration has {n} sample{'s' * (n != 1)}: ranges from so few inputs "
                    f"miss the tails of real data (give {MIN_SAMPLES}+ representative inputs, "
                    "100+ is better)")
    for name, x in zip(g.inputs, arrays):
        r = _first_layer_ratio(g, name, x)
        if r is None:
            continue
        layer, ratio = r
        lo, hi = SCALE_BAND
        if not lo <= ratio <= hi:
            side = "larger" if ratio > hi else "smaller"
            warn.append(
                f"calibration input {name!r} spans {float(np.min(x)):.4g}..{float(np.max(x)):.4g}"
                f" and looks {side} than the data the model was trained on: in the first layer "
                f"({layer}) the input term is {ratio:.3g}x the bias (trained layers sit near "
                f"1..20); scale it as in training (e.g. raw 0..255 pixels for a 0..1 model)")
    feeds_softmax = {n.inputs[0] for n in g.nodes if n.op == Op.SOFTMAX}
    for row in sqnr or []:
        db = row.get("sqnr_db")
        if db is not None and db < SQNR_MIN_DB and row.get("tensor") not in feeds_softmax:
            warn.append(f"layer {row['index']} {row['op']} {row['name']!r}: int8 output at "
                        f"{db:.1f} dB SQNR vs float (under {SQNR_MIN_DB:g} dB); check the "
                        "calibration data, or try --observer / --per-tensor")
    return warn


def calibration_warnings(float_graph: Graph, calib: Any,
                         sqnr: list[dict[str, Any]] | None = None) -> list[str]:
    """check_calibration on the prepared float graph (batch norms folded into the layer's
    bias, as the int8 graph has them) and the calibration data as compile reads it."""
    from edgeforge.quantize.calibrate import load_calib
    from edgeforge.quantize.quantize import prepare_float
    g = float_graph if float_graph.meta.get("prepared") else prepare_float(float_graph)
    return check_calibration(g, load_calib(calib, g), sqnr)
