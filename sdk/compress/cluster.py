"""Weight clustering of an int8 graph: each weighted layer's int8 weights take at most K
distinct values per tensor (compile --cluster 16|4), so the C package can store them as a
K-entry value table + bit-packed indices (plan.scratch.packed_bits, codegen.c).

The clustered weights are ordinary int8 values, so the .tflite, the reference, TFLM and the
C kernels all compute with the same numbers: outputs stay byte-equal between them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import Graph, Op

CLUSTER_OPS = (Op.CONV2D, Op.DWCONV2D, Op.FC)     # the ops whose C emitters unpack weights
CLUSTER_KS = (16, 4)                              # 4-bit and 2-bit indices
ZERO_EXACT = 0.05      # a tensor with at least this share of zeros (pruned) keeps 0 exact


def _segments(v: np.ndarray, h: np.ndarray, k: int) -> tuple[np.ndarray, list[list[int]]]:
    """Optimal 1-D k-means of sorted values v with weights h into 1..k contiguous segments
    (dynamic programming over the prefix sums): cost[c-1] is the least weighted squared
    error with c segments and ends[c-1] its segments' last indices."""
    m = v.size
    s0 = np.concatenate([[0.0], np.cumsum(h)])
    s1 = np.concatenate([[0.0], np.cumsum(h * v)])
    s2 = np.concatenate([[0.0], np.cumsum(h * v * v)])
    i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")       # segment [i, j]
    w = s0[j + 1] - s0[i]
    with np.errstate(all="ignore"):         # (i > j: no segment, masked below)
        sse = (s2[j + 1] - s2[i]) - np.where(w > 0, (s1[j + 1] - s1[i]) ** 2 / w, 0.0)
    sse = np.where(i <= j, np.maximum(sse, 0.0), np.inf)
    best = sse[0].copy()                       # best[j]: v[0..j] in c segments
    arg: list[np.ndarray] = [np.zeros(m, np.int64)]
    costs, ends = [best[-1]], [[m - 1]]
    for _ in range(1, min(k, m)):
        prev = np.concatenate([[np.inf], best[:-1]])     # v[0..i-1] in c-1 segments
        tot = prev[:, None] + sse
        a = np.argmin(tot, axis=0)
        best = tot[a, np.arange(m)]
        arg.append(a)
        seg, jj = [m - 1], m - 1
        for c in range(len(arg) - 1, 0, -1):
            jj = int(arg[c][jj]) - 1
            seg.append(jj)
        costs.append(best[-1])
        ends.append(seg[::-1])
    return np.asarray(costs), ends


def _centres(v: np.ndarray, h: np.ndarray, ends: list[int]) -> list[int]:
    out, lo = [], 0
    for e in ends:
        hw = h[lo:e + 1]
        out.append(int(np.round((hw * v[lo:e + 1]).sum() / hw.sum())) if hw.sum() > 0
                   else int(v[lo]))
        lo = e + 1
    return out


def kmeans_int8(w: np.ndarray, k: int, importance: np.ndarray | None = None) -> np.ndarray:
    """At most k integer centres (sorted) for int8 values `w`: the optimal 1-D k-means of
    their histogram, each value weighted by `importance` (e.g. its channel's scale squared,
    so the error is the float weights'). Zero stays its own centre when at least ZERO_EXACT
    of the values are zero (pruned): the other k - 1 split between the negative and the
    positive values, whichever split costs least."""
    flat = np.asarray(w, np.int64).ravel()
    imp = np.ones(flat.size) if importance is None else \
        np.broadcast_to(np.asarray(importance, np.float64), w.shape).ravel()
    h = np.bincount(flat + 128, weights=imp, minlength=256)
    n = np.bincount(flat + 128, minlength=256)
    vals = np.arange(-128, 128)
    present = vals[n > 0]
    if present.size <= k:
        return present
    if n[128] < ZERO_EXACT * flat.size:
        _, ends = _segments(present.astype(np.float64), h[n > 0], k)
        return np.unique(_centres(present.astype(np.float64), h[n > 0], ends[-1]))
    sides = []
    for mask in (n[:128] > 0, n[129:] > 0):
        sv = (vals[:128] if len(sides) == 0 else vals[129:])[mask].astype(np.float64)
        sh = (h[:128] if len(sides) == 0 else h[129:])[mask]
        sides.append((sv, sh, *_segments(sv, sh, k - 1)) if sv.size else (sv, sh, None, None))
    best = None
    for a in range(k):                       # a centres for the negatives, k - 1 - a positive
        b = k - 1 - a
        (nv, nh, nc, ne), (pv, ph, pc, pe) = sides
        if (a == 0) != (nv.size == 0) or (b == 0) != (pv.size == 0):
            continue
        if (nc is not None and a > nc.size) or (pc is not None and b > pc.size):
            continue
        cost = (nc[a - 1] if a else 0.0) + (pc[b - 1] if b else 0.0)
        if best is None or cost < best[0]:
            best = (cost, a, b)
    if best is None:                          # fewer values than centres on a side
        return present
    _, a, b = best
    (nv, nh, nc, ne), (pv, ph, pc, pe) = sides
    cs = [0] + (_centres(nv, nh, ne[a - 1]) if a else []) + \
        (_centres(pv, ph, pe[b - 1]) if b else [])
    return np.unique(cs)


def cluster_values(w: np.ndarray, k: int, importance: np.ndarray | None = None
                   ) -> np.ndarray:
    """`w` (int8) with each value replaced by its nearest k-means centre."""
    c = kmeans_int8(w, k, importance)
    vals = np.arange(-128, 128)
    lut = c[np.argmin(np.abs(vals[:, None] - c[None, :]), axis=1)].astype(np.int8)
    return lut[np.asarray(w, np.int64) + 128]


def cluster_weights(g: Graph, k: int) -> list[dict]:
    """Cluster, in place, the int8 weights of every CONV2D / DWCONV2D / FC of int8 graph `g`
    to at most k values per tensor; g.meta["cluster"] = k tells the planner and the C
    generator to store them packed. Returns one row per clustered tensor."""
    if k not in CLUSTER_KS:
        raise EdgeforgeError(f"--cluster {k}: choose one of {', '.join(map(str, CLUSTER_KS))}")
    rows = []
    seen: set[str] = set()
    for node in g.nodes:
        if node.op not in CLUSTER_OPS or len(node.inputs) < 2:
            continue
        name = node.inputs[1]
        t = g.tensors[name]
        if name in seen or t.data is None or t.dtype != "int8" or \
                g.tensors[node.inputs[0]].dtype != "int8":
            continue
        seen.add(name)
        w = np.asarray(t.data, np.int8)
        q = t.quant       # per-channel: weigh each value by its channel's scale squared
        imp = None
        if q is not None and q.per_channel:
            shape = [1] * w.ndim
            shape[q.axis] = -1
            imp = (np.asarray(q.scale, np.float64) ** 2).reshape(shape)
        new = cluster_values(w, k, imp)
        g.tensors[name] = dataclasses.replace(t, data=new.reshape(w.shape))
        diff = new.astype(np.int64).ravel() - w.astype(np.int64).ravel()
        rows.append({"node": node.name or node.outputs[0], "tensor": name,
                     "values_before": int(np.unique(w).size),
                     "values": int(np.unique(new).size),
                     "zeros": round(float((new == 0).mean()), 4),
                     "rms_change": round(float(np.sqrt((diff ** 2).mean())), 3)})
    g.meta["cluster"] = k
    return rows
