"""Pruning on the float IR: magnitude (unstructured) and structured channel pruning.

    g2 = magnitude_prune(g, sparsity=0.5)                 # per layer: half the weights -> 0
    g2 = magnitude_prune(g, sparsity=0.5, scope="global") # one threshold over all layers
    g2 = magnitude_prune(g, tau=0.01)                     # W' = W where |W| > tau, else 0
    g2 = channel_prune(g, remove=0.5)                     # drop filters until MACs halve
    g2, report = compress(g, calib, prune_channels=0.5, distill=True)

Magnitude pruning keeps shapes (dense int8 storage stays the same size; the zeros compress
and a sparse kernel could skip them). Channel pruning really removes filters: the producer's
output channels, every channel-wise op after it (activations, pools, a depthwise conv), and
the matching input channels of the consumers (CONV2D, FC, or FC behind a flatten RESHAPE),
so RAM, flash and MACs all fall. Filters are ranked by L1 norm; one keep ratio is applied to
every prunable layer and found by bisection so that the MACs fall by the requested fraction.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import OPS, WEIGHTED, Graph, Node, Op

# Ops whose output channel c comes from input channel c alone, so a channel pruned before
# them is pruned after them too: every one-input elementwise op of the op table (a new one
# joins by its OPS row), plus pooling, spatial MEAN, PAD and depthwise conv, which
# _channelwise_ok checks per node (no reduction over channels, depth multiplier 1).
CHANNELWISE = frozenset(
    {op for op, info in OPS.items() if info.elementwise and info.n_inputs == (1, 1)}
    | {Op.AVGPOOL2D, Op.MAXPOOL2D, Op.MEAN, Op.PAD, Op.DWCONV2D})


class PruneError(EdgeforgeError):
    """A pruning request that cannot be met (names the layer or the limit)."""


# ---------------------------------------------------------------- statistics
def compression_stats(g: Graph) -> dict[str, Any]:
    """Weights, zeros, sparsity, weight bytes and MACs of a graph (weighted layers only for
    the weight counts)."""
    total = zeros = 0
    for n in g.nodes:
        if n.op in WEIGHTED:
            w = g.tensors[n.inputs[1]].data
            total += w.size
            zeros += int(np.count_nonzero(w == 0))
    return {"weights": total, "zero_weights": zeros,
            "sparsity": zeros / total if total else 0.0,
            "weight_bytes": g.weight_bytes(), "macs": g.macs(),
            "nonzero_macs": _nonzero_macs(g)}


def _nonzero_macs(g: Graph) -> int:
    """MACs a sparse kernel would do: each weighted layer's MACs times its density."""
    total = 0
    for n in g.nodes:
        m = OPS[n.op].macs(n, g)
        if n.op in WEIGHTED:
            w = g.tensors[n.inputs[1]].data
            m = round(m * np.count_nonzero(w) / max(w.size, 1))
        total += m
    return total


def _copy(g: Graph) -> Graph:
    out = g.copy()
    for t in out.tensors.values():
        if t.data is not None:
            t.data = t.data.copy()
    return out


# ---------------------------------------------------------------- magnitude pruning
def magnitude_prune(g: Graph, *, tau: float | None = None, sparsity: float | None = None,
                    scope: str = "layer") -> Graph:
    """Zero small weights of every CONV2D/DWCONV2D/FC: W' = W where |W| > tau, else 0.

    Give `tau` directly, or `sparsity` (fraction of zeros): per layer (`scope="layer"`, each
    layer its own tau) or one tau for all layers (`scope="global"`)."""
    if (tau is None) == (sparsity is None):
        raise PruneError("magnitude_prune: give exactly one of tau= or sparsity=")
    if sparsity is not None and not 0.0 <= sparsity < 1.0:
        raise PruneError(f"sparsity {sparsity}: must be in [0, 1)")
    if scope not in ("layer", "global"):
        raise PruneError(f"scope {scope!r}: 'layer' or 'global'")
    out = _copy(g)
    names = list(dict.fromkeys(n.inputs[1] for n in out.nodes if n.op in WEIGHTED))
    if sparsity is not None and scope == "global" and names:
        mags = np.concatenate([np.abs(out.tensors[w].data).ravel() for w in names])
        tau = float(np.quantile(mags, sparsity)) if sparsity > 0 else -1.0
    taus = {}
    for w in names:
        t = out.tensors[w]
        th = tau
        if th is None:
            th = float(np.quantile(np.abs(t.data), sparsity)) if sparsity > 0 else -1.0
        t.data = np.where(np.abs(t.data) > th, t.data, 0).astype(t.data.dtype)
        taus[w] = th
    out.meta["magnitude_prune"] = {"scope": scope, "tau": taus}
    return out


# ---------------------------------------------------------------- channel pruning
@dataclass
class ChannelGroup:
    """One prunable producer and everything its output channels flow into."""
    producer: Node
    channels: int
    tensors: list[str] = field(default_factory=list)        # last dim shrinks
    channelwise: list[Node] = field(default_factory=list)   # DW convs, pools, activations
    sinks: list[Node] = field(default_factory=list)         # CONV2D / FC input channels
    flattens: list[tuple[Node, int]] = field(default_factory=list)  # (RESHAPE, H*W)
    flat_fcs: list[tuple[Node, int]] = field(default_factory=list)  # (FC, H*W) behind one


def channel_groups(g: Graph) -> tuple[list[ChannelGroup], list[str]]:
    """Prunable groups, and why each other CONV2D/FC is not prunable."""
    cons = g.consumers()
    groups, skipped = [], []
    for n in g.nodes:
        if n.op not in (Op.CONV2D, Op.FC):
            continue
        if len(g.tensors[n.outputs[0]].shape) < 2:
            continue
        grp = ChannelGroup(n, g.tensors[n.outputs[0]].shape[-1])
        why = _trace(g, cons, n.outputs[0], grp)
        if why is None and grp.channels > 1:
            groups.append(grp)
        else:
            skipped.append(f"{n.name or n.outputs[0]}: {why or 'a single channel'}")
    return groups, skipped


def _trace(g: Graph, cons: dict[str, list[Node]], t: str, grp: ChannelGroup) -> str | None:
    """Follow tensor t's channels; None if every path ends in a prunable sink."""
    if t in g.outputs:
        return "its output is a graph output"
    grp.tensors.append(t)
    shape = g.tensors[t].shape
    for c in cons.get(t, []):
        if c.inputs[0] != t or any(i == t for i in c.inputs[1:]):
            return f"output feeds {c.op} '{c.name or c.outputs[0]}' as a non-data input"
        if c.op == Op.CONV2D or c.op == Op.FC and len(shape) == 2:
            grp.sinks.append(c)
        elif c.op == Op.RESHAPE and len(shape) == 4 and tuple(c.attrs.shape) == (
                shape[0], int(np.prod(shape[1:]))):
            users = cons.get(c.outputs[0], [])
            if c.outputs[0] in g.outputs or not users or any(
                    u.op != Op.FC or u.inputs[0] != c.outputs[0] for u in users):
                return f"flatten '{c.name}' feeds something other than FC"
            hw = shape[1] * shape[2]
            grp.flattens.append((c, hw))
            grp.flat_fcs.extend((u, hw) for u in users)
            grp.tensors.append(c.outputs[0])
        elif c.op in CHANNELWISE and _channelwise_ok(c, len(shape)):
            grp.channelwise.append(c)
            why = _trace(g, cons, c.outputs[0], grp)
            if why:
                return why
        else:
            return f"output feeds {c.op} '{c.name or c.outputs[0]}' (channels must match)"
    return None


def _channelwise_ok(n: Node, rank: int) -> bool:
    if n.op == Op.DWCONV2D:
        return n.attrs.depth_multiplier == 1
    if n.op == Op.MEAN:
        return (rank - 1) not in n.attrs.axes and n.attrs.keepdims
    if n.op == Op.PAD:
        return tuple(n.attrs.pads[-1]) == (0, 0) if n.attrs.pads else True
    return True


def _l1(g: Graph, n: Node) -> np.ndarray:
    w = g.tensors[n.inputs[1]].data
    return np.abs(w).reshape(w.shape[0], -1).sum(axis=1)


def apply_channel_keep(g: Graph, groups: list[ChannelGroup],
                       keep: dict[str, np.ndarray]) -> Graph:
    """A copy of g with only the `keep[producer output]` channels of each group (sorted
    indices); records the kept indices per tensor in meta["kept_channels"]."""
    out = _copy(g)
    kept = dict(out.meta.get("kept_channels", {}))
    nodes = {n.outputs[0]: i for i, n in enumerate(out.nodes)}
    for grp in groups:
        k = np.sort(np.asarray(keep[grp.producer.outputs[0]]))
        if len(k) == grp.channels:
            continue
        p = grp.producer
        _take(out, p.inputs[1], k, 0)
        if len(p.inputs) > 2 and p.inputs[2]:
            _take(out, p.inputs[2], k, 0)
        for n in grp.channelwise:
            if n.op == Op.DWCONV2D:
                _take(out, n.inputs[1], k, 3)
                if len(n.inputs) > 2 and n.inputs[2]:
                    _take(out, n.inputs[2], k, 0)
        for n in grp.sinks:
            _take(out, n.inputs[1], k, -1)      # input channels: OHWI and [C_OUT, C_IN]
        for n, hw in grp.flat_fcs:
            w = out.tensors[n.inputs[1]]
            c = w.data.shape[1] // hw
            data = w.data.reshape(w.data.shape[0], hw, c)[:, :, k]
            w.data = np.ascontiguousarray(data.reshape(w.data.shape[0], hw * len(k)))
            w.shape = tuple(w.data.shape)
        for t in grp.tensors:
            ten = out.tensors[t]
            if any(t == r.outputs[0] for r, _ in grp.flattens):
                hw = next(h for r, h in grp.flattens if r.outputs[0] == t)
                ten.shape = (ten.shape[0], hw * len(k))
                i = nodes[t]
                r = out.nodes[i]
                out.nodes[i] = r.with_(inputs=r.inputs[:1],
                                       attrs=replace(r.attrs, shape=ten.shape))
            else:
                ten.shape = tuple(ten.shape[:-1]) + (len(k),)
                prev = kept.get(t)
                kept[t] = [int(prev[i]) if prev else int(i) for i in k]
    out.meta["kept_channels"] = kept
    return out


def _take(g: Graph, name: str, idx: np.ndarray, axis: int) -> None:
    t = g.tensors[name]
    t.data = np.ascontiguousarray(np.take(t.data, idx, axis=axis))
    t.shape = tuple(t.data.shape)


def channel_prune(g: Graph, remove: float, *, min_channels: int = 1) -> Graph:
    """Remove filters (lowest L1 norm first, the same fraction in every prunable layer)
    until the graph's MACs fall by `remove` (0 < remove < 1)."""
    if not 0.0 < remove < 1.0:
        raise PruneError(f"--prune-channels {remove}: the fraction of MACs to remove must be "
                         f"in (0, 1)")
    groups, skipped = channel_groups(g)
    if not groups:
        raise PruneError(f"{g.name}: no prunable CONV2D/FC layer ({'; '.join(skipped)})")
    base = g.macs()
    target = base * (1.0 - remove)
    order = {grp.producer.outputs[0]: np.argsort(-_l1(g, grp.producer), kind="stable")
             for grp in groups}

    def pruned(ratio: float) -> Graph:
        keep = {o: idx[:max(min_channels, round(ratio * len(idx)))]
                for o, idx in order.items()}
        return apply_channel_keep(g, groups, keep)

    floor = pruned(0.0).macs()
    if floor > target:
        raise PruneError(f"{g.name}: channel pruning can remove at most "
                         f"{1 - floor / base:.0%} of the MACs (asked {remove:.0%}); not "
                         f"prunable: {'; '.join(skipped) or 'none'}")
    lo, hi = 0.0, 1.0                  # invariant: pruned(lo) meets the target
    for _ in range(30):
        mid = (lo + hi) / 2
        if pruned(mid).macs() <= target:
            lo = mid
        else:
            hi = mid
    out = pruned(lo)
    out.meta["channel_prune"] = {
        "remove": remove, "keep_ratio": lo, "macs_before": base, "macs_after": out.macs(),
        "layers": {grp.producer.name or grp.producer.outputs[0]:
                   [grp.channels, out.tensors[grp.producer.outputs[0]].shape[-1]]
                   for grp in groups},
        "not_prunable": skipped}
    return out


# ---------------------------------------------------------------- one call for compile
def compress(g: Graph, calib: Any = None, *, prune: float | None = None,
             prune_channels: float | None = None, distill: bool = False,
             prune_scope: str = "layer", verbose: int = 0) -> tuple[Graph, dict[str, Any]]:
    """The compile pipeline's compression step on a float graph: channel pruning, then
    magnitude pruning, then (with calibration data) layer-wise distillation on 80% of it.
    Returns the graph and a report: stats before and after, and the output SQNR vs the
    original on the held-out 20% of the calibration data."""
    from edgeforge.quantize.calibrate import load_calib
    from edgeforge.quantize.quantize import prepare_float
    teacher = prepare_float(g)
    fit = held = None
    if calib is not None:           # refit on 80%, report on the held-out 20%
        arrays = load_calib(calib, teacher)
        n = arrays[0].shape[0]
        cut = n - max(1, n // 5) if n >= 10 else n
        fit, held = [a[:cut] for a in arrays], [a[cut:] if cut < n else a for a in arrays]
    out = teacher
    report: dict[str, Any] = {"before": compression_stats(teacher)}
    if prune_channels:
        out = channel_prune(out, prune_channels)
        report["channel_prune"] = out.meta["channel_prune"]
    if prune:
        out = magnitude_prune(out, sparsity=prune, scope=prune_scope)
    if distill:
        if calib is None:
            raise PruneError("--distill needs --calib data (the teacher's activations)")
        from edgeforge.compress.distill import distill as refit
        out = refit(out, teacher, fit, verbose=verbose)
        report["distilled"] = out.meta.get("distilled", [])
    report["after"] = compression_stats(out)
    if held is not None:
        from edgeforge.compress.distill import output_sqnr
        report["output_sqnr_db"] = output_sqnr(teacher, out, held)
        report["output_sqnr_samples"] = int(held[0].shape[0])   # not used for the refit
    out.meta["compress"] = report
    return out, report
