"""The arena planner's step index (plan.memory.live_pairs / _StepIndex): first fit only
looks at buffers live at a same step, so it gives exactly the plans of checking every pair,
in time that grows with the pairs that really coexist, not with the square of the buffers
(a Keras GRU unrolled to ~1000 ops spent most of its compile in the pairwise loop)."""
from __future__ import annotations

import random

import pytest

from edgeforge.plan import memory
from edgeforge.plan.memory import BufferReq, PlanError, live_pairs, lower_bound, place


def _pairwise_place(order: list[BufferReq], align: int) -> dict[str, int]:
    """First fit checking every placed buffer (the planner before the step index)."""
    offsets: dict[str, int] = {}
    placed: list[BufferReq] = []
    for r in order:
        if r.offset is not None:
            offsets[r.name] = r.offset
            placed.append(r)
    for r in order:
        if r.offset is not None:
            continue
        if r.size == 0:
            offsets[r.name] = 0
            continue
        walls = sorted(memory._forbidden(r, b, offsets[b.name]) for b in placed
                       if b.size and r.live_with(b))
        cand = 0
        for lo, hi in (w for w in walls if w[0] < w[1]):
            if lo >= cand:
                break
            if hi > cand:
                cand = -(-hi // align) * align
        offsets[r.name] = cand
        placed.append(r)
    return offsets


def _random_reqs(seed: int) -> list[BufferReq]:
    rng = random.Random(seed)
    n, steps = rng.randint(1, 60), rng.randint(1, 40)
    reqs = []
    for i in range(n):
        first = rng.randrange(steps)
        last = min(steps - 1, first + rng.choice([0, 0, 1, 2, 5, 30]))
        share = ()
        if reqs and rng.random() < 0.3:
            share = ((reqs[rng.randrange(len(reqs))].name, rng.choice([0, -16, -48, 32])),)
        reqs.append(BufferReq(f"b{i}", rng.choice([0, 1, 10, 16, 100, 512, 3000]), first,
                              last, share=share))
    return reqs


@pytest.mark.parametrize("seed", range(40))
def test_step_index_places_exactly_as_every_pair(seed):
    reqs = _random_reqs(seed)
    order = sorted(reqs, key=lambda r: random.Random(seed + 1).random())
    plan = place(order, 16)
    assert plan.offsets == _pairwise_place(order, 16)
    assert plan.overlaps() == []
    # the pairs it keeps clear of are exactly the pairs live at a same step
    sized = [r for r in reqs if r.size]
    for a in sized:
        assert {b.name for b in live_pairs(reqs)[a.name]} == \
            {b.name for b in sized if b is not a and a.live_with(b)}


@pytest.mark.parametrize("model", ["dscnn_kws", "mobilenet_v2", "resnet_small",
                                   "transformer_tiny", "unet_small"])
def test_zoo_plans_are_those_of_every_pair(model):
    """Keras zoo graphs as compile plans them (in-place kernels, row-fused blocks): every
    strategy's order places exactly as the pairwise first fit, so no arena grows."""
    from edgeforge.frontends import load
    from tests.conftest import ROOT
    g = load(ROOT / "tests" / "zoo" / "keras" / f"{model}.tflite")
    for fuse in (False, True):
        reqs = memory._buffers(g, list(range(len(g.nodes))), "generic", True, True, False,
                               True, fuse)[0]
        for fn in memory.STRATEGIES.values():
            order = fn(reqs)
            assert place(order, 16).offsets == _pairwise_place(order, 16)


def test_pinned_clash_is_still_reported():
    a = BufferReq("a", 32, 0, 3, offset=0)
    b = BufferReq("b", 32, 2, 4, offset=16)
    with pytest.raises(PlanError, match="pinned buffers overlap"):
        place([a, b])


def test_lower_bound_is_the_busiest_step():
    reqs = [BufferReq("a", 10, 0, 2), BufferReq("b", 7, 2, 5), BufferReq("c", 5, 4, 4)]
    assert lower_bound(reqs) == 17          # step 2: a + b (step 4: b + c = 12)


def test_a_long_chain_costs_linear_work(monkeypatch):
    """A 3000-buffer chain (each live with its neighbours only): plan_best builds the pair
    table once for all its strategies and the table holds 2 entries per buffer, so the
    work no longer grows with 3000^2 pair tests."""
    reqs = [BufferReq(f"t{i}", 64 + 16 * (i % 5), i, i + 1) for i in range(3000)]
    calls = []
    real = memory.live_pairs

    def counted(rs):
        table = real(rs)
        calls.append(sum(map(len, table.values())))
        return table
    monkeypatch.setattr(memory, "live_pairs", counted)
    plan = memory.plan_best(reqs)
    assert calls == [2 * (3000 - 1)]
    assert plan.size == lower_bound(reqs) and plan.overlaps() == []
