"""Planner properties on random buffer sets and random int8 DAGs (hypothesis, bounded).

Also home of the independent plan checkers and the random graph generator that
tests/unit/test_plan.py and tests/c/test_inplace_poison.py reuse.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeforge.ir import (
    OPS,
    Act,
    BinaryAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    Graph,
    MeanAttrs,
    NoAttrs,
    Node,
    Op,
    PadAttrs,
    Pool2dAttrs,
    QuantParams,
    ReshapeAttrs,
    SoftmaxAttrs,
    Tensor,
    verify,
)
from edgeforge.plan.inplace import KERNEL_RULES, RULES
from edgeforge.plan.memory import (
    ArenaPlan,
    BufferReq,
    GraphPlan,
    lower_bound,
    plan_best,
    plan_graph,
)


# ---------------------------------------------------------------- independent checkers
def check_plan(p: ArenaPlan) -> None:
    """Every pair live at one step is disjoint unless its `share` permits the overlap; every
    offset is aligned; the arena holds every buffer. Written apart from ArenaPlan.overlaps."""
    reqs = list(p.reqs)
    for r in reqs:
        o = p.offsets[r.name]
        assert o % p.align == 0, (r.name, o)
        assert o >= 0 and o + r.size <= p.size, (r.name, o, r.size, p.size)
    for i, a in enumerate(reqs):
        for b in reqs[i + 1:]:
            if not (a.first <= b.last and b.first <= a.last) or not a.size or not b.size:
                continue
            oa, ob = p.offsets[a.name], p.offsets[b.name]
            if oa + a.size <= ob or ob + b.size <= oa:
                continue
            ok = any(n == b.name and oa - ob <= d for n, d in a.share) or \
                any(n == a.name and ob - oa <= d for n, d in b.share)
            assert ok, f"{a.name} [{oa},+{a.size}) and {b.name} [{ob},+{b.size}) overlap"


def check_graph_plan(g: Graph, p: GraphPlan, align: int = 16) -> None:
    """A GraphPlan is safe for `g`: valid order; live tensors disjoint unless RESHAPE views
    or a named rule allows the output over an input read for the last time; scratch free."""
    n = len(g.nodes)
    assert sorted(p.order) == list(range(n))
    nodes = [g.nodes[i] for i in p.order]
    ready = set(g.inputs) | {k for k, t in g.tensors.items() if t.is_const}
    for nd in nodes:
        assert all(not i or i in ready for i in nd.inputs), "order is not topological"
        ready.update(nd.outputs)
    first = {t: 0 for t in g.inputs}
    last = {t: 0 for t in g.inputs}
    for s, nd in enumerate(nodes):
        for t in nd.inputs:
            if t and not g.tensors[t].is_const:
                last[t] = s
        for t in nd.outputs:
            first[t] = last[t] = s
    for t in g.outputs:
        last[t] = n - 1
    view = {}                                       # RESHAPE output -> root it aliases
    for nd in nodes:
        if OPS[nd.op].alias:
            view[nd.outputs[0]] = view.get(nd.inputs[0], nd.inputs[0])

    def root(t: str) -> str:
        return view.get(t, t)

    def group_last(t: str) -> int:
        return max(last[u] for u in first if root(u) == root(t))

    def group_is_output(t: str) -> bool:
        return any(root(u) == root(t) for u in g.outputs)

    acts = list(first)
    assert set(p.tensors) == set(acts)
    for t in acts:
        tp = p.tensors[t]
        assert tp.offset % align == 0 and tp.offset + tp.size <= p.arena_size
        assert tp.size == g.tensors[t].nbytes
        if t in view:
            assert tp.offset == p.tensors[view[t]].offset, "RESHAPE must be a view"
    roots = [t for t in acts if t not in view]     # a view has its root's bytes and offset
    span = {r: (min(first[u] for u in acts if root(u) == r), group_last(r)) for r in roots}
    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            ta, tb = p.tensors[a], p.tensors[b]
            if not ta.size or not tb.size:
                continue
            if span[a][1] < span[b][0] or span[b][1] < span[a][0]:
                continue
            if ta.offset + ta.size <= tb.offset or tb.offset + tb.size <= ta.offset:
                continue
            assert _rule_allows(g, nodes, a, b, p, first, root, group_last, group_is_output) \
                or _rule_allows(g, nodes, b, a, p, first, root, group_last, group_is_output), \
                f"{a} and {b} overlap without a rule"
    for out, (off, size) in p.scratch.items():
        s = first[out]
        for t in acts:
            if first[t] <= s <= last[t] and p.tensors[t].size:
                tp = p.tensors[t]
                assert off + size <= tp.offset or tp.offset + tp.size <= off, "scratch clash"


def _rule_allows(g, nodes, x, y, p, first, root, group_last, group_is_output) -> bool:
    """y (an output) may overlap x: some view of x is a data input of y's producer, read
    there for the last time, not a graph output, and a rule's d holds."""
    s = first[y]
    nd = nodes[s]
    if y != nd.outputs[0] or group_last(x) != s or group_is_output(x):
        return False
    for k, t in enumerate(nd.inputs):
        if not t or t not in first or root(t) != x or k in OPS[nd.op].weights:
            continue
        if y in p.kernels:                          # a true in-place kernel variant
            v = next((r(nd, g, k) for r in KERNEL_RULES if r(nd, g, k)), None)
            return v is not None and v.kernel == p.kernels[y] and \
                p.tensors[y].offset - p.tensors[x].offset <= v.d and y in p.scratch
        for rule in RULES:
            d = rule(nd, g, k)
            if d is not None:
                if p.tensors[y].offset - p.tensors[x].offset <= d:
                    return True
                break
    return False


# ---------------------------------------------------------------- random int8 graphs
def _q(rng: np.random.Generator) -> QuantParams:
    return QuantParams(np.float32(rng.uniform(0.02, 0.12)), int(rng.integers(-20, 21)))


def random_int8_graph(seed: int, n_ops: int | None = None) -> Graph:
    """A small random int8 DAG in the int8 IR form: conv / 1x1 / depthwise / pools / ADD and
    MUL of equal shapes / RELU / LOGISTIC / TANH / PAD / MEAN / RESHAPE / a flatten-FC-softmax
    head, with branches (any earlier tensor may be reused)."""
    rng = np.random.default_rng(seed)
    g = Graph(name="rand")
    h, w, c = int(rng.integers(3, 9)), int(rng.integers(3, 9)), int(rng.integers(1, 9))
    g.add_tensor(Tensor("in", (1, h, w, c), "int8", _q(rng)))
    g.inputs = ["in"]
    pool = ["in"]
    n_ops = int(rng.integers(2, 9)) if n_ops is None else n_ops
    for i in range(n_ops):
        x = pool[-1] if rng.random() < 0.6 else pool[int(rng.integers(len(pool)))]
        xs = g.tensors[x].shape
        if len(xs) != 4:
            x = pool[0]
            xs = g.tensors[x].shape
        _, h, w, c = xs
        kind = str(rng.choice(["conv", "conv1", "dw", "add", "maxpool", "avgpool", "relu",
                               "reshape", "mul", "logistic", "tanh", "pad", "mean", "head"]))
        y = f"t{i}"
        same = [t for t in pool if g.tensors[t].shape == xs]
        if kind == "add" and len(same) >= 1:
            other = same[int(rng.integers(len(same)))]
            g.add_tensor(Tensor(y, xs, "int8", _q(rng)))
            g.nodes.append(Node(Op.ADD, (x, other), (y,), BinaryAttrs(Act.RELU), f"add{i}"))
        elif kind in ("maxpool", "avgpool") and h >= 2 and w >= 2:
            op = Op.MAXPOOL2D if kind == "maxpool" else Op.AVGPOOL2D
            if rng.random() < 0.5:
                k, s, pad, oh, ow = (2, 2), (2, 2), (0, 0, 0, 0), h // 2, w // 2
            else:
                k, s, pad, oh, ow = (3, 3), (1, 1), (1, 1, 1, 1), h, w
            g.add_tensor(Tensor(y, (1, oh, ow, c), "int8", g.tensors[x].quant))
            g.nodes.append(Node(op, (x,), (y,), Pool2dAttrs(k, s, pad), f"pool{i}"))
        elif kind == "mul" and len(same) >= 1:
            other = same[int(rng.integers(len(same)))]
            g.add_tensor(Tensor(y, xs, "int8", _q(rng)))
            g.nodes.append(Node(Op.MUL, (x, other), (y,), BinaryAttrs(), f"mul{i}"))
        elif kind in ("logistic", "tanh"):
            op = Op.LOGISTIC if kind == "logistic" else Op.TANH
            scale, zp = OPS[op].fixed_out_q
            g.add_tensor(Tensor(y, xs, "int8", QuantParams(np.float32(scale), zp)))
            g.nodes.append(Node(op, (x,), (y,), NoAttrs(), f"{kind}{i}"))
        elif kind == "pad":
            pads = ((0, 0), (1, 0), (0, 1), (0, 0))
            g.add_tensor(Tensor(y, (1, h + 1, w + 1, c), "int8", g.tensors[x].quant))
            g.nodes.append(Node(Op.PAD, (x,), (y,), PadAttrs(pads), f"pad{i}"))
        elif kind == "mean":
            g.add_tensor(Tensor(y, (1, 1, 1, c), "int8", _q(rng)))
            g.nodes.append(Node(Op.MEAN, (x,), (y,), MeanAttrs((1, 2), True), f"mean{i}"))
        elif kind == "head":                        # flatten -> FC -> softmax
            flat, k = f"t{i}_flat", int(rng.integers(2, 11))
            g.add_tensor(Tensor(flat, (1, h * w * c), "int8", g.tensors[x].quant))
            g.nodes.append(Node(Op.RESHAPE, (x,), (flat,), ReshapeAttrs((1, h * w * c)),
                                f"flatten{i}"))
            ws = np.float32(rng.uniform(0.002, 0.02))
            g.const(f"w{i}", rng.integers(-127, 128, size=(k, h * w * c)).astype(np.int8),
                    QuantParams(ws, 0))
            g.const(f"w{i}_b", rng.integers(-2000, 2000, size=k).astype(np.int32),
                    QuantParams(g.tensors[x].quant.scale[0] * ws, 0))
            logits = f"t{i}_fc"
            g.add_tensor(Tensor(logits, (1, k), "int8", _q(rng)))
            g.nodes.append(Node(Op.FC, (flat, f"w{i}", f"w{i}_b"), (logits,), FcAttrs(),
                                f"fc{i}"))
            g.add_tensor(Tensor(y, (1, k), "int8", QuantParams(np.float32(1 / 256), -128)))
            g.nodes.append(Node(Op.SOFTMAX, (logits,), (y,), SoftmaxAttrs(1.0, 1), f"sm{i}"))
        elif kind == "relu":
            g.add_tensor(Tensor(y, xs, "int8", g.tensors[x].quant))
            g.nodes.append(Node(Op.RELU, (x,), (y,), NoAttrs(), f"relu{i}"))
        elif kind == "reshape":
            shape = (1, h * w, 1, c) if rng.random() < 0.5 else (1, h, w * c, 1)
            g.add_tensor(Tensor(y, shape, "int8", g.tensors[x].quant))
            g.nodes.append(Node(Op.RESHAPE, (x,), (y,), ReshapeAttrs(shape), f"reshape{i}"))
        elif kind == "dw":
            stride = (1, 1) if rng.random() < 0.7 else (2, 2)
            oh, ow = -(-h // stride[0]), -(-w // stride[1])
            ph = max(0, (oh - 1) * stride[0] + 3 - h)
            pw = max(0, (ow - 1) * stride[1] + 3 - w)
            pad = (ph // 2, pw // 2, ph - ph // 2, pw - pw // 2)
            wt, b = _weights(g, rng, f"w{i}", (1, 3, 3, c), x, 3, c)
            g.add_tensor(Tensor(y, (1, oh, ow, c), "int8", _q(rng)))
            g.nodes.append(Node(Op.DWCONV2D, (x, wt, b), (y,),
                                DwConv2dAttrs(stride, pad, act=Act.RELU), f"dw{i}"))
        else:
            k = 1 if kind == "conv1" else 3
            stride = (1, 1) if rng.random() < 0.7 else (2, 2)
            cout = int(rng.integers(1, 9)) if rng.random() < 0.5 else c
            oh, ow = -(-h // stride[0]), -(-w // stride[1])
            ph = max(0, (oh - 1) * stride[0] + k - h)
            pw = max(0, (ow - 1) * stride[1] + k - w)
            pad = (ph // 2, pw // 2, ph - ph // 2, pw - pw // 2)
            wt, b = _weights(g, rng, f"w{i}", (cout, k, k, c), x, 0, cout)
            g.add_tensor(Tensor(y, (1, oh, ow, cout), "int8", _q(rng)))
            act = Act.RELU if rng.random() < 0.5 else Act.NONE
            g.nodes.append(Node(Op.CONV2D, (x, wt, b), (y,), Conv2dAttrs(stride, pad, act=act),
                                f"conv{i}"))
        pool.append(y)
    used = {i for nd in g.nodes for i in nd.inputs}
    g.outputs = [t for t in pool[1:] if t not in used] or [pool[-1]]
    verify(g)
    return g


def _weights(g: Graph, rng: np.random.Generator, name: str, shape: tuple[int, ...], x: str,
             axis: int, cout: int) -> tuple[str, str]:
    ws = rng.uniform(0.002, 0.02, size=cout).astype(np.float32)
    g.const(name, rng.integers(-127, 128, size=shape).astype(np.int8),
            QuantParams(ws, np.zeros(cout, np.int64), axis))
    bs = g.tensors[x].quant.scale[0] * ws
    g.const(name + "_b", rng.integers(-2000, 2000, size=cout).astype(np.int32),
            QuantParams(bs, np.zeros(cout, np.int64), 0))
    return name, name + "_b"


# ---------------------------------------------------------------- properties
reqs_strategy = st.lists(
    st.tuples(st.integers(0, 300), st.integers(0, 6), st.integers(0, 4)),
    min_size=1, max_size=10)


@settings(max_examples=80, deadline=None)
@given(reqs_strategy, st.sampled_from([1, 4, 16]))
def test_random_buffers_never_clash(raw, align):
    reqs = [BufferReq(f"b{i}", size, first, first + span)
            for i, (size, first, span) in enumerate(raw)]
    p = plan_best(reqs, align=align, restarts=4)
    check_plan(p)
    assert p.overlaps() == []
    assert lower_bound(reqs) <= p.size <= sum(-(-r.size // align) * align for r in reqs)


@settings(max_examples=60, deadline=None)
@given(reqs_strategy, st.data())
def test_random_shares_are_respected(raw, data):
    reqs = []
    for i, (size, first, span) in enumerate(raw):
        share = ()
        if reqs and data.draw(st.booleans()):
            j = data.draw(st.integers(0, len(reqs) - 1))
            share = ((reqs[j].name, data.draw(st.integers(-64, 32))),)
        reqs.append(BufferReq(f"b{i}", size, first, first + span, share=share))
    p = plan_best(reqs, restarts=4)
    check_plan(p)
    assert p.overlaps() == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1), st.booleans(), st.booleans())
def test_random_dags_plan_safely(seed, inplace, kernels):
    g = random_int8_graph(seed)
    p = plan_graph(g, allow_inplace=inplace, inplace_kernels=kernels)
    check_graph_plan(g, p)
    if not inplace:
        assert not p.shares and p.arena_size >= p.lower_bound
    assert p.arena.overlaps() == []
