"""Residual blocks run row by row (plan.fuse, ef_conv_pair_add_s8): the generated C, with
every byte the plan calls free poisoned after each op, gives runtime.reference's bytes on
block geometries beyond ResNet-8's (strides, dilation, 1x1, 5x5, skip == x or its own conv,
the conv as either ADD/SUB operand, shallow inputs), and the plan is smaller than unfused."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.ir import Act, BinaryAttrs, Conv2dAttrs, Graph, Node, Op, Tensor, verify
from edgeforge.plan import fuse
from edgeforge.plan.memory import plan_graph
from tests.c.test_dsp_kernels import use_dsp_kernels
from tests.c.test_inplace_poison import (
    assert_same,
    build,
    free_table,
    inputs_for,
    reference,
    run_exe,
    tools,  # noqa: F401  (fixture)
)
from tests.unit.test_plan_props import _q, _weights


def _out(n: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _conv(g: Graph, rng: np.random.Generator, name: str, x: str, cout: int, k: int, s: int,
          pad: int, d: int = 1) -> str:
    _, h, w, c = g.tensors[x].shape
    wt, b = _weights(g, rng, f"{name}_w", (cout, k, k, c), x, 0, cout)
    shape = (1, _out(h, k, s, pad, pad, d), _out(w, k, s, pad, pad, d), cout)
    g.add_tensor(Tensor(name, shape, "int8", _q(rng)))
    g.nodes.append(Node(Op.CONV2D, (x, wt, b), (name,),
                        Conv2dAttrs((s, s), (pad, pad, pad, pad), (d, d),
                                    Act.RELU if rng.random() < 0.5 else Act.NONE), name))
    return name


# (input h, w, c), conv1 (cout, k, stride, pad, dilation), conv2 (k, pad, dilation),
# projection (k, stride) of x as the skip or None (skip = x), conv output first, op
BLOCKS = {
    "resnet": ((12, 10, 8), (8, 3, 1, 1, 1), (3, 1, 1), None, False, Op.ADD),
    "stride2_projection": ((17, 13, 8), (16, 3, 2, 1, 1), (3, 1, 1), (1, 2), True, Op.ADD),
    "dilated_sub": ((11, 8, 4), (4, 3, 1, 2, 2), (3, 2, 2), None, True, Op.SUB),
    "k5_then_1x1": ((10, 7, 3), (8, 5, 1, 2, 1), (1, 0, 1), (1, 1), False, Op.ADD),
    "valid_pads": ((12, 12, 4), (8, 3, 1, 0, 1), (3, 0, 1), (5, 1), False, Op.SUB),
    # rows of 1,024 bytes: both kernel sets' ADD takes its rescale tables for each row
    "wide_rows": ((12, 64, 16), (16, 3, 1, 1, 1), (3, 1, 1), None, False, Op.ADD),
}


def block_graph(seed: int, spec) -> Graph:
    rng = np.random.default_rng(seed)
    (h, w, c), (c1, k1, s1, p1, d1), (k2, p2, d2), proj, conv_first, op = spec
    g = Graph(name="block")
    g.add_tensor(Tensor("x", (1, h, w, c), "int8", _q(rng)))
    g.inputs = ["x"]
    # the projection first, so the three fused ops adjoin in the graph's order
    skip = _conv(g, rng, "proj", "x", c1, proj[0], proj[1], 0) if proj else "x"
    a = _conv(g, rng, "c1", "x", c1, k1, s1, p1, d1)
    b = _conv(g, rng, "c2", a, c1 if proj else c, k2, 1, p2, d2)
    g.add_tensor(Tensor("y", g.tensors[b].shape, "int8", _q(rng)))
    g.nodes.append(Node(op, (b, skip) if conv_first else (skip, b), ("y",),
                        BinaryAttrs(Act.RELU if op == Op.ADD else Act.NONE), "add"))
    g.outputs = ["y"]
    verify(g)
    return g


@pytest.mark.parametrize("kernels", ["ref", "dsp"])
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_fused_block_equals_reference_with_a_poisoned_arena(tools, name, kernels,  # noqa: F811
                                                            tmp_path):
    """Both kernel sets (dsp: the Armv7E-M files on plain-C intrinsics, EF_DSP_EMULATE)."""
    g = block_graph(sum(map(ord, name)), BLOCKS[name])
    plan = plan_graph(g, inplace_kernels=True, reorder=False)
    assert list(plan.fused) == ["y"], "the block should run row by row"
    assert plan.arena_size < plan_graph(g, reorder=False).arena_size
    samples = inputs_for(g, 3, seed=2)
    exe = build(g, plan, tmp_path / name, free_table(plan, g),
                patch=use_dsp_kernels if kernels == "dsp" else None)
    assert_same(run_exe(exe, g, samples), reference(g, samples), f"{name} fused")


@pytest.mark.parametrize("kernels", ["ref", "dsp"])
def test_rows_grouped_per_add_where_the_arena_allows(tools, kernels, tmp_path):  # noqa: F811
    """Where the block stops being the arena's peak once fused (a wider conv after it
    becomes it), several conv rows are summed per ADD call (fewer calls and table builds):
    11 rows in groups of 4, so a short last group too."""
    g = block_graph(7, ((11, 10, 8), (8, 3, 1, 1, 1), (3, 1, 1), None, False, Op.ADD))
    rng = np.random.default_rng(3)
    _conv(g, rng, "z", "y", 14, 3, 1, 1)
    g.outputs = ["z"]
    verify(g)
    plan = plan_graph(g, inplace_kernels=True, reorder=False)
    assert plan.fused["y"].group == 4
    assert plan.arena_size < plan_graph(g, reorder=False).arena_size
    samples = inputs_for(g, 3, seed=4)
    exe = build(g, plan, tmp_path / "grouped", free_table(plan, g),
                patch=use_dsp_kernels if kernels == "dsp" else None)
    assert_same(run_exe(exe, g, samples), reference(g, samples), "grouped rows")


def test_skip_rows_still_read_block_the_fusion():
    """skip == x and conv1's window reaching above its output row (pad top 2, bottom 0): x
    row r is still read after the sum's row r is written over it, so no fusion."""
    g = block_graph(5, ((9, 9, 4), (4, 3, 1, 1, 1), (3, 1, 1), None, False, Op.ADD))
    assert fuse.candidates(g, g.nodes)
    c1, c2, add = g.nodes
    high = g.copy()
    high.nodes = [Node(Op.CONV2D, c1.inputs, c1.outputs,
                       Conv2dAttrs((1, 1), (2, 1, 0, 1), (1, 1), c1.attrs.act), "c1"), c2, add]
    assert not fuse.candidates(high, high.nodes)
