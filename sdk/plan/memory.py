"""Static arena planner: buffers with lifetimes in, byte offsets out.

The interface is deliberately small (STYLE.md habit 6, after TFLM's MicroMemoryPlanner):

    BufferReq(name, size, first, last, offset=None, share=())
    plan_greedy(reqs, align=16) -> ArenaPlan(offsets, size)      greedy by size
    plan_best(reqs, align=16)   -> ArenaPlan                    best of every strategy
    ArenaPlan.render() / .overlaps() / .misaligned()
    lower_bound(reqs)           -> max over steps of the live bytes
    check_limits(plan, graph)   -> PlanError unless every size / offset fits the C types

A buffer is live on the closed step range [first, last]; a scratch buffer has first == last.
Two buffers live at the same step normally get disjoint bytes. The one exception is `share`:
an op whose kernel reads its input in raster order may write its output over that input if
the output starts far enough below it (sdk/plan/inplace.py derives how far from the kernel
geometry). `share=(("x", d),)` on buffer y says "y may overlap x provided
y.offset - x.offset <= d"; d = 0 is a plain in-place op, d = -544 means y must start at least
544 bytes before x. The check is pairwise, which is exact: the hazard is a write to y
clobbering a byte of x that is read later, and each input's future reads are independent.

Every strategy is an ORDER in which buffers are placed first-fit (lowest aligned offset free
during the buffer's lifetime); strategies are interchangeable, and plan_best keeps the
smallest arena (Pisarchyk & Lee 2020, "Efficient memory management for deep neural net
inference": greedy by size and greedy by breadth).
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import OPS, Graph

if TYPE_CHECKING:
    from edgeforge.plan.fuse import PairAdd


class PlanError(EdgeforgeError):
    """Buffer requests that cannot be planned (negative size, pinned buffers clash, ...)."""


@dataclass(frozen=True)
class BufferReq:
    name: str
    size: int                       # bytes
    first: int                      # first step the buffer is live (written)
    last: int                       # last step it is live (read); scratch: first == last
    offset: int | None = None       # pin to this byte offset
    share: tuple[tuple[str, int], ...] = ()   # (other, d): may overlap other if off-other.off <= d

    def live_with(self, other: BufferReq) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class ArenaPlan:
    offsets: dict[str, int]
    size: int                       # arena bytes (the end of the highest buffer, aligned)
    reqs: tuple[BufferReq, ...] = ()
    strategy: str = ""
    align: int = 16

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs live at the same step whose bytes overlap and no `share` permits it."""
        bad = []
        reqs = [r for r in self.reqs if r.size > 0]
        steps = _StepIndex(max((r.last for r in reqs), default=-1) + 1)
        for i, r in enumerate(reqs):
            steps.add(i, r)
        for i, a in enumerate(reqs):
            for j in sorted(j for j in steps.live(a) if j > i):
                b = reqs[j]
                oa, ob = self.offsets[a.name], self.offsets[b.name]
                if oa + a.size <= ob or ob + b.size <= oa:
                    continue
                if not (_shares_ok(a, oa, b, ob) or _shares_ok(b, ob, a, oa)):
                    bad.append((a.name, b.name))
        return bad

    def misaligned(self) -> list[str]:
        return [n for n, o in self.offsets.items() if o % self.align]

    def render(self, width: int = 64) -> str:
        """ASCII timeline: one row per step, one letter per buffer, columns = arena bytes."""
        if not self.reqs:
            return "(empty plan)"
        steps = max(r.last for r in self.reqs) + 1
        scale = max(1, -(-self.size // width))
        sym = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        lines = [f"arena {self.size} B, {scale} B/column, strategy {self.strategy or '?'}"]
        for s in range(steps):
            row = ["."] * width
            for k, r in enumerate(self.reqs):
                if r.first <= s <= r.last and r.size:
                    o = self.offsets[r.name]
                    for c in range(o // scale, min(width, -(-(o + r.size) // scale))):
                        row[c] = sym[k % len(sym)] if row[c] == "." else "*"
            lines.append(f"{s:4d} |{''.join(row)}|")
        for k, r in enumerate(self.reqs):
            lines.append(f"  {sym[k % len(sym)]} {self.offsets[r.name]:>8} +{r.size:<7} "
                         f"[{r.first},{r.last}] {r.name[:60]}")
        lines.append("  * = bytes shared by an in-place op")
        return "\n".join(lines)


class _StepIndex:
    """Which added buffers are live with a given one, without testing every pair: `cover[s]`
    holds those live at step s, `starts[s]` those born at s. The buffers live with r are
    cover[r.first] plus those born in (r.first, r.last], two disjoint sets, so a query costs
    the answer plus r's span, and the plan of a 1000-op chain stays near-linear."""

    def __init__(self, steps: int) -> None:
        self.cover: list[list] = [[] for _ in range(steps)]
        self.starts: list[list] = [[] for _ in range(steps)]

    def add(self, key, r: BufferReq) -> None:
        for s in range(r.first, r.last + 1):
            self.cover[s].append(key)
        self.starts[r.first].append(key)

    def live(self, r: BufferReq) -> list:
        out = list(self.cover[r.first])
        for s in range(r.first + 1, r.last + 1):
            out += self.starts[s]
        return out


def live_pairs(reqs: Sequence[BufferReq]) -> dict[str, list[BufferReq]]:
    """For each buffer with bytes, the other buffers with bytes live at some same step (the
    only ones first-fit must keep clear of); every strategy's place() reuses one table."""
    sized = [r for r in reqs if r.size]
    steps = _StepIndex(max((r.last for r in sized), default=-1) + 1)
    for i, r in enumerate(sized):
        steps.add(i, r)
    return {r.name: [sized[j] for j in steps.live(r) if j != i] for i, r in enumerate(sized)}


def _shares_ok(a: BufferReq, oa: int, b: BufferReq, ob: int) -> bool:
    return any(other == b.name and oa - ob <= d for other, d in a.share)


def lower_bound(reqs: Iterable[BufferReq]) -> int:
    """Max over steps of the bytes live at that step (no two buffers sharing bytes)."""
    reqs = list(reqs)
    if not reqs:
        return 0
    return max(_breadth(reqs))


def _breadth(reqs: Sequence[BufferReq]) -> list[int]:
    """Bytes live at each step (a difference array: linear in buffers + steps)."""
    delta = [0] * (max(r.last for r in reqs) + 2)
    for r in reqs:
        delta[r.first] += r.size
        delta[r.last + 1] -= r.size
    live, total = [], 0
    for d in delta[:-1]:
        total += d
        live.append(total)
    return live


def _align_up(x: int, a: int) -> int:
    return -(-x // a) * a


def _forbidden(x: BufferReq, b: BufferReq, ob: int) -> tuple[int, int]:
    """Open interval of offsets where x would clash with b placed at ob."""
    lo, hi = ob - x.size, ob + b.size
    for other, d in x.share:               # x.off <= ob + d is allowed
        if other == b.name:
            lo = max(lo, ob + d)
    for other, d in b.share:               # ob - x.off <= d  <=>  x.off >= ob - d is allowed
        if other == x.name:
            hi = min(hi, ob - d)
    return lo, hi


def _check(reqs: Iterable[BufferReq]) -> None:
    for r in reqs:
        if r.size < 0 or r.first > r.last or r.first < 0:
            raise PlanError(f"buffer {r.name!r}: size {r.size}, steps [{r.first},{r.last}]")


def place(order: Sequence[BufferReq], align: int = 16, strategy: str = "",
          live: dict[str, list[BufferReq]] | None = None) -> ArenaPlan:
    """First-fit placement in the given order; pinned buffers (offset set) are placed first.
    `live` is live_pairs(order), if the caller has it already."""
    offsets: dict[str, int] = {}
    _check(order)
    for r in order:
        if r.offset is not None:
            if r.offset % align:
                raise PlanError(f"buffer {r.name!r} pinned at {r.offset}, not {align}-aligned")
            offsets[r.name] = r.offset
    pinned = bool(offsets)
    live = live_pairs(order) if live is None else live
    for r in order:
        if r.offset is not None:
            continue
        if r.size == 0:
            offsets[r.name] = 0
            continue
        walls = []
        for b in live[r.name]:
            ob = offsets.get(b.name)
            if ob is not None:
                walls.append(_forbidden(r, b, ob) if r.share or b.share
                             else (ob - r.size, ob + b.size))
        cand = 0                                # lowest aligned offset in no open wall
        for lo, hi in sorted(w for w in walls if w[0] < w[1]):
            if lo >= cand:
                break                           # this and every later wall start above cand
            if hi > cand:
                cand = _align_up(hi, align)
        offsets[r.name] = cand
    end = max((offsets[r.name] + r.size for r in order), default=0)
    plan = ArenaPlan(offsets, _align_up(end, align), tuple(order), strategy, align)
    clash = plan.overlaps() if pinned else []     # first fit alone never overlaps
    if clash:
        raise PlanError(f"pinned buffers overlap: {clash[:4]}")
    return plan


# ---------------------------------------------------------------- strategies: orders
def order_by_size(reqs: Sequence[BufferReq]) -> list[BufferReq]:
    """Largest first; among equals, the later-born first (outputs before their inputs, so an
    in-place output is placed before the input it may slide under)."""
    return sorted(reqs, key=lambda r: (-r.size, -r.first, r.name))


def order_by_breadth(reqs: Sequence[BufferReq]) -> list[BufferReq]:
    """Steps in decreasing live bytes; at each step its unplaced buffers, largest first."""
    if not reqs:
        return []
    breadth = _breadth(reqs)
    at = _StepIndex(len(breadth))
    for r in reqs:
        at.add(r, r)
    out: list[BufferReq] = []
    seen: set[str] = set()
    for s in sorted(range(len(breadth)), key=lambda s: (-breadth[s], s)):
        for r in sorted(at.cover[s], key=lambda r: -r.size):
            if r.name not in seen:
                seen.add(r.name)
                out.append(r)
    return out


def order_by_first_use(reqs: Sequence[BufferReq]) -> list[BufferReq]:
    return sorted(reqs, key=lambda r: (r.first, -r.size, r.name))


def order_by_last_use(reqs: Sequence[BufferReq]) -> list[BufferReq]:
    return sorted(reqs, key=lambda r: (-r.last, -r.size, r.name))


STRATEGIES: dict[str, Callable[[Sequence[BufferReq]], list[BufferReq]]] = {
    "size": order_by_size,
    "breadth": order_by_breadth,
    "first_use": order_by_first_use,
    "last_use": order_by_last_use,
}


def plan_greedy(reqs: Sequence[BufferReq], align: int = 16) -> ArenaPlan:
    """Greedy by size (largest first, first fit)."""
    return place(order_by_size(reqs), align, "size")


def plan_best(reqs: Sequence[BufferReq], align: int = 16, restarts: int = 48,
              seed: int = 0) -> ArenaPlan:
    """Every named strategy plus `restarts` seeded random orders; the smallest arena wins
    (ties go to the earlier strategy, so the result is deterministic)."""
    reqs = list(reqs)
    names = {r.name for r in reqs}
    if len(names) != len(reqs):
        raise PlanError("duplicate buffer names")
    best: ArenaPlan | None = None
    _check(reqs)
    live = live_pairs(reqs)
    for name, fn in STRATEGIES.items():
        p = place(fn(reqs), align, name, live)
        if best is None or p.size < best.size:
            best = p
    rng = random.Random(seed)
    base = order_by_size(reqs)
    for k in range(restarts if len(reqs) > 1 else 0):
        # perturb greedy-by-size: random keys weighted towards size keep the good structure
        order = sorted(base, key=lambda r: -r.size * (0.5 + rng.random()))
        p = place(order, align, f"random{k}", live)
        if p.size < best.size:
            best = p
    assert best is not None or not reqs
    return best if best is not None else ArenaPlan({}, 0, (), "empty", align)


# ---------------------------------------------------------------- graphs
@dataclass(frozen=True)
class TensorPlan:
    """Where one activation tensor lives: arena[offset : offset + size] during steps
    [first, last] (schedule steps, i.e. positions in GraphPlan.order)."""
    name: str
    offset: int
    size: int
    first: int
    last: int
    buffer: str                     # the arena buffer; RESHAPE outputs share their input's


@dataclass(frozen=True)
class Share:
    """An output allowed to overlap an input it consumes last (see sdk/plan/inplace.py)."""
    step: int
    output: str
    input: str
    d: int                          # output.offset - input.offset must be <= d when overlapping
    rule: str
    used: bool                      # the chosen offsets really overlap the two


@dataclass
class GraphPlan:
    """The arena plan of an int8 IR graph, as codegen and the manifest consume it.

    Codegen MUST run the nodes in `order` (indices into graph.nodes). plan_graph only leaves
    the graph's own order when another one gives a strictly smaller arena (never for a chain,
    nor for KWS / ResNet-8); `plan.schedule(graph)` returns the graph with its nodes in plan
    order (the same object when nothing moved), so emitters can simply walk its nodes.
    Tensor t lives at arena + offsets[t] (== tensors[t].offset); `size` is the arena bytes.
    A node's kernel scratch (if any) is arena[scratch[out][0] : +scratch[out][1]], keyed by
    the node's first output tensor name; where kernels[out] names an in-place variant
    (ef_inplace.h), that symbol is called with that scratch as its ctx.
    Between two steps, free_after(step, keep) lists the bytes that hold nothing (the poison
    tests fill them with garbage); keep = graph outputs (+ inputs with preserve_inputs).
    """
    order: list[int]                # schedule: node indices into graph.nodes
    tensors: dict[str, TensorPlan]  # every non-constant tensor (graph inputs/outputs included)
    scratch: dict[str, tuple[int, int]]   # node's first output -> (offset, size), if size > 0
    arena_size: int                 # bytes, a multiple of `align`
    lower_bound: int                # tensor-level bound for this order: max live bytes, no sharing
    shares: list[Share]
    arena: ArenaPlan                # the buffer-level plan (render() it to see the timeline)
    isa: str = "generic"
    kernels: dict[str, str] = field(default_factory=dict)  # node's first output -> in-place
    #                                 kernel symbol to call instead (only with inplace_kernels)
    steps: list[str] = field(default_factory=list)  # first output of each node, plan order
    fused: dict[str, PairAdd] = field(default_factory=dict)  # add output -> its row-fused
    #                                 conv pair (plan.fuse): run at the add's step, the two
    #                                 conv steps run nothing and their outputs have 0 bytes

    def offset(self, tensor: str) -> int:
        return self.tensors[tensor].offset

    @property
    def offsets(self) -> dict[str, int]:
        return {t: tp.offset for t, tp in self.tensors.items()}

    @property
    def size(self) -> int:
        return self.arena_size

    def schedule(self, graph: Graph) -> Graph:
        """`graph` with its nodes in plan order (the same object if already so). Idempotent:
        nodes are matched by their first output, so a scheduled graph schedules to itself."""
        by_out = {n.outputs[0]: n for n in graph.nodes}
        nodes = [by_out[o] for o in self.steps]
        if nodes == graph.nodes:
            return graph
        g = graph.copy()
        g.nodes = nodes
        return g

    def rows(self) -> list[dict]:
        """Manifest `plan` rows: tensor, offset, size, first, last (schedule order)."""
        return [{"tensor": t.name, "offset": t.offset, "size": t.size, "first": t.first,
                 "last": t.last} for t in sorted(self.tensors.values(),
                                                 key=lambda t: (t.first, t.offset, t.name))]

    def live_after(self, step: int, graph_outputs: Iterable[str] = ()) -> list[tuple[int, int]]:
        """Byte ranges [start, end) that must survive from the end of `step` to the next step:
        tensors read later, plus `graph_outputs` (read by the caller after invoke)."""
        keep = set(graph_outputs)
        spans = sorted((t.offset, t.offset + t.size) for t in self.tensors.values()
                       if t.size and t.first <= step and (t.last > step or t.name in keep))
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    def free_after(self, step: int, graph_outputs: Iterable[str] = ()) -> list[tuple[int, int]]:
        """Complement of live_after in [0, arena_size): bytes the plan says are garbage."""
        out, pos = [], 0
        for a, b in self.live_after(step, graph_outputs):
            if a > pos:
                out.append((pos, a))
            pos = max(pos, b)
        if pos < self.arena_size:
            out.append((pos, self.arena_size))
        return out


def _buffers(g: Graph, order: list[int], isa: str, allow_inplace: bool, inplace_kernels: bool,
             preserve_inputs: bool, kernel_scratch: bool = True, fuse: bool = False,
             groups: dict[str, int] | None = None) -> tuple[list[BufferReq], dict[str, str], dict[str, tuple[int, int]],
                        list[tuple[int, str, str, int, str]], dict[str, str], dict[str, str],
                        dict[str, PairAdd]]:
    """Buffer requests of `g` scheduled in `order`; returns (reqs, tensor -> buffer,
    tensor -> (first, last), share candidates, scratch buffer -> node's first output,
    node's first output -> in-place kernel symbol, add output -> row-fused block)."""
    from edgeforge.plan import fuse as fusion
    from edgeforge.plan.inplace import KernelVariant, inplace_candidates, kernel_variant
    from edgeforge.plan.scratch import scratch_bytes, unpacked_bytes

    nodes = [g.nodes[i] for i in order]
    last_step = max(len(nodes) - 1, 0)
    fused = fusion.candidates(g, nodes, groups or {}) if fuse else {}
    hidden = {t for f in fused.values() for t in f.hidden}
    life: dict[str, list[int]] = {}
    for t in g.inputs:
        life[t] = [0, 0]
    for s, nd in enumerate(nodes):
        for t in nd.inputs:
            if t and not g.tensors[t].is_const:
                life.setdefault(t, [s, s])[1] = s
        for t in nd.outputs:
            life[t] = [s, s]
    for t in g.outputs + (g.inputs if preserve_inputs else []):
        if t in life:
            life[t][1] = last_step
    for s, f in fused.items():           # conv1 runs inside the add's step
        life[f.x][1] = max(life[f.x][1], s)
    # RESHAPE (OPS[op].alias) outputs are views of their input: one buffer per alias group
    root = {t: t for t in life}

    def find(t: str) -> str:
        while root[t] != t:
            t = root[t]
        return t

    for nd in nodes:
        if OPS[nd.op].alias and nd.inputs[0] in root:
            root[find(nd.outputs[0])] = find(nd.inputs[0])
    groups: dict[str, list[str]] = {}
    for t in life:
        groups.setdefault(find(t), []).append(t)
    outs = set(g.outputs) | (set(g.inputs) if preserve_inputs else set())
    span = {b: (min(life[t][0] for t in ts), max(life[t][1] for t in ts))
            for b, ts in groups.items()}
    size = {b: max(0 if t in hidden else g.tensors[t].nbytes for t in ts)
            for b, ts in groups.items()}
    buf_of = {t: find(t) for t in life}

    def overwritable(xb: str, yb: str, s: int) -> bool:
        """No reader after step s, not read by the caller, not the output itself."""
        return xb != yb and span[xb][1] == s and not any(t in outs for t in groups[xb])

    shares: list[tuple[int, str, str, int, str]] = []
    variants: dict[str, KernelVariant] = {}
    for s, nd in enumerate(nodes) if allow_inplace else ():
        if not nd.outputs or nd.outputs[0] not in buf_of or OPS[nd.op].alias:
            continue
        if nd.outputs[0] in hidden:
            continue
        yb = buf_of[nd.outputs[0]]
        kv = kernel_variant(nd, g) if inplace_kernels else None
        if kv is not None and overwritable(buf_of[nd.inputs[kv[0]]], yb, s):
            k, v, rule = kv
            variants[nd.outputs[0]] = v
            shares.append((s, yb, buf_of[nd.inputs[k]], v.d, rule))
            continue
        for k, d, rule in inplace_candidates(nd, g):
            xb = buf_of[nd.inputs[k]]
            if not overwritable(xb, yb, s):
                continue                          # read later, or the caller reads it
            if any(sh[1] == yb and sh[2] == xb for sh in shares):
                continue                          # same input twice (x + x)
            shares.append((s, yb, xb, d, rule))
    reqs = [BufferReq(b, size[b], *span[b],
                      share=tuple((x, d) for _, y, x, d, _ in shares if y == b))
            for b in groups]
    scratch_of: dict[str, str] = {}
    for s, (i, nd) in enumerate(zip(order, nodes)):
        v = variants.get(nd.outputs[0]) if nd.outputs else None
        n = v.scratch if v else scratch_bytes(nd, g, isa) if kernel_scratch else 0
        if s in fused:
            n = fusion.scratch_bytes(fused[s], g, isa)
        elif nd.outputs and nd.outputs[0] in hidden:
            n = 0
        if kernel_scratch:       # packed weights unpack in front of the kernel's own scratch
            n += unpacked_bytes(nd, g)
        if n:
            name = f"scratch#{nd.outputs[0]}"
            reqs.append(BufferReq(name, n, s, s))
            scratch_of[name] = nd.outputs[0]
    tlife = {t: (v[0], v[1]) for t, v in life.items()}
    kernels = {o: v.kernel for o, v in variants.items()}
    return (reqs, buf_of, tlife, shares, scratch_of, kernels,
            {f.add.outputs[0]: f for f in fused.values()})


def plan_graph(graph: Graph, *, isa: str = "generic", allow_inplace: bool = True,
               inplace_kernels: bool = False, preserve_inputs: bool = False, align: int = 16,
               reorder: bool = True, max_orders: int = 24,
               kernel_scratch: bool = True) -> GraphPlan:
    """Plan the arena of an int8 IR graph (see GraphPlan for what codegen gets).

    With `reorder`, tries every valid node order when there are at most `max_orders` (else
    the graph's own order and a memory-greedy one), plans each with plan_best and keeps the
    smallest arena (ties: the earliest order, i.e. the graph's own). Without it, plans the
    graph's own order only.

    `allow_inplace` lets outputs overlap inputs they read last, with the lag the raster rules
    derive (sdk/plan/inplace.py; any kernel keeping the ef_kernels.h raster contract works).
    `inplace_kernels` additionally plans the true in-place variants (ef_dwconv2d_inplace_s8,
    ef_conv2d_1x1_inplace_s8: no lag, a small scratch); codegen must then call
    plan.kernels[out] for those nodes, with ctx = arena + plan.scratch[out]. It also tries
    running residual blocks row by row (plan.fuse: plan.fused, ef_conv_pair_add_s8) and
    keeps that where the arena is strictly smaller.

    Like TFLM, the plan reuses the input tensors' bytes once they are consumed: write the
    inputs before EVERY invoke. `preserve_inputs` keeps them intact to the end instead
    (costs RAM: ResNet-8 +3 KB).

    `kernel_scratch=False` leaves the kernels' working sets out (a plan for another
    runtime, which sizes its own: tflm_offline_plan)."""
    from edgeforge.plan.schedule import candidate_orders

    def build(order: list[int], fuse: bool, groups: dict[str, int], worse: int
              ) -> GraphPlan | None:
        """The plan of this order, or None if it has no arena under `worse` bytes."""
        reqs, buf_of, tlife, shares, scratch_of, kernels, fused = _buffers(
            graph, order, isa, allow_inplace, inplace_kernels, preserve_inputs,
            kernel_scratch, fuse, groups)
        if fuse and not fused:
            return None
        arena = plan_best(reqs, align)
        if arena.size >= worse:
            return None
        off = arena.offsets
        byname = {r.name: r for r in reqs}
        hidden = {t for f in fused.values() for t in f.hidden}
        tensors = {t: TensorPlan(t, off[b], 0 if t in hidden else graph.tensors[t].nbytes,
                                 *tlife[t], b) for t, b in buf_of.items()}
        used = []
        for s, y, x, d, rule in shares:
            oy, ox = off[y], off[x]
            hit = oy < ox + byname[x].size and ox < oy + byname[y].size
            used.append(Share(s, y, x, d, rule, hit))
        tensor_reqs = [r for r in reqs if r.name not in scratch_of]
        return GraphPlan(order, tensors,
                         {o: (off[n], byname[n].size) for n, o in scratch_of.items()},
                         arena.size, lower_bound(tensor_reqs), used, arena, isa, kernels,
                         [graph.nodes[i].outputs[0] for i in order], fused)

    best: GraphPlan | None = None
    orders = candidate_orders(graph, max_orders) if reorder else [list(range(len(graph.nodes)))]
    for order in orders:
        for fuse in (False, True) if inplace_kernels else (False,):
            p = build(order, fuse, {}, best.arena_size if best else 1 << 62)
            best = p or best
    # a fused block sums `group` conv rows per ADD call (each call rebuilds the ADD's
    # tables): the most rows, up to 16, that leave the arena as small
    groups: dict[str, int] = {}
    for out, f in (best.fused if best else {}).items():
        for group in (16, 8, 4, 2):
            if group < f.out_rows(graph):
                p = build(best.order, True, {**groups, out: group}, best.arena_size + 1)
                if p is not None:
                    best, groups[out] = p, group
                    break
    if best is None:                              # no nodes at all
        return GraphPlan([], {}, {}, 0, 0, [], ArenaPlan({}, 0), isa)
    return best


def tflm_offline_plan(graph: Graph) -> GraphPlan:
    """Our plan of `graph` for TFLM's offline planner (the .tflite's "OfflineMemoryAllocation"
    metadata, micro_allocation_info.cc): `graph`'s own node order (the file's operator
    order, which TFLM's lifetimes follow), no in-place overlaps (TFLM's kernels do not keep
    our raster-order contract; RESHAPE views stay: TFLM's reshape skips the copy when input
    and output share bytes) and no kernel scratch (TFLM requests its own and fits it around
    these offsets). Tensors live at the same steps as TFLM marks them, so two tensors TFLM
    holds at once never share bytes."""
    return plan_graph(graph, allow_inplace=False, reorder=False, kernel_scratch=False)


# ---------------------------------------------------------------- limits
C_INT32_MAX = 2**31 - 1     # the C package's ef_dims, arena offsets and ef_ctx.size are int32_t


def check_limits(plan: GraphPlan, graph: Graph, where: str, *, ram: int | None = None,
                 board: str = "") -> None:
    """One PlanError unless every size and offset the plan and graph hand to codegen fits:
    the arena within the board's RAM (when a board is known) and every tensor's bytes,
    element count, offset + size and scratch within int32 (C int32_t wraps silently, and a
    wrapped offset writes outside the arena)."""
    if ram is not None and plan.arena_size > ram:
        raise PlanError(f"{where}: needs an arena of {plan.arena_size:,} B but board {board} "
                        f"has {ram:,} B of RAM")
    if plan.arena_size > C_INT32_MAX:
        raise PlanError(f"{where}: needs an arena of {plan.arena_size:,} B, past the "
                        f"{C_INT32_MAX:,} B the C package can address (int32 offsets)")
    for t in graph.tensors.values():
        n = math.prod(t.shape)
        if n * max(np.dtype(t.dtype).itemsize, 1) > C_INT32_MAX:
            raise PlanError(f"{where}: tensor '{t.name}' {list(t.shape)} {t.dtype} is past "
                            f"the {C_INT32_MAX:,} B the C package can address (int32 sizes)")
    spans = [(f"tensor '{t.name}'", t.offset, t.size) for t in plan.tensors.values()]
    spans += [(f"scratch of '{o}'", off, n) for o, (off, n) in plan.scratch.items()]
    for what, off, n in spans:
        if off < 0 or n < 0 or off + n > plan.arena_size:
            raise PlanError(f"{where}: the plan puts {what} at [{off}, {off + n}) outside "
                            f"the {plan.arena_size:,} B arena")
