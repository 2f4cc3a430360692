"""Empirical bias correction: remove the mean output error int8 adds to each weighted layer.

For every CONV2D / DWCONV2D / FC, over the calibration data:

    e[c] = mean over samples and positions of  y_q[c] - y_f[c]
    y_f = layer(x_f; W, b)                        float layer on the float graph's input
    y_q = layer(deq(x_q); deq(W_q), deq(b_q))     the int8 layer on the int8 graph's input

both before the fused activation (where the bias acts linearly), and the int32 bias becomes
b_q - round(e / (in_scale * w_scale)). y_q uses the int8 graph's actual input, so the shift
also absorbs the mean error that upstream layers pass down.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from edgeforge.ir import HOST_MAX_BYTES, OPS, WEIGHTED, Act, Graph, Node, Op
from edgeforge.qmath import dequantize, quantize
from edgeforge.quantize.calibrate import (
    FloatRecord,
    _progress,
    activation_names,
    batch_runner,
    iterate_float,
    rebatch,
    report_progress,
    with_pre_activations,
)

INT32_MAX = (1 << 31) - 1
MAX_SAMPLES = 256           # bias correction's samples (at most)
RECORD_MAX_BYTES = HOST_MAX_BYTES // 2      # plan_record keeps more than layer inputs below


def chunking(n_samples: int, batch_size: int, max_samples: int = MAX_SAMPLES
             ) -> tuple[int, int]:
    """(samples, chunk) bias correction uses: equal chunks of at most `batch_size`."""
    n = min(max_samples, n_samples)
    b = max(1, min(batch_size, n))
    return (n // b) * b, b


def plan_record(fg: Graph, n_samples: int, batch_size: int, sqnr_samples: int = 0,
                refit: bool = True) -> FloatRecord:
    """What calibration keeps for bias correction (every weighted layer's float input, and
    with `refit` its pre-activation output, over its samples) and the SQNR report (every
    activation over the first `sqnr_samples`). Past RECORD_MAX_BYTES only the layer
    inputs are kept (what bias correction's own float pass held): the refit then
    runs its float layers and compile its SQNR report."""
    fnodes = [nd for nd in fg.nodes if nd.op in WEIGHTED]
    inputs = {nd.inputs[0] for nd in fnodes}
    g, pre = with_pre_activations(fg, {nd.outputs[0] for nd in fnodes} if refit else set())
    eff = max(1, min(batch_size, HOST_MAX_BYTES // max(g.activation_bytes(), 1)))
    n, b = chunking(n_samples, eff)                    # iterate_float's batch, above
    y_f = {o: pre.get(o, o) for o in (nd.outputs[0] for nd in fnodes)} if refit else {}
    full = inputs | set(y_f.values())
    head = set(activation_names(fg)) if sqnr_samples else set()
    head_n = min(sqnr_samples, n_samples)
    nbytes = sum(g.tensors[t].nbytes for t in full) * n
    nbytes += sum(g.tensors[t].nbytes for t in head - full) * -(-head_n // b) * b
    if nbytes > RECORD_MAX_BYTES:
        eff = max(1, min(batch_size, HOST_MAX_BYTES // max(fg.activation_bytes(), 1)))
        n, b = chunking(n_samples, eff)
        return FloatRecord(fg, {}, inputs, set(), n, b, 0)
    return FloatRecord(g, y_f, full, head, n, b, head_n)


def quantize_inputs(qg: Graph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """float feeds -> int8 feeds with the int8 graph's input quantization (int16 for a
    16x8 graph's int16 input)."""
    out = []
    for name, x in zip(qg.inputs, arrays):
        t = qg.tensors[name]
        q = t.quant
        out.append(quantize(x, float(q.scale[0]), int(q.zero_point[0]),
                            "int16" if t.dtype == "int16" else "int8"))
    return out


def deq(qg: Graph, name: str, v: np.ndarray) -> np.ndarray:
    """Dequantize an int8/int32 tensor value of `qg` (per-channel on its quant axis)."""
    q = qg.tensors[name].quant
    if q is None or v.dtype.kind == "f":
        return np.asarray(v, np.float32)
    if q.per_channel:
        shape = [1] * v.ndim
        shape[q.axis] = q.scale.size
        return dequantize(v, q.scale.reshape(shape), q.zero_point.reshape(shape))
    return dequantize(v, float(q.scale[0]), int(q.zero_point[0]))


def run_int8_float_pairs(fg: Graph, qg: Graph, arrays: list[np.ndarray], wanted: list[str],
                         numerics: str = "tflm", batch_size: int = 32, verbose: int = 0,
                         raw: bool = False) -> Iterable[tuple[dict, dict]]:
    """Per batch: (float tensors, int8 tensors dequantized -- or raw int8 when `raw`) for
    the names in `wanted`, the float graph fed `arrays`, the int8 graph their quantization."""
    frun, qrun = batch_runner(fg), batch_runner(qg, numerics)
    n = arrays[0].shape[0]
    with _progress(n, verbose, "comparing int8 to float") as advance:
        for s in range(0, n, batch_size):
            feeds = [a[s:s + batch_size] for a in arrays]
            f = frun(feeds)
            q = qrun(quantize_inputs(qg, feeds))
            yield ({t: f[t] for t in wanted},
                   {t: (q[t] if raw else deq(qg, t, q[t])) for t in wanted})
            advance(feeds[0].shape[0])


def _no_act(node: Node) -> Node:
    return node.with_(attrs=replace(node.attrs, act=Act.NONE))


def correct_bias(fg: Graph, qg: Graph, arrays: list[np.ndarray], *, numerics: str = "tflm",
                 batch_size: int = 32, max_samples: int = MAX_SAMPLES, verbose: int = 0,
                 refit: float | None = None, record: FloatRecord | None = None
                 ) -> tuple[Graph, list[str]]:
    """A copy of `qg` with every weighted layer's int32 bias corrected; also returns the
    names of the corrected layers.

    Sequential in one pass: the int8 graph runs node by node over all samples (in chunks of
    `batch_size`), and each layer's bias is corrected before the layer runs, so its error
    is measured on inputs from already-corrected layers (correcting all layers from one
    uncorrected run would correct upstream errors twice).

    `record` (plan_record, filled by calibrate): the float tensors come from calibration's
    pass instead of a float run here, and since every node here produces its final int8
    output, the SQNR report's sums accumulate into record.sqnr_acc on the way."""
    from edgeforge import qparams
    from edgeforge.runtime import reference
    if record is not None:
        n, b = record.samples, record.chunk
    else:
        n, b = chunking(arrays[0].shape[0], batch_size, max_samples)  # one rebatched graph
    arrays = [a[:n] for a in arrays]
    qg = qg.copy()
    gb = rebatch(qg, b)
    if gb is None:
        if record is not None:         # calibration's chunks do not fit a batch-1 run
            return correct_bias(fg, qg, arrays, numerics=numerics, batch_size=batch_size,
                                max_samples=max_samples, verbose=verbose, refit=refit)
        gb, b = qg.copy(), 1
    fnodes = {nd.outputs[0]: nd for nd in fg.nodes}
    layers = {nd.outputs[0] for nd in gb.nodes if nd.op in WEIGHTED and nd.outputs[0] in fnodes
              and len(nd.inputs) > 2 and nd.inputs[2]}
    if record is not None:
        f_in = {fnodes[o].inputs[0]: record.chunks[fnodes[o].inputs[0]] for o in layers}
    else:
        f_in = {fnodes[o].inputs[0]: [] for o in layers}
        for f in iterate_float(fg, arrays, b, verbose, "bias correction (float)"):
            for t, chunks_f in f_in.items():
                chunks_f.append(f[t])
    chunks = range(0, n, b)
    # a graph that could not be rebatched runs one sample at a time in its own shape (a
    # leading sample axis would shift every axis-wise op: a time-major LSTM's GATHER)
    env = {name: [x[s:s + b] if b > 1 or gb.tensors[name].shape[:1] == (1,)
                  else x[s].reshape(gb.tensors[name].shape) for s in chunks]
           for name, x in zip(gb.inputs, quantize_inputs(gb, arrays))}
    last_use = {i: k for k, nd in enumerate(gb.nodes) for i in nd.inputs if i}
    done = []
    for k, nd in enumerate(gb.nodes):
        report_progress("bias correction", k, len(gb.nodes),
                        f"{nd.op.value} {nd.name or nd.outputs[0]}")
        if nd.outputs[0] in layers:
            if refit:
                y_f: dict[int, np.ndarray] = {}     # the float layer's output per chunk,
                if record is not None and nd.outputs[0] in record.pre_act:
                    y_f = dict(enumerate(record.chunks[record.pre_act[nd.outputs[0]]]))
                _refit_layer(fg, fnodes[nd.outputs[0]], gb, nd, env[nd.inputs[0]],
                             f_in[nd.inputs[0]], refit, y_f)
            _correct_layer(fg, fnodes[nd.outputs[0]], gb, nd, env[nd.inputs[0]],
                           f_in[nd.inputs[0]])
            for t in nd.inputs[1:3]:
                qg.tensors[t] = replace(gb.tensors[t])
            done.append(nd.name or nd.outputs[0])
        q = qparams.PREPARE[nd.op](nd, gb, reference.Numerics(numerics))
        outs = []
        for c in range(len(chunks)):
            args = [None if not i else env[i][c] if i in env else gb.tensors[i].data
                    for i in nd.inputs]
            out = reference.REFERENCE_S8[nd.op](*args, nd.attrs, q,
                                                qparams.rounding(nd.op, numerics))
            outs.append(out[0] if isinstance(out, tuple) else out)
        env[nd.outputs[0]] = outs
        # the sums stand in for the SQNR report only when these samples cover its samples
        # (quantize_model checks the same); else they would index past this run's chunks
        if (record is not None and 0 < record.head_samples <= record.samples
                and nd.outputs[0] in record.chunks):
            _sqnr_sums(record, gb, nd.outputs[0], outs)
        for i in nd.inputs:
            if i in env and last_use.get(i) == k and i not in gb.outputs:
                del env[i]
    report_progress("bias correction", len(gb.nodes), len(gb.nodes))
    return qg, done


def _sqnr_sums(record: FloatRecord, gb: Graph, t: str, outs: list[np.ndarray]) -> None:
    """Add tensor t's signal and error power over the SQNR samples (quantize.sqnr_report's
    sums, batch by batch in the same order) to record.sqnr_acc."""
    acc = record.sqnr_acc.setdefault(t, [0.0, 0.0])
    for c, f in enumerate(record.chunks[t]):
        take = min(record.chunk, record.head_samples - c * record.chunk)
        if take <= 0:
            break
        f64 = f[:take].astype(np.float64)
        acc[0] += float(np.sum(f64 ** 2))
        acc[1] += float(np.sum((f64 - deq(gb, t, outs[c][:take])) ** 2))


def _correct_layer(fg: Graph, fn: Node, gb: Graph, nd: Node, xq: list[np.ndarray],
                   xf: list[np.ndarray]) -> None:
    """Shift nd's int32 bias (in gb, in place) by the mean pre-activation error. The layers
    are linear, so the mean output over all rows is the layer applied to the mean input
    window (row_sums): no float layer runs here."""
    w_f = fg.tensors[fn.inputs[1]].data
    b_f = fg.tensors[fn.inputs[2]].data if len(fn.inputs) > 2 and fn.inputs[2] else None
    w_q = deq(gb, nd.inputs[1], gb.tensors[nd.inputs[1]].data)
    bt = gb.tensors[nd.inputs[2]]
    b_q = deq(gb, nd.inputs[2], bt.data)
    total, rows = 0.0, 0
    for q8, f in zip(xq, xf):
        s_q, r = row_sums(nd, deq(gb, nd.inputs[0], q8), w_q, b_q)
        s_f, _ = row_sums(fn, f, w_f, b_f)
        total = total + (s_q - s_f)
        rows += r
    shift = total / max(rows, 1)
    delta = np.round(shift / bt.quant.scale.astype(np.float64)).astype(np.int64)
    bt.data = np.clip(bt.data.astype(np.int64) - delta, -INT32_MAX, INT32_MAX).astype(np.int32)


def row_sums(n: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
             ) -> tuple[np.ndarray, int]:
    """(sum over output rows of layer n's pre-activation output [C_out], rows) in float64,
    from the summed input windows: O(rows x taps) instead of a layer's rows x taps x C_out."""
    from edgeforge.runtime.reference import windows
    x = np.asarray(x, np.float64)
    if n.op == Op.FC:
        flat = x.reshape(-1, w.shape[1])
        total, rows = flat.sum(axis=0) @ w.T.astype(np.float64), flat.shape[0]
    else:
        if n.op == Op.DWCONV2D and w.shape[3] != x.shape[3]:       # depth multiplier > 1
            x = np.repeat(x, w.shape[3] // x.shape[3], axis=3)
        win = windows(x, w.shape[1:3], n.attrs.stride, n.attrs.dilation, n.attrs.pad)
        rows = int(np.prod(win.shape[:3]))
        tap_sums = win.sum(axis=(0, 1, 2))                           # [KH, KW, C]
        if n.op == Op.CONV2D:
            total = tap_sums.reshape(-1) @ w.reshape(w.shape[0], -1).T.astype(np.float64)
        else:
            total = np.sum(tap_sums * w[0].astype(np.float64), axis=(0, 1))
    if b is not None:
        total = total + rows * np.asarray(b, np.float64)
    return total, rows


def _refit_layer(fg: Graph, fn: Node, gb: Graph, nd: Node, xq: list[np.ndarray],
                 xf: list[np.ndarray], ridge: float, y_f: dict[int, np.ndarray]) -> None:
    """Least-squares weights for the int8 layer: W, b minimizing |deq(x_q) W + b - y_f|^2
    + ridge' |W - W_float|^2 (y_f: the float layer's pre-activation output on the float
    input), then quantized again (new per-channel scales). The int8 layer then compensates
    the error its quantized input carries, not only its mean."""
    from edgeforge.quantize.lstsq import NormalEquations, depthwise_rows, rows_with_ones
    from edgeforge.runtime.reference import REFERENCE
    w0 = fg.tensors[fn.inputs[1]].data.astype(np.float64)
    b_f = fg.tensors[fn.inputs[2]].data if len(fn.inputs) > 2 and fn.inputs[2] else None
    b0 = np.zeros(w0.shape[OPS[nd.op].out_axis]) if b_f is None else b_f
    dw = nd.op == Op.DWCONV2D
    out_rows = int(np.prod(gb.tensors[nd.outputs[0]].shape[:-1]))   # regression rows / chunk
    if (not dw and out_rows * (len(xq) // 2) < w0[0].size + 1 and len(xq) > 1
            and np.all(w0 != 0)):
        _refit_dual(gb, nd, fn, xq, xf, w0, b_f, b0, ridge, y_f)
        return
    halves = [NormalEquations(), NormalEquations()]    # one per half of the chunks
    for k, (q8, f) in enumerate(zip(xq, xf)):
        if k not in y_f:
            y_f[k] = REFERENCE[fn.op](f, w0, b_f, _no_act(fn).attrs)
        y = y_f[k].astype(np.float64).reshape(-1, y_f[k].shape[-1])
        x = deq(gb, nd.inputs[0], q8)
        if dw:
            halves[k % 2].add_channels(depthwise_rows(x, nd, w0.shape), y)
        else:
            halves[k % 2].add_rows(rows_with_ones(x, nd, w0.shape), y)
    if halves[1].g is None:
        return                                   # one chunk: nothing to validate on
    if dw:
        flat0 = np.concatenate([w0.reshape(-1, w0.shape[3]), b0[None]], axis=0)   # [T+1, C]
    else:
        flat0 = np.concatenate([w0.reshape(w0.shape[0], -1), b0[:, None]], axis=1)  # [O, K+1]

    def solve(g: np.ndarray, c: np.ndarray) -> np.ndarray:
        if dw:
            if np.all(flat0[:-1] != 0):         # no pruned taps: every channel in one call
                return _ridge_solve(g, c, flat0.T, ridge, stacked=True).T
            return np.stack([_ridge_solve(g[ch], c[ch], flat0[:, ch], ridge)
                             for ch in range(flat0.shape[1])], axis=1)
        if np.all(flat0[:, :-1] != 0):
            return _ridge_solve(g, c, flat0.T, ridge).T
        return np.stack([_ridge_solve(g, c[:, o], flat0[o], ridge)   # pruned zeros stay 0
                         for o in range(flat0.shape[0])])

    def err(g: np.ndarray, c: np.ndarray, sol: np.ndarray) -> float:
        """|X w - y|^2 up to a constant, from the normal equations."""
        if dw:          # matmuls, not a 3-operand einsum (a C loop over t * s * c)
            st = sol.T
            return float(np.sum((st[:, None, :] @ g)[:, 0, :] * st) - 2 * np.sum(st * c))
        return float(np.sum((sol @ g) * sol) - 2 * np.sum(sol * c.T))

    # keep the refit only if, fitted on one half of the data, it beats the plainly
    # quantized weights on the other half (a narrow calibration set overfits)
    flat_q = _flat_q(gb, nd, dw)
    (ga, ca), (gv, cv) = ((h.g, h.c) for h in halves)
    if err(gv, cv, solve(ga, ca)) >= err(gv, cv, flat_q):
        return
    sol = solve(ga + gv, ca + cv)
    if dw:
        w_new, b_new = sol[:-1].reshape(w0.shape), sol[-1]
    else:
        w_new, b_new = sol[:, :-1].reshape(w0.shape), sol[:, -1]
    _requantize_layer(gb, nd, w_new, b_new)


def _flat_q(gb: Graph, nd: Node, dw: bool) -> np.ndarray:
    """The int8 layer's dequantized weights and bias as the refit lays them out."""
    w_q = deq(gb, nd.inputs[1], gb.tensors[nd.inputs[1]].data)
    b_q = deq(gb, nd.inputs[2], gb.tensors[nd.inputs[2]].data)
    return (np.concatenate([w_q.reshape(-1, w_q.shape[3]), b_q[None]], axis=0) if dw else
            np.concatenate([w_q.reshape(w_q.shape[0], -1), b_q[:, None]], axis=1))


def _refit_dual(gb: Graph, nd: Node, fn: Node, xq: list[np.ndarray], xf: list[np.ndarray],
                w0: np.ndarray, b_f: np.ndarray | None, b0: np.ndarray, ridge: float,
                y_f: dict[int, np.ndarray]) -> None:
    """_refit_layer when each half has fewer rows R than unknowns D (ResNet-18's last
    3x3 convolutions at 64x64: 128 rows, 4609 unknowns): the same ridge problem solved in
    its dual form, an R x R system instead of D x D (D^3 was 6 s per solve). The bias is
    fitted unregularized by centring (the primal form gives it a 1e-12 ridge)."""
    from edgeforge.quantize.lstsq import layer_features
    from edgeforge.runtime.reference import REFERENCE
    rows: list[list[np.ndarray]] = [[], []]
    ys: list[list[np.ndarray]] = [[], []]
    for k, (q8, f) in enumerate(zip(xq, xf)):
        if k not in y_f:
            y_f[k] = REFERENCE[fn.op](f, w0, b_f, _no_act(fn).attrs)
        ys[k % 2].append(y_f[k].astype(np.float64).reshape(-1, y_f[k].shape[-1]))
        rows[k % 2].append(layer_features(deq(gb, nd.inputs[0], q8), nd, w0.shape))
    xa, xv = (np.concatenate(r) for r in rows)
    ya, yv = (np.concatenate(y) for y in ys)
    flat0 = np.concatenate([w0.reshape(w0.shape[0], -1), b0[:, None]], axis=1)   # [O, K+1]

    def solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _dual_solve(x, y, flat0, ridge)

    def err(x: np.ndarray, y: np.ndarray, sol: np.ndarray) -> float:
        return float(np.sum((x @ sol[:, :-1].T + sol[:, -1] - y) ** 2))

    if err(xv, yv, solve(xa, ya)) >= err(xv, yv, _flat_q(gb, nd, False)):
        return
    sol = solve(np.concatenate([xa, xv]), np.concatenate([ya, yv]))
    _requantize_layer(gb, nd, sol[:, :-1].reshape(w0.shape), sol[:, -1])


def _dual_solve(x: np.ndarray, y: np.ndarray, flat0: np.ndarray, ridge: float) -> np.ndarray:
    """_ridge_solve's answer ([O, K+1]: weights, bias) from the rows x [R, K], y [R, O]
    through an R x R system: w = w0 + Xc^T (Xc Xc^T + lam I)^-1 (yc - Xc w0), centred."""
    d = x.shape[1] + 1
    lam = ridge * max((float(np.sum(x * x)) + x.shape[0]) / d, 1e-12) + 1e-12  # trace(g) / d
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc = x - xm
    resid = (y - ym) - xc @ flat0[:, :-1].T                       # [R, O]
    a = xc @ xc.T
    a[np.diag_indices_from(a)] += lam
    w = flat0[:, :-1] + (xc.T @ np.linalg.solve(a, resid)).T      # [O, K]
    return np.concatenate([w, (ym - w @ xm)[:, None]], axis=1)


def _requantize_layer(gb: Graph, nd: Node, w_new: np.ndarray, b_new: np.ndarray) -> None:
    """Put refitted float weights and bias back into the int8 layer (new scales)."""
    from edgeforge.quantize.rules import (
        fit_bias_scales,
        quantize_bias,
        quantize_weight,
        weight_scales,
    )
    wt, bt = gb.tensors[nd.inputs[1]], gb.tensors[nd.inputs[2]]
    axis = wt.quant.axis
    in_scale = float(gb.tensors[nd.inputs[0]].quant.scale[0])
    scales = weight_scales(w_new, axis, wt.quant.per_channel)
    scales = fit_bias_scales(b_new, in_scale, scales)
    wt.data = quantize_weight(w_new, scales, axis)
    wt.quant = replace(wt.quant, scale=scales)
    full = scales if scales.size > 1 else np.full(b_new.size, scales[0])
    bt.data = quantize_bias(b_new, in_scale, full)
    bt.quant = replace(bt.quant, scale=(np.float32(in_scale) * scales).astype(np.float32))


def _ridge_solve(g: np.ndarray, c: np.ndarray, w0: np.ndarray, ridge: float,
                 stacked: bool = False) -> np.ndarray:
    """argmin |X w - y|^2 + lam |w - w0|^2 from the normal equations (g = X^T X, c = X^T y);
    the last row (bias) is not regularized. For one channel (w0 1-D), weights that are 0 in
    w0 (pruned) stay 0. `stacked`: g [C, D, D], c [C, D], w0 [C, D], C independent
    problems solved in one LAPACK call (the same gesv per problem as one by one)."""
    d = g.shape[-1]
    if stacked:
        lam = ridge * np.maximum(np.trace(g, axis1=1, axis2=2) / d, 1e-12)
        reg = np.eye(d)
        reg[-1, -1] = 0.0
        reg = lam[:, None, None] * reg
        rhs = c + (reg @ w0[:, :, None])[:, :, 0]
        return np.linalg.solve(g + reg + 1e-12 * np.eye(d), rhs[:, :, None])[:, :, 0]
    lam = ridge * max(float(np.trace(g)) / d, 1e-12)
    if w0.ndim == 1 and not np.all(w0[:-1] != 0):
        reg = lam * np.eye(d)
        reg[-1, -1] = 0.0
        idx = np.flatnonzero(np.append(w0[:-1] != 0, True))
        out = np.zeros(d)
        sub = np.ix_(idx, idx)
        out[idx] = np.linalg.solve(g[sub] + reg[sub] + 1e-12 * np.eye(idx.size),
                                   c[idx] + reg[sub] @ w0[idx])
        return out
    # the ridge is diagonal: add it in place of forming and multiplying D x D matrices
    # (the same sums: g_ii + lam + 1e-12 on the diagonal, lam * w0 on the right)
    diag = np.full(d, lam)
    diag[-1] = 0.0
    a = g.copy()
    ii = np.arange(d)
    a[ii, ii] = (g[ii, ii] + diag) + 1e-12
    return np.linalg.solve(a, c + (diag[:, None] * w0 if w0.ndim == 2 else diag * w0))
