"""Float IR -> int8 IR (the form read_tflite returns for a converter's full-int8 model).

    qg = quantize_model(float_graph, "calib.npz")

Steps, top to bottom: graph passes (BN folding, activation fusion, if edgeforge.passes has them),
a check that every op has an int8 rule, cross-layer equalization, calibration, one rule per
node (rules.RULES), then layer by layer on the int8 graph a least-squares weight refit and
an empirical bias correction (bias_correction.py), verify.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from edgeforge.errors import QuantizeError
from edgeforge.ir import OPS, Graph, Op, Tensor, verify
from edgeforge.qmath import Numerics
from edgeforge.quantize.calibrate import DEFAULT_OBSERVER, CalibData, calibrate, load_calib
from edgeforge.quantize.rules import RULES, QCtx, Range, act_quant, unify_ranges


def prepare_float(graph: Graph) -> Graph:
    """Run the graph passes (edgeforge.passes: BN folding, activation fusion, ...), then refuse
    what has no int8 form, naming every offending node."""
    if graph.is_int8():
        raise QuantizeError(f"{graph.meta.get('source', graph.name)}: graph is already int8")
    g = graph.copy()
    for t in g.tensors.values():        # passes rewrite in place: never touch the caller's data
        if t.data is not None:
            t.data = t.data.copy()
            if t.dtype == "float32":    # a hybrid int8 weight (sdk/ir.py) quantizes as float
                t.quant = None
    from edgeforge.passes import run_passes
    run_passes(g)                   # in place; logs to g.meta["passes"]
    from edgeforge.quantize.rules import with_lstm_cells
    with_lstm_cells(g)              # calibration observes the LSTM cell states
    problems = []
    for i, n in enumerate(g.nodes):
        if not OPS[n.op].int8:
            problems.append(f"node {i} '{n.name or n.outputs[0]}' ({n.op}): float-only op; "
                            f"the graph passes must remove it before quantization")
        elif n.op not in RULES:
            problems.append(f"node {i} '{n.name or n.outputs[0]}' ({n.op}): no int8 "
                            f"quantization rule")
    if problems:
        raise QuantizeError(f"{graph.meta.get('source', graph.name)}: cannot quantize:\n  "
                            + "\n  ".join(problems)
                            + f"\n  quantizable ops: {', '.join(sorted(RULES))}")
    g.meta["prepared"] = True
    return g


def build_int8(fg: Graph, ranges: dict[str, Range], per_channel: bool = True) -> Graph:
    """Apply RULES node by node: the int8 graph with the float graph's tensor names."""
    ranges = unify_ranges(fg, ranges)
    meta = {k: v for k, v in fg.meta.items() if k not in ("prepared", "equalized")}
    qg = Graph(name=fg.name, inputs=list(fg.inputs), outputs=list(fg.outputs), meta=meta)
    ctx = QCtx(fg, qg, ranges, per_channel)
    for name in fg.inputs:
        t = fg.tensors[name]
        if name not in ranges:
            raise QuantizeError(f"graph input {name!r}: no calibrated range")
        qg.add_tensor(Tensor(name, tuple(t.shape), "int8", act_quant(*ranges[name])))
    for n in fg.nodes:
        for o in n.outputs[1:]:
            if n.op != Op.LSTM:     # an LSTM's second output: its cell states (observed)
                raise QuantizeError(f"node '{n.name or o}' ({n.op}): multi-output op")
        qg.nodes.extend(RULES[n.op](ctx, n))
    verify(qg)
    return qg


def quantize_model(graph: Graph, calib: CalibData, *, observer: str | None = None,
                   per_channel: bool = True, bias_correction: bool = True,
                   equalize: bool = True, numerics: str = "tflm", batch_size: int = 32,
                   refit: float | None = 1.0, verbose: int = 1, sqnr_samples: int = 0
                   ) -> Graph:
    """Quantize a float graph to the int8 IR contract (int8 inputs/outputs).

    `calib`: .npz/.npy path, ndarray, dict or list (see calibrate.load_calib).
    `refit`: with bias correction, first refit each layer's weights by least squares on its
    int8 input (ridge strength toward the float weights; None: bias shift only), kept per
    layer only if it beats plain quantization on a held-out half. Measured output SQNR:
    ResNet-8 16.2 -> 17.7 dB, digits 44.3 -> 44.8 dB, KWS 24.2 -> 23.6 dB (its calibration
    set is variants of ONE utterance, too narrow for a refit).
    The result's `meta["quantize"]` records the options and, per tensor, the float range.
    `sqnr_samples`: also leave in `meta["sqnr"]` what sqnr_report(graph, result, calib,
    max_samples=sqnr_samples) returns, when bias correction could measure it on the way.
    """
    with one_blas_thread():
        return _quantize_model(graph, calib, observer, per_channel, bias_correction, equalize,
                               Numerics(numerics), batch_size, refit, verbose, sqnr_samples)


def one_blas_thread() -> Any:
    """Calibration's matrices are tall and skinny (rows = samples x positions, columns = a
    few taps or channels): OpenBLAS's threads only add synchronization there, 15x slower on
    2 busy cores (147456x27 @ 27x16: 0.69 s threaded, 0.047 s on one thread)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1, user_api="blas")


def _quantize_model(graph: Graph, calib: CalibData, observer: str | None, per_channel: bool,
                    bias_correction: bool, equalize: bool, numerics: Numerics,
                    batch_size: int, refit: float | None, verbose: int,
                    sqnr_samples: int) -> Graph:
    fg = prepare_float(graph)
    data = load_calib(calib, fg)
    if equalize:
        from edgeforge.quantize.equalize import equalize_graph
        fg = equalize_graph(fg)
    record = None
    if bias_correction:         # one float pass: calibration keeps what the later steps read
        from edgeforge.quantize.bias_correction import plan_record
        record = plan_record(fg, data[0].shape[0], batch_size, sqnr_samples, bool(refit))
    ranges = calibrate(fg, data, observer=observer, batch_size=batch_size, verbose=verbose,
                       record=record)
    qg = build_int8(fg, ranges, per_channel)
    corrected: list[str] = []
    if bias_correction:
        from edgeforge.quantize.bias_correction import correct_bias
        qg, corrected = correct_bias(fg, qg, data, numerics=numerics, batch_size=batch_size,
                                     verbose=verbose, refit=refit, record=record)
    if (record is not None and record.sqnr_acc and record.head_samples > 0
            and record.head_samples <= record.samples):   # every SQNR sample was corrected
        qg.meta["sqnr"] = sqnr_rows(qg, record.sqnr_acc)
    qg.meta["quantize"] = {
        "observer": observer or DEFAULT_OBSERVER,
        "per_channel": per_channel,
        "equalize": equalize,
        "bias_correction": bias_correction,
        "refit": refit if bias_correction else None,
        "bias_corrected": corrected,
        "numerics": numerics.value,
        "samples": int(data[0].shape[0]),
        "ranges": {k: [float(v[0]), float(v[1])] for k, v in ranges.items()},
    }
    return qg


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10 log10(signal power / error power); +inf when identical."""
    ref = np.asarray(ref, np.float64)
    err = float(np.sum((ref - np.asarray(test, np.float64)) ** 2))
    sig = float(np.sum(ref ** 2))
    if err == 0.0:
        return float("inf")
    if sig == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(sig / err))


def sqnr_report(float_graph: Graph, int8_graph: Graph, data: CalibData, *,
                numerics: str = "tflm", batch_size: int = 32, max_samples: int = 256,
                verbose: int = 0) -> list[dict[str, Any]]:
    """Per op of the int8 graph: SQNR (dB) of its dequantized int8 output vs the float
    graph's tensor of the same name, over `data` (at most `max_samples` samples).

    Rows: index, name, op, tensor, sqnr_db, scale, zero_point. Ops whose output has no float
    counterpart (inserted requantize) get sqnr_db None.
    """
    with one_blas_thread():
        return _sqnr_report(float_graph, int8_graph, data, numerics, batch_size, max_samples,
                            verbose)


def _sqnr_report(float_graph: Graph, int8_graph: Graph, data: CalibData, numerics: str,
                 batch_size: int, max_samples: int, verbose: int) -> list[dict[str, Any]]:
    from edgeforge.quantize.bias_correction import run_int8_float_pairs
    fg = float_graph if float_graph.meta.get("prepared") else prepare_float(float_graph)
    if int8_graph.meta.get("quantize", {}).get("equalize") and not fg.meta.get("equalized"):
        from edgeforge.quantize.equalize import equalize_graph
        fg = equalize_graph(fg)     # the float graph the int8 one was made from
    arrays = [a[:max_samples] for a in load_calib(data, fg)]
    names = [n.outputs[0] for n in int8_graph.nodes]
    wanted = [t for t in names if t in fg.tensors]
    acc = {t: [0.0, 0.0] for t in wanted}           # [signal power, error power]
    for f, q in run_int8_float_pairs(fg, int8_graph, arrays, wanted, numerics=numerics,
                                     batch_size=batch_size, verbose=verbose):
        for t in wanted:
            acc[t][0] += float(np.sum(f[t].astype(np.float64) ** 2))
            acc[t][1] += float(np.sum((f[t].astype(np.float64) - q[t]) ** 2))
    return sqnr_rows(int8_graph, acc)


def sqnr_rows(int8_graph: Graph, acc: dict[str, list[float]]) -> list[dict[str, Any]]:
    """sqnr_report's rows from per-tensor [signal power, error power] sums."""
    rows = []
    for i, n in enumerate(int8_graph.nodes):
        t = n.outputs[0]
        qp = int8_graph.tensors[t].quant
        sig, err = acc.get(t, (None, None))
        db = None
        if sig is not None:
            db = float("inf") if err == 0 else (float("-inf") if sig == 0
                                                else float(10 * np.log10(sig / err)))
        rows.append({"index": i, "name": n.name or t, "op": n.op.value, "tensor": t,
                     "sqnr_db": db, "scale": float(qp.scale[0]) if qp else None,
                     "zero_point": int(qp.zero_point[0]) if qp else None})
    return rows
