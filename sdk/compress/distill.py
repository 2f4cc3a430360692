"""Layer-wise distillation: refit a pruned float graph's weights so each layer reproduces
the original (teacher) layer's outputs, by least squares on calibration activations.

For every CONV2D / DWCONV2D / FC of the student, in graph order:

    X = the student's own input to the layer (im2col rows, plus a ones column for the bias),
        produced by the already-refitted layers before it;
    Y = the teacher layer's output before its fused activation, on the teacher's input,
        restricted to the channels the student kept (meta["kept_channels"]);
    W = argmin |X W - Y|^2 + lambda |W|^2, solved per output channel over the weights that
        are not pruned (zeros stay zero, so magnitude sparsity is kept).

Layers whose input and weights are untouched are skipped (their fit is already exact).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edgeforge.ir import OPS, WEIGHTED, Act, Graph, Node, Op
from edgeforge.quantize.lstsq import NormalEquations, layer_features

# Ridge candidates (relative to the mean diagonal of the normal equations); each layer keeps
# the one with the least error on the calibration batches it was not fitted on.
RIDGES = (1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0)


def _solve(g: np.ndarray, c: np.ndarray, mask: np.ndarray, ridge: float) -> np.ndarray:
    """Solve (G + lambda I) w = c restricted to mask (the last entry, the bias, is always
    free); returns the full-length w with zeros where masked out. c may be [K+1, O] (one
    column per output sharing the mask)."""
    idx = np.flatnonzero(np.append(mask, True))
    sub = g[np.ix_(idx, idx)]
    lam = ridge * max(float(np.trace(sub)) / len(idx), 1e-12)
    sub = sub + lam * np.eye(len(idx))
    sub[-1, -1] -= lam                      # do not shrink the bias
    w = np.zeros((g.shape[0],) + c.shape[1:])
    w[idx] = np.linalg.lstsq(sub, c[idx], rcond=None)[0]
    return w


def _solve_layer(n: Node, w: np.ndarray, normal: NormalEquations, ridge: float) -> np.ndarray:
    """Weights + bias of layer n from its normal equations: DWCONV2D [T+1, C], else
    [C_OUT, K+1]. Pruned weights (zeros of w) stay zero."""
    if n.op == Op.DWCONV2D:
        flat = w.reshape(w.shape[1] * w.shape[2], -1)
        return np.stack([_solve(normal.g[ch], normal.c[ch], flat[:, ch] != 0, ridge)
                         for ch in range(flat.shape[1])], axis=1)
    flat = w.reshape(w.shape[0], -1)
    if np.all(flat != 0):                   # no magnitude zeros: one solve for all outputs
        return _solve(normal.g, normal.c, np.ones(flat.shape[1], bool), ridge).T
    return np.stack([_solve(normal.g, normal.c[:, o], flat[o] != 0, ridge)
                     for o in range(flat.shape[0])])


def _held_out_error(n: Node, sol: np.ndarray, check: NormalEquations) -> float:
    """|X W - Y|^2 on the check half, less the constant |Y|^2: W'GW - 2 W'c."""
    if n.op == Op.DWCONV2D:
        return float(np.einsum("kc,ckl,lc->", sol, check.g, sol) - 2 * np.sum(sol.T * check.c))
    return float(np.einsum("ok,kl,ol->", sol, check.g, sol) - 2 * np.sum(sol.T * check.c))


def _refit(student: Graph, n: Node, fit: NormalEquations, check: NormalEquations | None,
           ridge: float | tuple[float, ...]) -> float:
    """Write the least-squares weights and bias of node n into student (in place). With a
    tuple of ridges and a `check` half, the ridge whose fit on `fit` errs least on `check`
    is kept, then solved on both halves. Returns the ridge used."""
    wt = student.tensors[n.inputs[1]]
    w = wt.data
    if isinstance(ridge, tuple):
        if check is None or check.g is None:
            ridge = ridge[len(ridge) // 2]
        else:
            ridge = min(ridge, key=lambda r: _held_out_error(n, _solve_layer(n, w, fit, r),
                                                             check))
    if check is not None and check.g is not None:
        fit._sum(check.g, check.c)
    sol = _solve_layer(n, w, fit, ridge)
    if n.op == Op.DWCONV2D:
        new_w, bias = sol[:-1].reshape(w.shape), sol[-1]
    else:
        new_w, bias = sol[:, :-1].reshape(w.shape), sol[:, -1]
    wt.data = new_w.astype(np.float32)
    if len(n.inputs) > 2 and n.inputs[2]:
        student.tensors[n.inputs[2]].data = bias.astype(np.float32)
    else:
        name = student.unique_name(f"{n.outputs[0]}/bias")
        student.const(name, bias.astype(np.float32))
        i = student.nodes.index(n)
        student.nodes[i] = n.with_(inputs=(n.inputs[0], n.inputs[1], name))
    return ridge


def distill(student: Graph, teacher: Graph, data: Any, *,
            ridge: float | tuple[float, ...] = RIDGES, batch_size: int = 32,
            max_samples: int = 1024, verbose: int = 0) -> Graph:
    """A copy of `student` (a pruned version of `teacher`, same tensor names) whose weighted
    layers are refitted, in graph order on the student's own activations, to reproduce the
    teacher's pre-activation outputs.
    `ridge`: one value, or candidates each layer chooses from by its error on the half of
    the batches it was not fitted on (meta["distill_ridge"])."""
    from edgeforge.quantize.calibrate import iterate_float, load_calib, rebatch
    from edgeforge.runtime.reference import REFERENCE
    arrays = load_calib(data, teacher)
    n = min(max_samples, arrays[0].shape[0])
    b = max(1, min(batch_size, n // 2 if isinstance(ridge, tuple) else n))
    n = (n // b) * b
    arrays = [a[:n] for a in arrays]
    out = student.copy()
    for t in out.tensors.values():
        if t.data is not None:
            t.data = t.data.copy()
    kept = out.meta.get("kept_channels", {})
    tnodes = {nd.outputs[0]: nd for nd in teacher.nodes}
    layers = [nd.outputs[0] for nd in out.nodes if nd.op in WEIGHTED and nd.outputs[0] in tnodes]
    # teacher side: the inputs of every weighted layer, per chunk
    t_in: dict[str, list[np.ndarray]] = {tnodes[o].inputs[0]: [] for o in layers}
    for f in iterate_float(teacher, arrays, b, verbose, "distillation (teacher)"):
        for name, chunks in t_in.items():
            chunks.append(f[name])
    sb = rebatch(out, b)
    if sb is None:
        raise ValueError(f"{student.name}: distillation needs a graph with batch dimension 1")
    env = {name: [a[s:s + b] for s in range(0, n, b)] for name, a in zip(sb.inputs, arrays)}
    refitted, ridges = [], {}
    for k, nd in enumerate(sb.nodes):
        o = nd.outputs[0]
        if o in layers and _needs_refit(out, teacher, nd, kept, env, t_in):
            tn = tnodes[o]
            halves = (NormalEquations(), NormalEquations())
            t_attrs = replace(tn.attrs, act=Act.NONE)
            tw = teacher.tensors[tn.inputs[1]].data
            tb = teacher.tensors[tn.inputs[2]].data if len(tn.inputs) > 2 and tn.inputs[2] \
                else None
            sel = kept.get(o)
            for c, (xs, xt) in enumerate(zip(env[nd.inputs[0]], t_in[tn.inputs[0]])):
                y = REFERENCE[tn.op](xt, tw, tb, t_attrs).astype(np.float64)
                if sel is not None:
                    y = y[..., sel]
                halves[c % 2].add(layer_features(xs, nd, out.tensors[nd.inputs[1]].shape),
                                  y.reshape(-1, y.shape[-1]), nd.op == Op.DWCONV2D)
            fit, check = halves if isinstance(ridge, tuple) else (halves[0], halves[1])
            ridges[nd.name or o] = _refit(out, out.nodes[k], fit, check, ridge)
            sb.nodes[k] = out.nodes[k] if len(out.nodes[k].inputs) != len(nd.inputs) else nd
            for name in out.nodes[k].inputs[1:]:
                if name:
                    sb.tensors[name] = out.tensors[name]
            nd = sb.nodes[k]
            refitted.append(nd.name or o)
        args_const = {i: sb.tensors[i].data for i in nd.inputs if i and sb.tensors[i].is_const}
        env[o] = [REFERENCE[nd.op](*[None if not i else args_const[i] if i in args_const
                                     else env[i][c] for i in nd.inputs], nd.attrs)
                  for c in range(n // b)]
    out.meta["distilled"] = refitted
    out.meta["distill_ridge"] = ridges
    return out


def _needs_refit(student: Graph, teacher: Graph, n: Node, kept: dict, env: dict,
                 t_in: dict) -> bool:
    """False when the layer sees the teacher's exact input and keeps the teacher's weights
    (a subset of its output channels at most): the fit is already exact."""
    tn = next(t for t in teacher.nodes if t.outputs[0] == n.outputs[0])
    xs, xt = env[n.inputs[0]], t_in[tn.inputs[0]]
    if any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(xs, xt)):
        return True
    ws, wt = student.tensors[n.inputs[1]].data, teacher.tensors[tn.inputs[1]].data
    sel = kept.get(n.outputs[0])
    if sel is not None:
        wt = np.take(wt, sel, axis=OPS[n.op].out_axis)
    return ws.shape != wt.shape or not np.array_equal(ws, wt)


def output_sqnr(teacher: Graph, student: Graph, data: Any, max_samples: int = 256
                ) -> float:
    """SQNR (dB) of the student's first output vs the teacher's, over `data`."""
    from edgeforge.quantize.calibrate import batch_runner, load_calib
    from edgeforge.quantize.quantize import sqnr_db
    arrays = [a[:max_samples] for a in load_calib(data, teacher)]
    tr, sr = batch_runner(teacher), batch_runner(student)
    refs, outs = [], []
    for s in range(0, arrays[0].shape[0], 32):
        feeds = [a[s:s + 32] for a in arrays]
        refs.append(tr(feeds)[teacher.outputs[0]])
        outs.append(sr(feeds)[student.outputs[0]])
    return sqnr_db(np.concatenate(refs), np.concatenate(outs))
