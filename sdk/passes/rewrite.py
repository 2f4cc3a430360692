"""The few graph-editing helpers every pass shares: apply a rule, bypass a node, new consts.

A rule is `def rule(g, node) -> list[Node] | None`: None leaves `node` alone, a list replaces
it in place (the producers it swallowed become dead and are pruned afterwards).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeforge.ir import Graph, Node

Rule = Callable[[Graph, Node], "list[Node] | None"]


def apply_rule(g: Graph, rule: Rule, max_rounds: int = 20) -> int:
    """Run `rule` on every node until nothing changes (dead producers pruned between rounds).

    Replacements are revisited at once, so chains collapse within a round where they can.
    """
    total = 0
    for _ in range(max_rounds):
        changes, i = 0, 0
        while i < len(g.nodes):
            new = rule(g, g.nodes[i])
            if new is None:
                i += 1
                continue
            g.nodes[i:i + 1] = new
            changes += 1
        if not changes:
            break
        g.prune()
        total += changes
    return total


def const(g: Graph, name: str) -> np.ndarray | None:
    """The data of a constant tensor, or None for an activation / absent input."""
    t = g.tensors.get(name) if name else None
    return t.data if t is not None and t.is_const else None


def is_float(g: Graph, name: str) -> bool:
    return g.tensors[name].dtype == "float32" and g.tensors[name].quant is None


def producer(g: Graph, name: str) -> Node | None:
    for n in g.nodes:
        if name in n.outputs:
            return n
    return None


def users(g: Graph, name: str) -> list[Node]:
    return [n for n in g.nodes if name in n.inputs]


def sole_user(g: Graph, name: str) -> bool:
    """True when exactly one node reads `name` and it is not a graph output."""
    return name not in g.outputs and len(users(g, name)) == 1


def new_const(g: Graph, base: str, data: np.ndarray) -> str:
    name = g.unique_name(base)
    g.const(name, np.ascontiguousarray(data))
    return name


def bypass(g: Graph, node: Node, src: str) -> list[Node] | None:
    """Remove `node`, whose output equals tensor `src`: readers of the output read `src`.

    If the output is a graph output, `src` takes its name instead (when `src` is an
    activation made by a node and is neither a graph input nor another output).
    """
    out = node.outputs[0]
    if g.tensors[out].shape != g.tensors[src].shape:
        return None
    if out not in g.outputs:
        g.nodes = [n.with_(inputs=tuple(src if i == out else i for i in n.inputs))
                   for n in g.nodes]
        return []
    if src in g.inputs or src in g.outputs or g.tensors[src].is_const:
        return None
    g.tensors.pop(out)
    g.rename(src, out)    # `node` now reads and writes `out`; the caller's splice drops it
    return []


def op_counts(g: Graph) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in g.nodes:
        out[n.op.value] = out.get(n.op.value, 0) + 1
    return dict(sorted(out.items()))


def channel_vector(c: np.ndarray, channels: int) -> np.ndarray | None:
    """A constant that broadcasts along the last axis only -> float32 [channels], else None."""
    if c.size == 1:
        return np.full(channels, c.reshape(-1)[0], np.float32)
    if c.ndim >= 1 and c.shape[-1] == channels and c.size == channels:
        return c.reshape(-1).astype(np.float32)
    return None


