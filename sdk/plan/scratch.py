"""Scratch bytes each kernel takes from the arena: the Python mirror of the C
`ef_<op>_s8_scratch_size()` functions (tests/c/test_inplace_kernels.py compares them).

The arena is planned once per compiled DIR and `edgeforge build --kernels ref|dsp` links
either kernel set against that same plan, so every size here holds for both sets. Both keep
their working set on the stack (e.g. ef_dwconv2d_3x3_s8's 64 int32 accumulators), except the
two in-place variants, whose ring buffer comes from the arena; the DSP set reuses the
reference's scratch_size functions unchanged. `isa` names a kernel set whose working set
differs; there is none yet, so the only value is "generic". A kernel that needs arena
scratch (an im2col buffer) adds its size function here, next to the C one, and
plan.memory.plan_graph places that buffer as a one-step BufferReq (first == last).
"""
from __future__ import annotations

from collections.abc import Callable

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import Graph, Node, Op

ScratchFn = Callable[[Node, Graph, str], int]
ISAS = ("generic",)


def _check_isa(isa: str) -> None:
    if isa not in ISAS:
        raise EdgeforgeError(f"unknown kernel ISA {isa!r}; available: {', '.join(ISAS)}")


def conv2d_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_conv2d_s8 / ef_conv2d_1x1_s8: direct loops, no im2col."""
    _check_isa(isa)
    return 0


def dwconv2d_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_dwconv2d_s8 / ef_dwconv2d_3x3_s8: accumulators on the stack."""
    _check_isa(isa)
    return 0


def fc_scratch(node: Node, g: Graph, isa: str) -> int:
    _check_isa(isa)
    return 0


def softmax_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_softmax_s8: one row at a time, in registers."""
    _check_isa(isa)
    return 0


def dwconv2d_inplace_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_dwconv2d_inplace_s8_scratch_size: a ring of pad_top * W + pad_left + 1 input pixels
    (at most H * W): how far back a window reaches, plus the pixel being overwritten."""
    _check_isa(isa)
    _, h, w, c = g.tensors[node.inputs[0]].shape
    pt, pl = node.attrs.pad[0], node.attrs.pad[1]
    return min(pt * w + pl + 1, h * w) * c


def conv2d_1x1_inplace_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_conv2d_1x1_inplace_s8_scratch_size: one input pixel (C_IN bytes)."""
    _check_isa(isa)
    return g.tensors[node.inputs[0]].shape[-1]


def transpose_conv_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_transpose_conv_s8 gathers each output pixel's taps (no int32 scatter buffer as
    TFLM's kernel keeps): accumulators in registers."""
    _check_isa(isa)
    return 0


def lstm_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_lstm_s8_scratch_size: the cell (int16) and hidden (int8) states of every batch row,
    which start from their reset values each call, and four int16 gate rows."""
    _check_isa(isa)
    a = node.attrs
    x, h = g.tensors[node.inputs[0]].shape, g.tensors[node.outputs[0]].shape[-1]
    b = x[1] if a.time_major else x[0]
    return 3 * b * h + 8 * h


def no_scratch(node: Node, g: Graph, isa: str) -> int:
    """Pools, mean, elementwise, LUT, data movement: no working memory beyond registers."""
    _check_isa(isa)
    return 0


# One row per int8 op (the coverage test checks every op with an int8 form is here).
SCRATCH: dict[Op, ScratchFn] = {
    Op.CONV2D: conv2d_scratch,
    Op.DWCONV2D: dwconv2d_scratch,
    Op.FC: fc_scratch,
    Op.SOFTMAX: softmax_scratch,
    Op.AVGPOOL2D: no_scratch,
    Op.MAXPOOL2D: no_scratch,
    Op.MEAN: no_scratch,
    Op.ADD: no_scratch,
    Op.SUB: no_scratch,
    Op.MUL: no_scratch,
    Op.RELU: no_scratch,
    Op.RELU6: no_scratch,
    Op.LEAKY_RELU: no_scratch,
    Op.LOGISTIC: no_scratch,
    Op.TANH: no_scratch,
    Op.HARD_SWISH: no_scratch,
    Op.RESHAPE: no_scratch,
    Op.TRANSPOSE: no_scratch,
    Op.CONCAT: no_scratch,
    Op.STRIDED_SLICE: no_scratch,
    Op.RESIZE_NEAREST: no_scratch,
    Op.MAXIMUM: no_scratch,
    Op.MINIMUM: no_scratch,
    Op.RESIZE_BILINEAR: no_scratch,
    Op.PAD: no_scratch,
    Op.QUANTIZE: no_scratch,
    Op.DEQUANTIZE: no_scratch,
    Op.SQRT: no_scratch,
    Op.RSQRT: no_scratch,
    Op.EXP: no_scratch,
    Op.GELU: no_scratch,
    Op.SQUARED_DIFFERENCE: no_scratch,
    Op.MATMUL: no_scratch,
    Op.SUM: no_scratch,
    Op.REDUCE_MAX: no_scratch,
    Op.REDUCE_MIN: no_scratch,
    Op.GATHER: no_scratch,
    Op.PRELU: no_scratch,
    Op.TRANSPOSE_CONV: transpose_conv_scratch,
    Op.LSTM: lstm_scratch,
}


def scratch_bytes(node: Node, g: Graph, isa: str = "generic") -> int:
    """Arena bytes `node`'s kernel needs for the duration of its call (0 if none)."""
    _check_isa(isa)
    fn = SCRATCH.get(node.op)
    return fn(node, g, isa) if fn else 0
