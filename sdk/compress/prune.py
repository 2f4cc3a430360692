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
so RAM, flash and MACs all fall. Without data, channels are ranked by weight norm and one
keep ratio (found by bisection) applies to every group; with calibration data, channels are
ranked by what removing them costs the consumers once refitted, and each group's ratio by
the output loss per MAC saved (reconstruction_order, _allocate).
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


def int8_weight_bytes(g: Graph) -> int:
    """Flash the weights of a float graph take once quantized: 1 byte per weight, 4 per
    bias (int32), other constants as stored."""
    total = 0
    for n in g.nodes:
        for k, name in enumerate(n.inputs):
            t = g.tensors.get(name) if name else None
            if t is not None and t.is_const:
                total += t.data.size * (1 if n.op in WEIGHTED and k == 1 else 4)
    return total


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
                    scope: str = "layer", blocks: bool = False) -> Graph:
    """Zero small weights of every CONV2D/DWCONV2D/FC: W' = W where |W| > tau, else 0.

    Give `tau` directly, or `sparsity` (fraction of zeros): per layer (`scope="layer"`, each
    layer its own tau) or one tau for all layers (`scope="global"`). With `blocks`, an FC or
    1x1 stride-1 unpadded CONV2D whose C_IN is a multiple of BLOCK, and that ef_fc_bsr_s8
    will run at the resulting density, instead loses its `sparsity` fraction of BLOCK x BLOCK
    weight blocks, smallest L2 norm first, so the zeros line up for that kernel; the output
    layer keeps every weight, and the other layers are pruned as without it."""
    if blocks:
        if sparsity is None:
            raise PruneError("--prune-blocks needs --prune SPARSITY (the fraction of blocks)")
        out = magnitude_prune(g, sparsity=sparsity, scope=scope)
        last = _output_layers(g)
        for n in out.nodes:
            t = out.tensors[n.inputs[1]] if _block_layer(n, g) else None
            if t is None or t.data is None:
                continue
            w = g.tensors[n.inputs[1]].data
            if n.outputs[0] in last:    # the classifier: whole blocks of it cost the model
                t.data = w.copy()       # most (digits 99% -> 72-86%), as usual left dense
            elif _block_shape(w.reshape(w.shape[0], -1).shape) and 1 - sparsity <= (
                    bsr_conv_density(w.shape[-1]) if n.op == Op.CONV2D else BSR_MAX_DENSITY):
                # only where the kernel will skip the blocks: elsewhere whole blocks cost
                # accuracy (digits mbv2 1x1 convs: 86% -> 70%) and buy nothing
                t.data = block_prune(w.reshape(w.shape[0], -1), sparsity).reshape(w.shape)
        out.meta["magnitude_prune"]["blocks"] = BLOCK
        return out
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


BLOCK = 4        # the block-sparse FC kernel's block side (codegen.c.block_sparse_fc)
BSR_MAX_DENSITY = 0.5   # stored / all blocks at or under which ef_fc_bsr_s8 wins (plan.scratch)


def bsr_conv_density(cin: int) -> float:
    """The block density under which ef_fc_bsr_s8 beats the dense 1x1 conv engine on the M4:
    per output pixel and channel the engine costs ~17 + C_IN instructions, the block-sparse
    kernel ~52 + 6.75 per stored block of its block row (QEMU, benchmarks/sparse_mcu.py), so
    small C_IN never pays (64: 0.27; 128: 0.43; from 256 BSR_MAX_DENSITY)."""
    return min(BSR_MAX_DENSITY, max(0.0, (cin - 35) / (1.6875 * cin)))


def _block_layer(n: Node, g: Graph) -> bool:
    """An FC, or a 1x1 stride-1 unpadded CONV2D (an FC over pixels): what ef_fc_bsr_s8 runs."""
    if n.op == Op.FC:
        return True
    if n.op != Op.CONV2D:
        return False
    a = n.attrs
    return tuple(g.tensors[n.inputs[1]].shape[1:3]) == (1, 1) and tuple(a.stride) == (1, 1) \
        and not any(a.pad) and tuple(a.dilation) == (1, 1)


def _output_layers(g: Graph) -> set[str]:
    """Outputs of the weighted nodes nearest the graph outputs (no weighted node between)."""
    producer = {o: n for n in g.nodes for o in n.outputs}
    found, seen, todo = set(), set(), list(g.outputs)
    while todo:
        n = producer.get(todo.pop())
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        if n.op in WEIGHTED:
            found.add(n.outputs[0])
        else:
            todo += [t for t in n.inputs if t]
    return found


def _block_shape(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 and shape[1] % BLOCK == 0


def block_prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    """w [C_OUT, C_IN] with the floor(sparsity * blocks) BLOCK x BLOCK blocks of smallest L2
    norm set to 0 (ties: the first in row-major block order); the last block row takes
    C_OUT % BLOCK rows when C_OUT is not a multiple of BLOCK."""
    w = np.asarray(w)
    rows = w.shape[0]
    co, ci = -(-rows // BLOCK), w.shape[1] // BLOCK
    blk = np.pad(w, ((0, -rows % BLOCK), (0, 0))).reshape(co, BLOCK, ci, BLOCK)
    norms = np.sqrt((blk.astype(np.float64) ** 2).sum(axis=(1, 3))).ravel()
    drop = np.argsort(norms, kind="stable")[:int(sparsity * norms.size)]
    keep = np.ones(norms.size, bool)
    keep[drop] = False
    mask = np.repeat(np.repeat(keep.reshape(co, ci), BLOCK, axis=0), BLOCK, axis=1)[:rows]
    return np.where(mask, w, 0).astype(w.dtype)


# ---------------------------------------------------------------- channel pruning
@dataclass
class ChannelGroup:
    """Channels that must be pruned together (Torch-Pruning's dependency-graph idea): every
    activation whose last axis is the same channel space -- a conv / FC output, what flows
    through channel-wise ops (activations, pools, depthwise), and the operands and output
    of an elementwise ADD / MUL / ... (a residual joins its branches' spaces into one)."""
    producers: list[Node]                                   # CONV2D / FC: weight axis 0
    channels: int
    tensors: list[str] = field(default_factory=list)        # last dim shrinks
    channelwise: list[Node] = field(default_factory=list)   # DW convs, pools, activations
    sinks: list[Node] = field(default_factory=list)         # CONV2D / FC input channels
    flattens: list[tuple[Node, int]] = field(default_factory=list)  # (RESHAPE, H*W)
    flat_fcs: list[tuple[Node, int]] = field(default_factory=list)  # (FC, H*W) behind one
    consts: list[str] = field(default_factory=list)         # per-channel operands of ADD/MUL

    @property
    def producer(self) -> Node:
        """The first producer: its output names the group (keys of apply_channel_keep)."""
        return self.producers[0]


class _Spaces:
    """Union-find over activation tensors that share one channel space."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.fixed: dict[str, str] = {}                      # root -> why not prunable

    def find(self, t: str) -> str:
        self.parent.setdefault(t, t)
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            if rb in self.fixed:
                self.fixed.setdefault(ra, self.fixed.pop(rb))

    def fix(self, t: str, why: str) -> None:
        self.fixed.setdefault(self.find(t), why)


def channel_groups(g: Graph) -> tuple[list[ChannelGroup], list[str]]:
    """Prunable channel groups, and why each other CONV2D/FC output is not prunable."""
    cons = g.consumers()
    sp = _Spaces()
    act = {t for t, ten in g.tensors.items() if not ten.is_const}
    members: dict[str, list[tuple[str, Any]]] = {}          # tensor -> roles it plays

    def role(t: str, kind: str, item: Any) -> None:
        members.setdefault(t, []).append((kind, item))

    for t in g.inputs:
        sp.fix(t, "a graph input")
    for t in g.outputs:
        sp.fix(t, "its output is a graph output")
    for n in g.nodes:
        label = f"{n.op} '{n.name or n.outputs[0]}'"
        x = n.inputs[0] if n.inputs else ""
        shape = g.tensors[x].shape if x in g.tensors else ()
        out = n.outputs[0]
        ins = [i for i in n.inputs if i in act]
        if n.op in (Op.CONV2D, Op.FC) and len(g.tensors[out].shape) >= 2 \
                and not any(i in act for i in n.inputs[1:]):
            role(out, "producer", n)
            if n.op == Op.CONV2D or len(shape) == 2:
                role(x, "sink", n)
            else:
                sp.fix(x, f"feeds {label} with rank {len(shape)}")
        elif n.op == Op.RESHAPE and len(shape) == 4 and x in act and tuple(n.attrs.shape) == (
                shape[0], int(np.prod(shape[1:]))) and out not in g.outputs and all(
                u.op == Op.FC and u.inputs[0] == out and u.inputs[1] not in act
                for u in cons.get(out, [])) and cons.get(out):
            hw = shape[1] * shape[2]
            role(x, "flatten", (n, hw))
            for u in cons[out]:
                role(x, "flat_fc", (u, hw))
        elif n.op in CHANNELWISE and x in act and _channelwise_ok(n, len(shape)) \
                and not any(i in act for i in n.inputs[1:]):
            sp.union(x, out)
            role(out, "channelwise", n)
        elif OPS[n.op].elementwise and OPS[n.op].n_inputs == (2, 2) and len(
                g.tensors[out].shape) >= 2:
            c = g.tensors[out].shape[-1]
            for i in n.inputs:
                ti = g.tensors[i]
                if i in act and ti.shape and ti.shape[-1] == c and c > 1:
                    sp.union(out, i)
                elif i not in act and ti.data is not None and ti.data.ndim and \
                        ti.data.shape[-1] == c and c > 1:
                    role(out, "const", i)
                elif i in act and ti.shape and ti.shape[-1] != 1:
                    sp.fix(out, f"{label} broadcasts a {ti.shape[-1]}-channel operand")
                    sp.fix(i, f"broadcast by {label}")
        else:
            for i in ins:
                sp.fix(i, f"feeds {label} (channels must match)")
            for o in n.outputs:
                sp.fix(o, f"produced by {label}")
    for t in act:
        sp.find(t)
    # a tensor produced by nothing we understand (not conv / FC / channel-wise / binary)
    made = {o for n in g.nodes for o in n.outputs}
    for t in act - made:
        sp.fix(t, "not produced by an op")
    groups: dict[str, ChannelGroup] = {}
    for t in sorted(act, key=lambda t: _order(g).get(t, -1)):
        r = sp.find(t)
        grp = groups.get(r)
        if grp is None:
            shape = g.tensors[t].shape
            grp = groups[r] = ChannelGroup([], shape[-1] if shape else 0)
        grp.tensors.append(t)
        for kind, item in members.get(t, []):
            if kind == "producer":
                grp.producers.append(item)
            elif kind == "channelwise":
                grp.channelwise.append(item)
            elif kind == "sink":
                grp.sinks.append(item)
            elif kind == "flatten":
                grp.flattens.append(item)
                grp.tensors.append(item[0].outputs[0])
            elif kind == "flat_fc":
                grp.flat_fcs.append(item)
            else:
                grp.consts.append(item)
    out_groups, skipped = [], []
    for r, grp in groups.items():
        why = sp.fixed.get(r) or (None if grp.channels > 1 else "a single channel")
        if not grp.producers:
            continue
        if why is None and any(g.producers().get(t) is None for t in grp.tensors
                               if g.tensors[t].shape and t not in g.inputs):
            why = "a tensor of it has no producer"
        if why is None:
            out_groups.append(grp)
        else:
            skipped.extend(f"{p.name or p.outputs[0]}: {why}" for p in grp.producers)
    return out_groups, skipped


def _order(g: Graph) -> dict[str, int]:
    """Tensor -> index of the node that makes it (graph inputs -1)."""
    return {o: k for k, n in enumerate(g.nodes) for o in n.outputs}


def _channelwise_ok(n: Node, rank: int) -> bool:
    if n.op == Op.DWCONV2D:
        return n.attrs.depth_multiplier == 1
    if n.op == Op.MEAN:                 # spatial only: the channel axis stays last
        return (rank - 1) not in n.attrs.axes
    if n.op == Op.PAD:
        return tuple(n.attrs.pads[-1]) == (0, 0) if n.attrs.pads else True
    return True


def _l1(g: Graph, n: Node) -> np.ndarray:
    w = g.tensors[n.inputs[1]].data
    return np.abs(w).reshape(w.shape[0], -1).sum(axis=1)


def group_importance(g: Graph, grp: ChannelGroup) -> np.ndarray:
    """Per channel of a group: the squared L2 norm of every weight slice tied to it (the
    producers' filters, depthwise taps, the consumers' input columns), each layer's share
    divided by its mean so a wide layer does not outvote a narrow one."""
    score = np.zeros(grp.channels)

    def add(v: np.ndarray) -> None:
        nonlocal score
        score = score + v / max(float(v.mean()), 1e-12)
    for p in grp.producers:
        w = g.tensors[p.inputs[1]].data
        add((w.reshape(w.shape[0], -1).astype(np.float64) ** 2).sum(axis=1))
    for n in grp.channelwise:
        if n.op == Op.DWCONV2D:
            w = g.tensors[n.inputs[1]].data
            add((w.reshape(-1, w.shape[-1]).astype(np.float64) ** 2).sum(axis=0))
    for n in grp.sinks:
        w = g.tensors[n.inputs[1]].data
        add((w.reshape(-1, w.shape[-1]).astype(np.float64) ** 2).sum(axis=0))
    for n, hw in grp.flat_fcs:
        w = g.tensors[n.inputs[1]].data
        add((w.reshape(w.shape[0], hw, -1).astype(np.float64) ** 2).sum(axis=(0, 1)))
    return score


@dataclass
class _SinkSystem:
    """One consumer of a group as a least-squares problem over its input columns: the
    normal equations of [X 1] (X: the unpruned graph's input to it, columns tap * C + c,
    as its weights are laid out) and its output Y = [X 1] [W b]'."""
    node: Node
    taps: int
    g: np.ndarray                       # [K+1, K+1]
    wb: np.ndarray                      # [K+1, O]: the sink's weights and bias
    power: float                        # |Y|^2

    def cols(self, keep: np.ndarray, c: int) -> np.ndarray:
        """Columns of the channels `keep` (sorted) and the ones column."""
        idx = (np.arange(self.taps)[:, None] * c + np.asarray(keep)[None, :]).ravel()
        return np.append(idx, self.taps * c)


def _sink_systems(g: Graph, grp: ChannelGroup, env: dict[str, np.ndarray],
                  max_rows: int = 8192) -> list[_SinkSystem]:
    from edgeforge.quantize.lstsq import layer_features
    rng = np.random.default_rng(0)
    out = []
    for n, hw in [(n, 1) for n in dict.fromkeys(grp.sinks)] + list(grp.flat_fcs):
        w = g.tensors[n.inputs[1]].data.astype(np.float64)
        b = g.tensors[n.inputs[2]].data if len(n.inputs) > 2 and n.inputs[2] else None
        f = layer_features(env[n.inputs[0]], n, w.shape).reshape(-1, w[0].size)
        if f.shape[0] > max_rows:
            f = f[rng.choice(f.shape[0], max_rows, replace=False)]
        fx = np.concatenate([f, np.ones((f.shape[0], 1))], axis=1)
        wb = np.concatenate([w.reshape(w.shape[0], -1),
                             (np.zeros(w.shape[0]) if b is None else b)[:, None]], 1).T
        gram = fx.T @ fx
        out.append(_SinkSystem(n, w[0].size // grp.channels, gram, wb,
                               float(np.einsum("ko,kl,lo->", wb, gram, wb))))
    return out


def reconstruction_order(g: Graph, groups: list[ChannelGroup], data: Any,
                         ridge: float = 1e-3) -> dict[str, np.ndarray]:
    """Per group, channels in keep-first order chosen by what their removal costs the
    consumers once they are refitted (least squares on the kept channels, as distillation
    will do; ThiNet / He et al. 2017 with the refit): backward elimination, each step
    removing the channel whose columns add the least error, w_J' (Ginv_JJ)^-1 w_J summed
    over the consumers' outputs (each consumer's error divided by its output power), then
    downdating the inverse. A channel another one duplicates costs nothing to remove."""
    from edgeforge.quantize.calibrate import batch_runner, load_calib
    arrays = [a[:128] for a in load_calib(data, g)]
    env = batch_runner(g)(arrays)
    orders = {}
    for grp in groups:
        c = grp.channels
        systems = _sink_systems(g, grp, env)
        if not systems:
            orders[grp.producer.outputs[0]] = np.argsort(-group_importance(g, grp),
                                                         kind="stable")
            continue
        state = []
        for s in systems:
            lam = ridge * max(float(np.trace(s.g)) / len(s.g), 1e-12)
            inv = np.linalg.inv(s.g + lam * np.eye(len(s.g)))
            state.append([inv, inv @ s.g @ s.wb, np.arange(len(s.g))])
        left, removed = list(range(c)), []
        while len(left) > 1:
            costs = np.zeros(len(left))
            for s, (inv, w, active) in zip(systems, state):
                for i, ch in enumerate(left):
                    j = np.flatnonzero((active % c == ch) & (active < s.taps * c))
                    wj = w[j]
                    costs[i] += float(np.sum(wj * np.linalg.solve(inv[np.ix_(j, j)], wj)))\
                        / max(s.power, 1e-30)
            ch = left.pop(int(np.argmin(costs)))
            removed.append(ch)
            for st, s in zip(state, systems):
                inv, w, active = st
                j = (active % c == ch) & (active < s.taps * c)
                r = ~j
                t = inv[np.ix_(r, j)] @ np.linalg.inv(inv[np.ix_(j, j)])
                st[0] = inv[np.ix_(r, r)] - t @ inv[np.ix_(j, r)]
                st[1] = w[r] - t @ w[j]
                st[2] = active[r]
        orders[grp.producer.outputs[0]] = np.array(left + removed[::-1])
    return orders


def _refit_sinks(pg: Graph, grp: ChannelGroup, systems: list[_SinkSystem], keep: np.ndarray,
                 ridge: float = 1e-3) -> None:
    """Write the consumers' least-squares weights on the kept channels into pruned graph pg
    (in place), as distillation would."""
    keep = np.sort(keep)
    for s in systems:
        cols = s.cols(keep, grp.channels)
        if not (len(s.node.inputs) > 2 and s.node.inputs[2]):
            cols = cols[:-1]
        sub = s.g[np.ix_(cols, cols)]
        lam = ridge * max(float(np.trace(sub)) / len(cols), 1e-12)
        sol = np.linalg.solve(sub + lam * np.eye(len(cols)), (s.g @ s.wb)[cols])
        wt = pg.tensors[s.node.inputs[1]]
        k = s.taps * len(keep)
        wt.data = np.ascontiguousarray(sol[:k].T.reshape(wt.data.shape)).astype(np.float32)
        if len(cols) > k:
            pg.tensors[s.node.inputs[2]].data = sol[k].astype(np.float32)


def apply_channel_keep(g: Graph, groups: list[ChannelGroup],
                       keep: dict[str, np.ndarray]) -> Graph:
    """A copy of g with only the `keep[group.producer output]` channels of each group
    (indices); records the kept indices per tensor in meta["kept_channels"]."""
    out = _copy(g)
    kept = dict(out.meta.get("kept_channels", {}))
    nodes = {n.outputs[0]: i for i, n in enumerate(out.nodes)}
    for grp in groups:
        k = np.sort(np.asarray(keep[grp.producer.outputs[0]]))
        if len(k) == grp.channels:
            continue
        for p in grp.producers:
            _take(out, p.inputs[1], k, 0)
            if len(p.inputs) > 2 and p.inputs[2]:
                _take(out, p.inputs[2], k, 0)
        for n in grp.channelwise:
            if n.op == Op.DWCONV2D:
                _take(out, n.inputs[1], k, 3)
                if len(n.inputs) > 2 and n.inputs[2]:
                    _take(out, n.inputs[2], k, 0)
        for name in dict.fromkeys(grp.consts):
            _take(out, name, k, -1)
        for n in dict.fromkeys(grp.sinks):
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


def channel_prune(g: Graph, remove: float, *, min_channels: int = 1, data: Any = None,
                  metric: str = "macs", levels: int = 8,
                  importance: str = "reconstruction") -> Graph:
    """Remove channels of every prunable group (lowest group importance first) until the
    graph's MACs (`metric="macs"`) or int8 weight bytes (`"flash"`) fall by `remove`.

    Without `data`, one keep ratio for every group (found by bisection). With `data`
    (calibration inputs), per-group ratios: each group's output loss when it alone keeps
    k channels (k in steps of 1/`levels`) is measured, and the group whose next step
    costs the least loss per unit of metric saved is cut, until the target is met."""
    if not 0.0 < remove < 1.0:
        raise PruneError(f"--prune-channels {remove}: the fraction of MACs to remove must be "
                         f"in (0, 1)")
    if metric not in ("macs", "flash"):
        raise PruneError(f"metric {metric!r}: 'macs' or 'flash'")
    groups, skipped = channel_groups(g)
    if not groups:
        raise PruneError(f"{g.name}: no prunable CONV2D/FC layer ({'; '.join(skipped)})")

    def cost(gg: Graph) -> int:
        return int(gg.macs() if metric == "macs" else int8_weight_bytes(gg))
    base = cost(g)
    target = base * (1.0 - remove)
    order = {grp.producer.outputs[0]: np.argsort(-group_importance(g, grp), kind="stable")
             for grp in groups}
    if data is not None and importance == "reconstruction":
        order = reconstruction_order(g, groups, data)

    def pruned(counts: dict[str, int]) -> Graph:
        return apply_channel_keep(g, groups, {o: order[o][:counts[o]] for o in order})

    def uniform(ratio: float) -> dict[str, int]:
        return {o: max(min_channels, round(ratio * len(idx))) for o, idx in order.items()}

    floor = cost(pruned(uniform(0.0)))
    what = "MACs" if metric == "macs" else "int8 weight bytes"
    if floor > target:
        raise PruneError(f"{g.name}: channel pruning can remove at most "
                         f"{1 - floor / base:.0%} of the {what} (asked {remove:.0%}); not "
                         f"prunable: {'; '.join(skipped) or 'none'}")
    if data is None:
        lo, hi = 0.0, 1.0                  # invariant: uniform(lo) meets the target
        for _ in range(30):
            mid = (lo + hi) / 2
            if cost(pruned(uniform(mid))) <= target:
                lo = mid
            else:
                hi = mid
        counts, how = uniform(lo), f"uniform keep ratio {lo:.3f}"
    else:
        counts = _allocate(g, groups, order, pruned, cost, target, data, min_channels, levels)
        how = "per-group ratios by output loss"
    out = pruned(counts)
    out.meta["channel_prune"] = {
        "remove": remove, "metric": metric, "allocation": how,
        "macs_before": g.macs(), "macs_after": out.macs(),
        "int8_weight_bytes_before": int8_weight_bytes(g),
        "int8_weight_bytes_after": int8_weight_bytes(out),
        "groups": [{"producers": [p.name or p.outputs[0] for p in grp.producers],
                    "channels": [grp.channels, counts[grp.producer.outputs[0]]]}
                   for grp in groups],
        "not_prunable": skipped}
    return out


def _allocate(g: Graph, groups: list[ChannelGroup], order: dict[str, np.ndarray], pruned: Any,
              cost: Any, target: float, data: Any, min_channels: int,
              levels: int) -> dict[str, int]:
    """Greedy per-group channel counts: cut the group whose next step down loses the least
    output fidelity (relative MSE vs the unpruned graph, that group pruned alone and its
    consumers refitted) per unit of cost saved, until cost <= target."""
    from edgeforge.compress.guard import run_output
    from edgeforge.quantize.calibrate import batch_runner, load_calib
    # consumers refitted on one half, loss measured on the other: a refit judged on its own
    # samples looks better than it is, most for an FC (one row per sample)
    arrays = [a[:256] for a in load_calib(data, g)]
    half = max(1, arrays[0].shape[0] // 2) if arrays[0].shape[0] > 1 else 0
    env = batch_runner(g)([a[:half] if half else a for a in arrays])
    arrays = [a[half:] for a in arrays]
    by_out = {grp.producer.outputs[0]: grp for grp in groups}
    systems = {o: _sink_systems(g, grp, env) for o, grp in by_out.items()}
    last = g.producers().get(g.outputs[0])       # a classifier: compare logits, not softmax
    tensor = last.inputs[0] if last is not None and last.op == Op.SOFTMAX else None
    ref = run_output(g, arrays, tensor=tensor)
    power = max(float(np.mean(ref ** 2)), 1e-30)
    full = {o: len(idx) for o, idx in order.items()}
    step = {o: max(1, -(-n // levels)) for o, n in full.items()}
    loss: dict[tuple[str, int], float] = {}

    def sens(o: str, k: int) -> float:
        if (o, k) not in loss:
            pg = pruned({**full, o: k})
            _refit_sinks(pg, by_out[o], systems[o], order[o][:k])
            out = run_output(pg, arrays, tensor=tensor)
            loss[(o, k)] = float(np.mean((out - ref) ** 2)) / power
        return loss[(o, k)]
    counts = dict(full)
    now = cost(g)
    while now > target:
        best = None
        for o in order:
            k = max(min_channels, counts[o] - step[o])
            if k >= counts[o]:
                continue
            c = cost(pruned({**counts, o: k}))
            saved = now - c
            if saved <= 0:
                continue
            score = (sens(o, k) - (sens(o, counts[o]) if counts[o] < full[o] else 0.0)) / saved
            if best is None or score < best[0]:
                best = (score, o, k, c)
        if best is None:
            break
        _, o, k, now = best
        counts[o] = k
    return counts


# ---------------------------------------------------------------- one call for compile
def _finetune(student: Graph, teacher: Graph, fit: Any, skipped: list[str], verbose: int
              ) -> Graph:
    """compress.finetune on `student`, or `student` itself (and a warning in `skipped`)
    when the graph has an op with no gradient."""
    from edgeforge.compress.finetune import FinetuneError, finetune
    try:
        return finetune(student, teacher, fit, verbose=verbose)
    except FinetuneError as e:
        skipped.append(f"{e}: kept the layer-wise refit")
        return student


def compress(g: Graph, calib: Any = None, *, prune: float | None = None,
             prune_channels: float | None = None, distill: bool | None = None,
             prune_scope: str = "layer", val_data: Any = None,
             max_sqnr_drop: float | None = None, min_accuracy: float | None = None,
             target_macs: int | None = None, target_flash: int | None = None,
             prune_blocks: bool = False, finetune: bool | None = None, verbose: int = 0
             ) -> tuple[Graph, dict[str, Any]]:
    """The compile pipeline's compression step on a float graph: channel pruning, then
    magnitude pruning, then (with calibration data, by default) layer-wise distillation on
    80% of it (all of it with `val_data`), followed after channel pruning (`finetune`
    None) by end-to-end distillation on the same inputs (compress.finetune; a graph with
    an op it has no gradient for keeps the layer-wise refit, with a warning). Each step's
    fidelity cost is measured (compress.guard) on the held-out 20%, or on `val_data` (x and
    optional labels y: then accuracy too); `warnings` in the report name the steps that cost
    too much. With `max_sqnr_drop` (dB) and / or `min_accuracy`, the given pruning amounts are the strongest tried: the strongest scale of them that
    stays within the bounds is kept (compress.guard.search).
    Returns the graph and a report: stats before and after, per-step fidelity, warnings."""
    from edgeforge.compress import guard
    from edgeforge.quantize.calibrate import load_calib
    from edgeforge.quantize.quantize import prepare_float
    metric, target_flag = "macs", ""
    if target_macs is not None or target_flash is not None:    # absolute -> a fraction
        if prune_channels or (target_macs is not None and target_flash is not None):
            raise PruneError("give one of --prune-channels, --target-macs, --target-flash")
        base = g.macs() if target_macs is not None else int8_weight_bytes(g)
        want = target_macs if target_macs is not None else target_flash
        metric = "macs" if target_macs is not None else "flash"
        if not 0 < want < base:
            raise PruneError(f"--target-{'macs' if metric == 'macs' else 'flash'} {want}: "
                             f"must be between 0 and the model's {base:,}")
        prune_channels = 1.0 - want / base
        target_flag = f"--target-{'macs' if metric == 'macs' else 'flash'} {want}"
    if prune_blocks and not prune:
        raise PruneError("--prune-blocks shapes --prune: give --prune SPARSITY too")
    bounded = max_sqnr_drop is not None or min_accuracy is not None
    if min_accuracy is not None and min_accuracy > 1:
        min_accuracy /= 100.0                       # given in percent
    if bounded and calib is None:
        raise PruneError("--max-sqnr-drop / --min-accuracy need --calib data (to measure)")
    if bounded and not (prune or prune_channels):
        raise PruneError("--max-sqnr-drop / --min-accuracy bound a search over --prune or "
                         "--prune-channels: give one (the strongest setting to try)")
    if distill is None:
        distill = calib is not None                 # refit by default when it can
    if finetune is None:            # not inside a bounded search: it would train each try
        finetune = bool(distill and (prune_channels or target_macs or target_flash)
                        and not bounded)
    skipped: list[str] = []
    teacher = prepare_float(g)
    fit = ev = None
    report: dict[str, Any] = {"before": compression_stats(teacher)}
    if calib is not None:           # refit on 80%, measure on the held-out 20% (or val_data)
        arrays = load_calib(calib, teacher)
        n = arrays[0].shape[0]
        # with --val-data the refit takes every calibration sample (val data measures)
        cut = n - max(1, n // 5) if n >= 10 and val_data is None else n
        fit, held = [a[:cut] for a in arrays], [a[cut:] if cut < n else a for a in arrays]
        ev = guard.eval_set(teacher, val_data if val_data is not None else held)
        if min_accuracy is not None and ev.labels is None:
            raise PruneError("--min-accuracy needs labels: pass --val-data DATA.npz with x "
                             "and y")
        report["baseline"] = {"int8_sqnr_db": guard.int8_baseline(teacher, fit, ev),
                              "accuracy": ev.teacher_accuracy, "eval": ev.source,
                              "samples": int(ev.arrays[0].shape[0])}
    elif distill:
        raise PruneError("--distill needs --calib data (the teacher's activations)")
    int8_db = report["baseline"]["int8_sqnr_db"] if ev is not None else None

    def build(t: float) -> tuple[Graph, list[dict[str, Any]]]:
        """The pipeline with every pruning amount scaled by t; rows: each step's cost."""
        out, rows = teacher, []

        def step(name: str, setting: str, gg: Graph) -> Graph:
            row: dict[str, Any] = {"step": name, "setting": setting}
            if ev is not None:
                row.update(guard.fidelity(ev, gg))
                row["sqnr_drop_db"] = guard.sqnr_drop(int8_db, row["sqnr_db"])
            row.update({k: compression_stats(gg)[k] for k in ("macs", "weight_bytes",
                                                                "sparsity")})
            rows.append(row)
            return gg
        if prune_channels:
            out = step("prune_channels", target_flag if target_flag and t == 1.0
                       else f"--prune-channels {prune_channels * t:.3g}",
                       channel_prune(out, prune_channels * t, data=fit, metric=metric))
        if prune:
            out = step("prune", f"--prune {prune * t:.3g}" + " --prune-blocks" * prune_blocks,
                       magnitude_prune(out, sparsity=prune * t, scope=prune_scope,
                                       blocks=prune_blocks))
        if distill:
            from edgeforge.compress.distill import distill as refit
            out = refit(out, teacher, fit, verbose=verbose)
            if finetune:
                out = _finetune(out, teacher, fit, skipped, verbose)
            out = step("distill", "--distill", out)
        return out, rows

    def attempt(t: float) -> tuple[Graph, list[dict[str, Any]]] | None:
        try:                        # a setting past what the model allows just fails
            return build(t)
        except PruneError:
            return None

    def ok(res: tuple[Graph, list[dict[str, Any]]] | None) -> bool:
        return res is not None and guard.within(res[1][-1], int8_db, max_sqnr_drop,
                                                min_accuracy)

    scale = 1.0
    if bounded:
        scale, res = guard.search(attempt, ok)
        out, rows = res if res is not None else (teacher, [])
        report["search"] = {"max_sqnr_drop_db": max_sqnr_drop, "min_accuracy": min_accuracy,
                            "scale": scale, "prune": prune and prune * scale or None,
                            "prune_channels": prune_channels and prune_channels * scale
                            or None}
    else:
        out, rows = build(1.0)
    report["steps"] = rows
    if "channel_prune" in out.meta:
        report["channel_prune"] = out.meta["channel_prune"]
    if distill and rows:
        report["distilled"] = out.meta.get("distilled", [])
    report["after"] = compression_stats(out)
    warnings: list[str] = []
    if bounded and scale == 0.0:
        warnings.append("no pruning setting tried stays within the bound (the weakest was "
                        f"{1 / 32:.0%} of the one given); compiled without pruning")
    elif ev is not None and rows and not bounded:     # a bounded search already fits
        warnings = guard.warnings_for(" ".join(r["setting"] for r in rows), rows[-1], ev,
                                      int8_db, guard.WARN_SQNR_DROP_DB,
                                      guard.WARN_ACCURACY_DROP)
    report["warnings"] = warnings + skipped[:1]
    if "finetune" in out.meta:
        report["finetune"] = out.meta["finetune"]
    if ev is not None and rows:
        report["output_sqnr_db"] = rows[-1]["sqnr_db"]
        report["output_sqnr_samples"] = int(ev.arrays[0].shape[0])   # not used for the refit
    out.meta["compress"] = report
    return out, report
