"""Scratch bytes each kernel takes from the arena: the Python mirror of the C
`ef_<kernel>_scratch_size()` functions (tests/c/test_scratch_sizes.py compiles both kernel
sets' functions and compares them on many shapes), as CMSIS-NN's `*_get_buffer_size` and
TFLM's `RequestScratchBufferInArena`.

A kernel's working set (im2col columns, accumulators, requantization triples, expanded
filters, rescale tables) lives in the planned arena, not on the stack: plan.memory places it
as a one-step buffer (first == last) over bytes no live tensor holds at that step, and
codegen passes it as the kernel's `ctx`. Each kernel set sizes its own: `ref`
(kernels/ref) and `dsp` (kernels/dsp, Armv7E-M). The arena is planned once per compiled DIR
and `edgeforge build --kernels ref|dsp` links either set against that plan, so the plan
asks for `generic` = the larger of the two. A kernel given less (or no ctx) takes a loop
that needs none, with the same bytes.

The kernel choice codegen makes (1x1 / shallow / general conv, 3x3 depthwise) is decided
here too (conv_kernel, dw_kernel), so the size always matches the kernel called.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import numpy as np

from edgeforge.compress.prune import BSR_MAX_DENSITY, bsr_conv_density
from edgeforge.errors import EdgeforgeError
from edgeforge.ir import Graph, Node, Op
from edgeforge.qparams16 import is_s16_node

ScratchFn = Callable[[Node, Graph, str], int]
ISAS = ("ref", "dsp")          # kernel sets; "generic" = the larger of the two
KERNELS_C = Path(str(files("edgeforge.runtime") / "c" / "kernels"))


def _c_define(rel: str, name: str) -> int:
    """`#define NAME <int>` from a kernel source: the C limits the sizes follow are read,
    not copied, so a kernel tuning them cannot leave the mirror behind."""
    m = re.search(rf"^#define {name} (\d+)\b", (KERNELS_C / rel).read_text(), re.MULTILINE)
    if m is None:
        raise EdgeforgeError(f"kernels/{rel}: no #define {name} (sdk/plan/scratch.py reads it)")
    return int(m.group(1))


DSP_COL_MAX = _c_define("dsp/ef_dsp.h", "EF_DSP_COL_MAX")   # longest im2col column (SMLAD)
DSP_TMP_MAX = _c_define("dsp/ef_dsp_conv.c", "EF_DSP_TMP_MAX")   # ... when C_IN % 4 != 0
DSP_OC_BLOCK = _c_define("dsp/ef_dsp.h", "EF_DSP_OC_BLOCK")  # output channels per acc block
DSP_SHALLOW_MAX = _c_define("dsp/conv2d_shallow_s8.c", "EF_DSP_SHALLOW_MAX")   # filter bytes
DSP_ADD_MIN = _c_define("dsp/add_s8.c", "EF_DSP_ADD_MIN")   # ADD/SUB elements: tables pay
REF_ADD_TABLE_MIN = _c_define("ref/add_s8.c", "EF_NN_ADD_TABLE_MIN")
DSP_DW_CH_MAX = _c_define("dsp/ef_dsp_dw.h", "EF_DSP_DW_CH_MAX")
DSP_DW_PAD_BYTES = _c_define("dsp/ef_dsp_dw.h", "EF_DSP_DW_PAD_BYTES")   # 3 padded rows
DSP_DW_RQ_MAX = _c_define("dsp/ef_dsp_dw.h", "EF_DSP_DW_RQ_MAX")   # channels with triples
SHALLOW_ROW = 32               # KW * C_IN below this: ef_conv2d_shallow_s8 (codegen)


def _isas(isa: str) -> tuple[str, ...]:
    if isa == "generic":
        return ISAS
    if isa not in ISAS:
        raise EdgeforgeError(f"unknown kernel ISA {isa!r}; available: generic, "
                             f"{', '.join(ISAS)}")
    return (isa,)


def _per_isa(fn: Callable[[Node, Graph, str], int]) -> ScratchFn:
    """fn sized for one kernel set; "generic" takes the larger over every set."""
    def sized(node: Node, g: Graph, isa: str) -> int:
        return max(fn(node, g, i) for i in _isas(isa))
    sized.__name__, sized.__doc__ = fn.__name__, fn.__doc__
    return sized


def _int8_kernel(fn: Callable[[Node, Graph, str], int]) -> Callable[[Node, Graph, str], int]:
    """fn sizes an int8 kernel's ctx; a 16x8 node runs an ef_*_s16 kernel without one."""
    def sized(node: Node, g: Graph, isa: str) -> int:
        return 0 if is_s16_node(node, g) else fn(node, g, isa)
    sized.__name__, sized.__doc__ = fn.__name__, fn.__doc__
    return sized


def _shape(g: Graph, name: str) -> tuple[int, int, int, int]:
    s = tuple(int(d) for d in g.tensors[name].shape)
    s = (1,) * (4 - len(s)) + s
    return s[-4], s[-3], s[-2], s[-1]


# ---------------------------------------------------------------- kernel choice (codegen)
def bsr_blocks(w: np.ndarray, max_density: float = BSR_MAX_DENSITY) -> np.ndarray | None:
    """Which 4x4 blocks of int8 weights [C_OUT, C_IN] are nonzero ([ceil(C_OUT / 4), C_IN / 4],
    C_OUT padded with zero rows), if ef_fc_bsr_s8 takes the matrix: C_IN % 4 == 0, at most
    max_density of the blocks nonzero, indices within uint16; else None (dense kernels)."""
    w = np.asarray(w)
    cout, cin = w.shape
    if cin % 4 or cin >= 1 << 16 or not w.size:
        return None
    w = np.pad(w, ((0, -cout % 4), (0, 0)))
    nz = w.reshape(-(-cout // 4), 4, cin // 4, 4).any(axis=(1, 3))
    nnzb = int(nz.sum())
    return None if nnzb > max_density * nz.size or nnzb >= 1 << 16 else nz


def block_sparse(node: Node, g: Graph) -> bool:
    """True where codegen runs `node` on its stored nonzero weight blocks (ef_fc_bsr_s8): an
    int8 FC, or a 1x1 stride-1 unpadded CONV2D (an FC over pixels; at most bsr_conv_density
    of its blocks nonzero), whose weights bsr_blocks takes and are not clustered."""
    if node.op not in (Op.FC, Op.CONV2D) or len(node.inputs) < 2 or is_s16_node(node, g):
        return False
    t = g.tensors[node.inputs[1]]
    if t.data is None or t.dtype != "int8" or packed_bits(node, g):
        return False
    density = BSR_MAX_DENSITY
    if node.op is Op.CONV2D:
        a, w = node.attrs, _shape(g, node.inputs[1])
        if w[1:3] != (1, 1) or tuple(a.stride) != (1, 1) or any(a.pad) or \
                tuple(a.dilation) != (1, 1):
            return False
        density = bsr_conv_density(w[3])
    return bsr_blocks(np.asarray(t.data).reshape(t.shape[0], -1), density) is not None


def conv_kernel(node: Node, g: Graph) -> str:
    """The CONV2D kernel codegen calls: block-sparse (block_sparse), 1x1 (pad 0, dilation 1),
    shallow (few input channels: KW * C_IN < SHALLOW_ROW and >= 8 outputs; transposed
    filter) or general."""
    a = node.attrs
    w = _shape(g, node.inputs[1])
    if w[1:3] == (1, 1) and tuple(a.pad) == (0, 0, 0, 0) and tuple(a.dilation) == (1, 1):
        return "ef_fc_bsr_s8" if block_sparse(node, g) else "ef_conv2d_1x1_s8"
    if w[3] * w[2] < SHALLOW_ROW and w[0] >= 8:
        return "ef_conv2d_shallow_s8"
    return "ef_conv2d_s8"


def dw_kernel(node: Node, g: Graph) -> str:
    a = node.attrs
    w = _shape(g, node.inputs[1])
    k3 = w[1:3] == (3, 3) and a.depth_multiplier == 1 and tuple(a.dilation) == (1, 1)
    return "ef_dwconv2d_3x3_s8" if k3 else "ef_dwconv2d_s8"


# ---------------------------------------------------------------- the C functions, mirrored
def dsp_conv_engine(c_in: int, kh: int, kw: int, c_out: int) -> int:
    """ef_dsp_conv_scratch_size: two interleaved int16 columns (K rounded up to 4 words), the
    int8 natural-order column when C_IN % 4 != 0, 2 nb + 2 accumulators and 3 nb triples."""
    k = kh * kw * c_in
    tmp = (k + 3) & ~3 if c_in & 3 else 0
    if k > DSP_COL_MAX or (c_in & 3 and k > DSP_TMP_MAX):
        return 0
    nb = min(c_out, DSP_OC_BLOCK)
    return 4 * ((k + 3) & ~3) + tmp + 4 * (2 * nb + 2) + 12 * nb


def dsp_shallow(c_in: int, kh: int, kw: int, c_out: int) -> int:
    """ef_conv2d_shallow_s8_scratch_size (dsp): the un-transposed filter (rows of K rounded
    up to 4), then the engine."""
    eng = dsp_conv_engine(c_in, kh, kw, c_out)
    k = kh * kw * c_in
    return 0 if k * c_out > DSP_SHALLOW_MAX or eng == 0 else ((k + 3) & ~3) * c_out + eng


def dsp_dw3x3(p_pad_w: int, stride_w: int, iw: int, ch: int, ow: int) -> int:
    """ef_dwconv2d_3x3_s8_scratch_size (dsp): expanded filter (18 C bytes), C accumulators,
    3 C requantization triples (C <= EF_DSP_DW_RQ_MAX), and the three padded input rows
    when they fit EF_DSP_DW_PAD_BYTES."""
    if ch & 3 or ch > DSP_DW_CH_MAX:
        return 0
    need = (ow - 1) * stride_w - p_pad_w + 3 - iw
    width = (p_pad_w + iw + max(need, 0)) * ch
    padded = 3 * width if p_pad_w >= 0 and 3 * width <= DSP_DW_PAD_BYTES else 0
    rq = 12 * ch if ch <= DSP_DW_RQ_MAX else 0
    return 18 * ch + 4 * ch + rq + ((padded + 3) & ~3)


@_per_isa
@_int8_kernel
def conv2d_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_conv2d_s8 / _1x1_s8 / _shallow_s8: the SMLAD engine's working set (dsp); the
    reference keeps its few hundred bytes on the stack."""
    if isa == "ref":
        return 0
    _, _, _, cin = _shape(g, node.inputs[0])
    cout, kh, kw, _ = _shape(g, node.inputs[1])
    kern = conv_kernel(node, g)
    if kern == "ef_fc_bsr_s8":
        return 0
    if kern == "ef_conv2d_shallow_s8":
        return dsp_shallow(cin, kh, kw, cout)
    return dsp_conv_engine(cin, kh, kw, cout)


@_per_isa
@_int8_kernel
def dwconv2d_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_dwconv2d_3x3_s8 (dsp): see dsp_dw3x3; ef_dwconv2d_s8 and the reference: none."""
    if isa == "ref" or dw_kernel(node, g) != "ef_dwconv2d_3x3_s8":
        return 0
    _, _, iw, ch = _shape(g, node.inputs[0])
    _, _, ow, _ = _shape(g, node.outputs[0])
    return dsp_dw3x3(node.attrs.pad[1], node.attrs.stride[1], iw, ch, ow)


@_per_isa
@_int8_kernel
def addsub_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_add_s8 / ef_sub_s8: two 256-entry int32 rescale tables for large same-shape
    inputs (ref from 1024 elements, dsp from 512)."""
    a, b = (_shape(g, t) for t in node.inputs[:2])
    y = _shape(g, node.outputs[0])
    n = y[0] * y[1] * y[2] * y[3]
    least = REF_ADD_TABLE_MIN if isa == "ref" else DSP_ADD_MIN
    return 2 * 256 * 4 if a == y and b == y and n >= least else 0


@_per_isa
def fc_scratch(node: Node, g: Graph, isa: str) -> int:
    return 0


@_per_isa
def softmax_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_softmax_s8: one row at a time, in registers."""
    return 0


@_per_isa
def dwconv2d_inplace_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_dwconv2d_inplace_s8_scratch_size: a ring of pad_top * W + pad_left + 1 input pixels
    (at most H * W): how far back a window reaches, plus the pixel being overwritten; the
    dsp set adds its 3x3 working set (dsp_dw3x3) after the ring."""
    _, h, w, c = _shape(g, node.inputs[0])
    pt, pl = node.attrs.pad[0], node.attrs.pad[1]
    ring = min(pt * w + pl + 1, h * w) * c
    if isa == "ref":
        return ring
    return ((ring + 3) & ~3) + dsp_dw3x3(pl, 1, w, c, w)


@_per_isa
def conv2d_1x1_inplace_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_conv2d_1x1_inplace_s8_scratch_size: one input pixel (C_IN bytes); the dsp set
    gives the engine its working set for C_OUT = C_IN instead, when that is larger."""
    c = _shape(g, node.inputs[0])[3]
    return c if isa == "ref" else max(c, dsp_conv_engine(c, 1, 1, c))


@_per_isa
def transpose_conv_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_transpose_conv_s8 gathers each output pixel's taps (no int32 scatter buffer as
    TFLM's kernel keeps): accumulators in registers."""
    return 0


@_per_isa
def lstm_scratch(node: Node, g: Graph, isa: str) -> int:
    """ef_lstm_s8_scratch_size: two int32 accumulator rows, the cell (int16) and hidden (int8)
    states of every batch row, which start from their reset values each call, and four
    int16 gate rows."""
    a = node.attrs
    x, h = g.tensors[node.inputs[0]].shape, g.tensors[node.outputs[0]].shape[-1]
    b = x[1] if a.time_major else x[0]
    return 3 * b * h + 16 * h


@_per_isa
def no_scratch(node: Node, g: Graph, isa: str) -> int:
    """Pools, mean, elementwise, LUT, data movement: no working memory beyond registers."""
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
    Op.ADD: addsub_scratch,
    Op.SUB: addsub_scratch,
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

# kernels that take a leading `const ef_ctx *ctx` (ef_kernels.h / ef_inplace.h)
CTX_KERNELS = frozenset({"ef_conv2d_s8", "ef_conv2d_1x1_s8", "ef_conv2d_shallow_s8",
                         "ef_dwconv2d_3x3_s8", "ef_add_s8", "ef_sub_s8",
                         "ef_dwconv2d_inplace_s8", "ef_conv2d_1x1_inplace_s8"})


def scratch_bytes(node: Node, g: Graph, isa: str = "generic") -> int:
    """Arena bytes `node`'s kernel needs for the duration of its call (0 if none)."""
    _isas(isa)
    fn = SCRATCH.get(node.op)
    return fn(node, g, isa) if fn else 0


def packed_bits(node: Node, g: Graph) -> int:
    """Index bits (4 or 2) with which the C package stores `node`'s weights packed (a value
    table + indices, unpacked into the node's arena scratch before its kernel runs), or 0
    for plain int8. Only a graph clustered by compress.cluster (g.meta["cluster"] = K) packs,
    and only a weight tensor holding at most K values and not listed in
    g.meta["cluster_dense"] (the compiler keeps those plain: unpacking them would grow the
    arena)."""
    k = g.meta.get("cluster")
    if not k:
        return 0
    from edgeforge.compress.cluster import CLUSTER_OPS
    if node.op not in CLUSTER_OPS or len(node.inputs) < 2 or is_s16_node(node, g):
        return 0
    t = g.tensors[node.inputs[1]]
    if t.data is None or t.dtype != "int8" or g.tensors[node.inputs[0]].dtype != "int8" or \
            node.inputs[1] in g.meta.get("cluster_dense", ()):
        return 0
    bits = 4 if k > 4 else 2
    if np.unique(t.data).size > 1 << bits:
        return 0
    return bits


FC_LUT_CHUNK_BYTES = 2048    # a packed FC unpacks about this many weight bytes at a time


def fc_lut_table_bytes(bits: int) -> int:
    """ef_fc_packed_lut_s8_table_bytes: its lane table (4 bits: 256 int16 lanes; 2 bits: 256
    pairs of lanes, one per index byte)."""
    return {4: 512, 2: 1024}.get(bits, 0)


def unpacked_bytes(node: Node, g: Graph) -> int:
    """Arena bytes before `node`'s kernel scratch that hold its unpacked weights (16-aligned,
    so the kernel's own scratch keeps the arena's alignment); 0 if not packed. A packed FC
    (ef_fc_packed_lut_s8, else ef_fc_lut_s8) takes the lane table, then unpacks blocks of
    four rows, FC_LUT_CHUNK_BYTES' worth (at least four) at a time."""
    bits = packed_bits(node, g)
    if not bits:
        return 0
    w = g.tensors[node.inputs[1]].data
    n = int(w.size)
    if node.op is Op.FC:
        cout, cin = int(w.shape[0]), int(w.shape[-1])
        rows = min(cout, max(4, (FC_LUT_CHUNK_BYTES // cin) & ~3))
        n = fc_lut_table_bytes(bits) + rows * cin
    return (n + 15) & ~15
