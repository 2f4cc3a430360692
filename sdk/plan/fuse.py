"""Residual blocks run row by row: CONV2D -> CONV2D -> ADD/SUB as one step.

In a ResNet block `y = add(conv2(conv1(x)), skip)` the two conv outputs are as large as the
block's input, so run op by op the arena holds skip, conv1's output and (part of) conv2's
at once: ResNet-8's first block alone needs 3 x 16 KiB minus the in-place lag. Run as
ef_conv_pair_add_s8 (runtime/c/kernels/ref/conv_pair_add_s8.c), conv1's output lives in a
band of the rows one conv2 output row reads, conv2's output in one row that is added to
skip's row at once, and the sum is written over skip (the ADD's ordinary in-place rule).
Every kernel call is the linked kernel on a window of rows with the pad it has there, so
the bytes equal the three ops run whole (MCUNetV2's patch-based inference, one row high).

The planner (plan.memory, with inplace_kernels) keeps a fusion only when the arena shrinks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from edgeforge.ir import Graph, Node, Op
from edgeforge.plan.scratch import (
    DSP_ADD_MIN,
    REF_ADD_TABLE_MIN,
    _isas,
    conv2d_scratch,
    conv_kernel,
    packed_bits,
)
from edgeforge.qparams16 import is_s16_node

KERNEL = "ef_conv_pair_add_s8"
ADD_KERNELS = {Op.ADD: "ef_add_s8", Op.SUB: "ef_sub_s8"}
CONV_KERNELS = ("ef_conv2d_s8", "ef_conv2d_1x1_s8", "ef_conv2d_shallow_s8")   # ef_conv_fn


@dataclass(frozen=True)
class PairAdd:
    """conv1 -> conv2 -> add, run at the add's step; `conv_first`: conv2's output is the
    add's first input. x is conv1's input, skip the add's other input."""
    conv1: Node
    conv2: Node
    add: Node
    conv_first: bool
    group: int = 1                  # conv2 rows summed per ADD call

    def out_rows(self, g: Graph) -> int:
        return _hw(g, self.add.outputs[0])[1]

    @property
    def x(self) -> str:
        return self.conv1.inputs[0]

    @property
    def skip(self) -> str:
        return self.add.inputs[1 if self.conv_first else 0]

    @property
    def hidden(self) -> tuple[str, str]:
        """The two conv outputs, which never exist whole."""
        return self.conv1.outputs[0], self.conv2.outputs[0]


def _hw(g: Graph, name: str) -> tuple[int, int, int, int]:
    s = (1,) * (4 - len(g.tensors[name].shape)) + tuple(int(d) for d in g.tensors[name].shape)
    return s[-4], s[-3], s[-2], s[-1]


def _rows(conv: Node, g: Graph) -> list[tuple[int, int]]:
    """Input rows [lo, hi] each output row's window covers (ef_nn_conv_row)."""
    a = conv.attrs
    h = _hw(g, conv.inputs[0])[1]
    kh = _hw(g, conv.inputs[1])[1]
    out = []
    for r in range(_hw(g, conv.outputs[0])[1]):
        top = r * a.stride[0] - a.pad[0]
        out.append((max(top, 0), min(top + (kh - 1) * a.dilation[0], h - 1)))
    return out


def band_rows(conv2: Node, g: Graph) -> int:
    return (_hw(g, conv2.inputs[1])[1] - 1) * conv2.attrs.dilation[0] + 1


def scratch_bytes(f: PairAdd, g: Graph, isa: str) -> int:
    """The band, `group` conv2 output rows (each rounded up to 4, as the C), then what the
    three kernels take in turn: the convs' scratch, the add's two rescale tables for a
    group as long as its kernel set builds them for (addsub_scratch; without them the
    add costs ~3x the instructions)."""
    _, _, w1, c1 = _hw(g, f.conv1.outputs[0])
    _, _, w2, c2 = _hw(g, f.conv2.outputs[0])
    band = (band_rows(f.conv2, g) * w1 * c1 + 3) & ~3
    n = f.group * w2 * c2
    tables = max(2 * 256 * 4 if n >= (REF_ADD_TABLE_MIN if i == "ref" else DSP_ADD_MIN)
                 else 0 for i in _isas(isa))
    return band + ((n + 3) & ~3) + max(conv2d_scratch(f.conv1, g, isa),
                                             conv2d_scratch(f.conv2, g, isa), tables)


def _only_reader(g: Graph, t: str, reader: Node, readers: dict[str, int]) -> bool:
    return (readers.get(t, 0) == 1 and t not in g.outputs
            and sum(1 for i in reader.inputs if i == t) == 1)


def _safe(f: PairAdd, g: Graph) -> bool:
    """Geometry the row loop handles: batch 1, every window has a row, and when skip is x
    itself, no conv1 row computed after output row r reads an x row <= r (row r of the sum
    is written over it)."""
    if any(_hw(g, t)[0] != 1 for t in (f.x, f.skip, f.add.outputs[0])):
        return False
    if not (_hw(g, f.skip) == _hw(g, f.conv2.outputs[0]) == _hw(g, f.add.outputs[0])):
        return False
    r1, r2 = _rows(f.conv1, g), _rows(f.conv2, g)
    if any(lo > hi for lo, hi in r1 + r2):
        return False
    if f.skip != f.x:
        return True
    return all(hi + 1 >= len(r1) or r1[hi + 1][0] > r for r, (_, hi) in enumerate(r2))


def candidates(g: Graph, nodes: list[Node], groups: dict[str, int] | None = None
               ) -> dict[int, PairAdd]:
    """Fusable triples at consecutive steps of this schedule, keyed by the add's step;
    `groups`: add output -> rows per ADD call (default 1)."""
    readers: dict[str, int] = {}
    for nd in nodes:
        for t in nd.inputs:
            if t:
                readers[t] = readers.get(t, 0) + 1
    out: dict[int, PairAdd] = {}
    for s in range(2, len(nodes)):
        c1, c2, add = nodes[s - 2], nodes[s - 1], nodes[s]
        if (c1.op, c2.op) != (Op.CONV2D, Op.CONV2D) or add.op not in ADD_KERNELS:
            continue
        if s - 2 in out or s - 1 in out or any(is_s16_node(n, g) for n in (c1, c2, add)):
            continue
        if packed_bits(c1, g) or packed_bits(c2, g) or c2.inputs[0] != c1.outputs[0]:
            continue
        if any(conv_kernel(c, g) not in CONV_KERNELS for c in (c1, c2)):
            continue
        y2 = c2.outputs[0]
        if y2 not in add.inputs[:2] or not _only_reader(g, c1.outputs[0], c2, readers):
            continue
        if not _only_reader(g, y2, add, readers):
            continue
        f = PairAdd(c1, c2, add, add.inputs[0] == y2)
        if not g.tensors[f.skip].is_const and not g.tensors[f.x].is_const and _safe(f, g):
            out[s] = replace(f, group=(groups or {}).get(add.outputs[0], 1))
    return out
