"""Which valid node order to plan: the arena depends on it for branching graphs.

`candidate_orders(g)` yields node-index orders, the graph's own order first. A chain has
exactly one; a graph with a few branches is enumerated exhaustively; beyond `limit` orders
we fall back to the graph's order plus a memory-greedy list schedule (run the ready node
that frees the most / allocates the least bytes next).
"""
from __future__ import annotations

from collections.abc import Iterator

from edgeforge.ir import Graph

MAX_ENUM_NODES = 300            # deeper graphs skip enumeration (recursion depth, time)


def _deps(g: Graph) -> tuple[list[set[int]], list[list[int]]]:
    prod = {o: i for i, n in enumerate(g.nodes) for o in n.outputs}
    preds = [{prod[t] for t in n.inputs if t in prod} for n in g.nodes]
    succs: list[list[int]] = [[] for _ in g.nodes]
    for i, ps in enumerate(preds):
        for p in ps:
            succs[p].append(i)
    return preds, succs


def topo_orders(g: Graph, limit: int) -> Iterator[list[int]]:
    """Every topological order (lexicographic by node index, so g.nodes' order comes first),
    stopping after `limit`."""
    preds, succs = _deps(g)
    n = len(g.nodes)
    indeg = [len(p) for p in preds]
    order: list[int] = []
    count = 0

    def rec() -> Iterator[list[int]]:
        nonlocal count
        if count >= limit:
            return
        if len(order) == n:
            count += 1
            yield list(order)
            return
        for i in range(n):
            if indeg[i] == 0 and i not in placed:
                placed.add(i)
                order.append(i)
                for s in succs[i]:
                    indeg[s] -= 1
                yield from rec()
                for s in succs[i]:
                    indeg[s] += 1
                order.pop()
                placed.discard(i)
                if count >= limit:
                    return

    placed: set[int] = set()
    yield from rec()


def greedy_order(g: Graph) -> list[int]:
    """List schedule: among ready nodes run the one with the smallest net byte change
    (outputs allocated minus inputs freed); ties go to the lower node index."""
    preds, succs = _deps(g)
    readers: dict[str, int] = {}
    for nd in g.nodes:
        for t in set(nd.inputs):
            if t:
                readers[t] = readers.get(t, 0) + 1
    keep = set(g.outputs)
    indeg = [len(p) for p in preds]
    ready = sorted(i for i in range(len(g.nodes)) if indeg[i] == 0)
    order: list[int] = []
    while ready:
        def delta(i: int) -> int:
            nd = g.nodes[i]
            alloc = sum(g.tensors[o].nbytes for o in nd.outputs)
            freed = sum(g.tensors[t].nbytes for t in set(nd.inputs)
                        if t and not g.tensors[t].is_const and readers.get(t) == 1
                        and t not in keep)
            return alloc - freed
        i = min(ready, key=lambda i: (delta(i), i))
        ready.remove(i)
        order.append(i)
        for t in set(g.nodes[i].inputs):
            if t:
                readers[t] -= 1
        for s in succs[i]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
        ready.sort()
    return order


def candidate_orders(g: Graph, limit: int = 24) -> list[list[int]]:
    """Orders worth planning: all of them if there are at most `limit`, else the graph's own
    order and the memory-greedy one."""
    if len(g.nodes) <= MAX_ENUM_NODES:
        orders = list(topo_orders(g, limit + 1))
        if len(orders) <= limit:
            return orders
    own = list(range(len(g.nodes)))
    greedy = greedy_order(g)
    return [own] if greedy == own else [own, greedy]
