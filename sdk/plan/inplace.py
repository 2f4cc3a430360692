"""Overlap rules: when may an op's output share bytes with an input it consumes last?

Each rule is a plain function `rule(node, g, k) -> int | None`: for input k of `node` it
returns d, the largest allowed (output offset - input offset) in bytes when the two overlap,
or None when the rule does not apply. d = 0 is a classic in-place op; d < 0 means the output
must start |d| bytes BELOW the input (a lag); d > 0 lets it start above. The planner
(sdk/plan/memory.py) turns d into `BufferReq.share` and only uses it when input k has no
reader after this node.

Kernel contract the rules rely on (the raster-order in-place contract of
runtime/c/ef_kernels.h; every ref kernel listed in WINDOWED/elementwise must keep it):
  * windowed kernels (CONV2D, DWCONV2D, AVG/MAXPOOL2D) produce output pixels in raster order
    (n, y, x); while producing pixel p they write only p's bytes and read only input pixels
    inside p's receptive window (any channel order inside the pixel).
  * elementwise kernels visit elements in increasing order and read element i of every input
    before writing element i of the output.
Under that contract, writing pixel p cannot clobber a byte still to be read iff every byte of
p lands below the lowest input byte read by any pixel p' >= p:
    out_off + (p + 1) * out_pixel_bytes <= in_off + min_{p' >= p} first_read(p')
so d = min_p (suffix_min_first_read(p) - (p + 1) * out_pixel_bytes). The poison tests
(tests/c/test_inplace_poison.py) run the generated C with these overlaps, bit-exact.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeforge.ir import OPS, Graph, Node, Op
from edgeforge.plan.scratch import conv2d_1x1_inplace_scratch, conv_kernel, dwconv2d_inplace_scratch

Rule = Callable[[Node, Graph, int], "int | None"]

WINDOWED = (Op.CONV2D, Op.DWCONV2D, Op.AVGPOOL2D, Op.MAXPOOL2D)


def window_lag(in_shape: tuple[int, ...], out_shape: tuple[int, ...], kernel: tuple[int, int],
               stride: tuple[int, int], pad: tuple[int, int, int, int],
               dilation: tuple[int, int] = (1, 1), itemsize: int = 1) -> int | None:
    """d for a raster-order windowed kernel on NHWC tensors (see the module docstring).

    Returns None if the output has no pixels or no pixel reads anything (nothing to gain).
    """
    n, h, w, cin = in_shape
    on, oh, ow, cout = out_shape
    if n != on or oh * ow * on == 0:
        return None
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    pt, pl = pad[0], pad[1]

    def first_valid(o: np.ndarray, s: int, p: int, k: int, d: int, size: int) -> np.ndarray:
        start = o * s - p                                  # first tap, may be negative
        skip = -(-np.maximum(0, -start) // d)              # taps in the top/left padding
        first = start + skip * d
        ok = (skip < k) & (first < size)
        return np.where(ok, first, -1)

    ry = first_valid(np.arange(oh), sh, pt, kh, dh, h)
    rx = first_valid(np.arange(ow), sw, pl, kw, dw, w)
    yy, xx = np.meshgrid(ry, rx, indexing="ij")
    pix = (yy * w + xx).astype(np.int64)                   # first input pixel read, per out pixel
    big = np.int64(1) << 60
    pix = np.where((yy < 0) | (xx < 0), big, pix).ravel()
    first = np.concatenate([pix + b * h * w for b in range(n)]) if n > 1 else pix
    first_bytes = np.where(first >= big, big, first * cin * itemsize)
    suffix = np.minimum.accumulate(first_bytes[::-1])[::-1]
    if suffix[0] >= big:
        return None
    p = np.arange(first_bytes.size, dtype=np.int64)
    d = suffix - (p + 1) * cout * itemsize
    return int(d[suffix < big].min())


def _const(g: Graph, name: str) -> bool:
    return bool(name) and g.tensors[name].is_const


def elementwise_inplace(node: Node, g: Graph, k: int) -> int | None:
    """Elementwise op over an input of the output's exact shape and element size: d = 0."""
    if not OPS[node.op].elementwise:
        return None
    x, y = g.tensors[node.inputs[k]], g.tensors[node.outputs[0]]
    if x.shape != y.shape or np.dtype(x.dtype).itemsize != np.dtype(y.dtype).itemsize:
        return None                                        # broadcast or widening: no
    return 0


def pointwise_conv_inplace(node: Node, g: Graph, k: int) -> int | None:
    """1x1 stride-1 unpadded conv: pixel p reads only input pixel p, so the output may start
    one output pixel below the input (the pixel being computed is the only lag)."""
    if node.op != Op.CONV2D or k != 0:
        return None
    a = node.attrs
    wshape = g.tensors[node.inputs[1]].shape
    if wshape[1:3] != (1, 1) or a.stride != (1, 1) or any(a.pad):
        return None
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    if x.shape[:3] != y.shape[:3] or x.dtype != y.dtype:
        return None
    cin, cout, npix = x.shape[3], y.shape[3], int(np.prod(y.shape[:3]))
    s = np.dtype(x.dtype).itemsize                         # d is in bytes (int16: 2 per value)
    return s * (-cout if cin >= cout else (npix - 1) * cin - npix * cout)


def window_overlap(node: Node, g: Graph, k: int) -> int | None:
    """Any raster-order windowed kernel (conv, depthwise, pooling) over its data input: the
    output may overlap the input with the lag window_lag() derives from the geometry."""
    if node.op not in WINDOWED or k != 0:
        return None
    a = node.attrs
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    if len(x.shape) != 4 or len(y.shape) != 4 or x.dtype != y.dtype:
        return None
    if node.op in (Op.CONV2D, Op.DWCONV2D):
        wshape = g.tensors[node.inputs[1]].shape
        kernel, dilation = (wshape[1], wshape[2]), a.dilation
    else:
        kernel, dilation = a.kernel, (1, 1)
    return window_lag(x.shape, y.shape, kernel, a.stride, a.pad, dilation,
                      np.dtype(x.dtype).itemsize)


# First match wins; pointwise_conv_inplace is the closed form of window_overlap for 1x1.
RULES: list[Rule] = [elementwise_inplace, pointwise_conv_inplace, window_overlap]


def inplace_candidates(node: Node, g: Graph) -> list[tuple[int, int, str]]:
    """(input index, d, rule name) for every data input some rule lets the output overlap."""
    out = []
    weights = OPS[node.op].weights
    for k, name in enumerate(node.inputs):
        if not name or k in weights or _const(g, name):
            continue
        for rule in RULES:
            d = rule(node, g, k)
            if d is not None:
                out.append((k, d, rule.__name__))
                break
    return out


# ---------------------------------------------------------------- in-place kernel variants
@dataclass(frozen=True)
class KernelVariant:
    """A kernel that runs truly in place (output offset - input offset <= d, d = 0) at the
    price of `scratch` bytes for the one call (runtime/c/kernels/ref/ef_inplace.h)."""
    kernel: str
    d: int
    scratch: int


def dwconv_linebuffer_inplace(node: Node, g: Graph, k: int) -> KernelVariant | None:
    """Depthwise stride 1, multiplier 1, same-size output: ef_dwconv2d_inplace_s8 keeps the
    input pixels it still needs (pad_top rows + pad_left + 1 pixels) in a ring buffer."""
    if node.op != Op.DWCONV2D or k != 0:
        return None
    a = node.attrs
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    if a.stride != (1, 1) or a.depth_multiplier != 1 or x.shape != y.shape \
            or len(x.shape) != 4 or x.dtype != "int8" or y.dtype != "int8":
        return None
    return KernelVariant("ef_dwconv2d_inplace_s8", 0, dwconv2d_inplace_scratch(node, g, "generic"))


def pointwise_conv_pixelbuffer_inplace(node: Node, g: Graph, k: int) -> KernelVariant | None:
    """1x1 stride-1 conv with C_OUT <= C_IN: ef_conv2d_1x1_inplace_s8 copies each input pixel
    to scratch before overwriting it."""
    if node.op != Op.CONV2D or k != 0:
        return None
    a = node.attrs
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    wshape = g.tensors[node.inputs[1]].shape
    if wshape[1:3] != (1, 1) or a.stride != (1, 1) or any(a.pad) or len(x.shape) != 4 \
            or x.shape[:3] != y.shape[:3] or y.shape[3] > x.shape[3] or x.dtype != "int8" \
            or conv_kernel(node, g) == "ef_fc_bsr_s8":        # block-sparse: lagged only
        return None
    return KernelVariant("ef_conv2d_1x1_inplace_s8", 0,
                         conv2d_1x1_inplace_scratch(node, g, "generic"))


KERNEL_RULES: list[Callable[[Node, Graph, int], KernelVariant | None]] = [
    dwconv_linebuffer_inplace, pointwise_conv_pixelbuffer_inplace]


def kernel_variant(node: Node, g: Graph) -> tuple[int, KernelVariant, str] | None:
    """(input index, variant, rule name) of the first kernel rule that applies, else None."""
    for k, name in enumerate(node.inputs):
        if not name or k in OPS[node.op].weights or _const(g, name):
            continue
        for rule in KERNEL_RULES:
            v = rule(node, g, k)
            if v is not None:
                return k, v, rule.__name__
    return None
