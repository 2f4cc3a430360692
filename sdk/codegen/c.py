"""int8 IR + arena plan -> a plain C99 package: model.h, model.c, weights.c + the kernels used.

    emit_c(graph, plan, out_dir, name="model", numerics="tflm") -> CPackage

What the generated code looks like (STYLE.md "shape of the generated firmware"):
  * model.c: per node `static const` params (`conv2d3_p`, `conv2d3_q`, dims), every tensor
    addressed as `arena + OFFSET` from the plan, and one straight-line
    `int ef_<name>_invoke(void)` of `EF_TRY(ef_<op>_s8(...))` calls, each wrapped in
    EF_OP_BEGIN(i) / EF_OP_END(i) (default `((void)0)`; firmware defines them to count cycles).
  * weights.c: `const` arrays (int8 weights, int32 biases, per-channel mult/shift, LUTs).
  * model.h: the API, macros for shapes / scales / zero points / arena size, and the
    name-independent EF_MODEL_* glue the firmware templates and harnesses include.
  * the arena is a static aligned array unless the build defines EF_<NAME>_USER_ARENA, in
    which case the application hands one in with ef_<name>_set_arena().
  * the copied ef_requantize.h defaults EF_SINGLE_ROUNDING to the profile compiled for, and
    model.c refuses (#error) to build against kernels compiled for the other profile.

All Prepare math (multipliers, shifts, offsets, clamps, tables) comes from edgeforge.qparams, the
same functions the reference runtime calls, so the C package and the reference agree.
Every file is flat in DIR/c/: compile `DIR/c/*.c` with `-I DIR/c`.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge import qparams16 as qp16
from edgeforge.errors import UnsupportedOpError
from edgeforge.ir import Graph, Node, Op
from edgeforge.plan.fuse import ADD_KERNELS, PairAdd
from edgeforge.plan.fuse import KERNEL as PAIR_KERNEL
from edgeforge.plan.scratch import (
    CTX_KERNELS,
    bsr_blocks,
    conv_kernel,
    dw_kernel,
    packed_bits,
    unpacked_bytes,
)
from edgeforge.qmath import Numerics, Rounding
from edgeforge.qparams import prepare, rounding

# the kernel library ships inside the package (edgeforge.runtime), in a checkout and a wheel alike
RUNTIME_C = Path(str(files("edgeforge.runtime") / "c"))
KERNEL_DIR = RUNTIME_C / "kernels" / "ref"
HEADERS = ("ef_types.h", "ef_kernels.h", "ef_requantize.h")
PRIVATE_HEADERS = ("ef_nn_support.h", "ef_inplace.h")

# C symbol -> source file in runtime/c/kernels/ref/ (copied into DIR/c/ when used)
KERNEL_FILES: dict[str, str] = {
    "ef_conv2d_s8": "conv2d_s8.c",
    "ef_conv2d_1x1_s8": "conv2d_1x1_s8.c",
    "ef_conv2d_shallow_s8": "conv2d_shallow_s8.c",
    "ef_dwconv2d_s8": "dwconv2d_s8.c",
    "ef_dwconv2d_3x3_s8": "dwconv2d_3x3_s8.c",
    "ef_fc_s8": "fc_s8.c",
    "ef_fc_packed_s8": "fc_packed_s8.c",
    "ef_fc_bsr_s8": "fc_bsr_s8.c",
    "ef_unpack_s8": "unpack_s8.c",
    "ef_fc_lut_s8": "fc_lut_s8.c",
    "ef_fc_packed_lut_s8": "fc_packed_lut_s8.c",
    "ef_avgpool2d_s8": "avgpool2d_s8.c",
    "ef_maxpool2d_s8": "maxpool2d_s8.c",
    "ef_mean_s8": "mean_s8.c",
    "ef_add_s8": "add_s8.c",
    "ef_sub_s8": "add_s8.c",
    "ef_mul_s8": "mul_s8.c",
    "ef_concat_s8": "concat_s8.c",
    "ef_pad_s8": "pad_s8.c",
    "ef_reshape_s8": "reshape_s8.c",
    "ef_transpose_s8": "transpose_s8.c",
    "ef_strided_slice_s8": "strided_slice_s8.c",
    "ef_resize_nearest_s8": "resize_nearest_s8.c",
    "ef_maximum_s8": "minmax_s8.c",
    "ef_minimum_s8": "minmax_s8.c",
    "ef_resize_bilinear_s8": "resize_bilinear_s8.c",
    "ef_softmax_s8": "softmax_s8.c",
    "ef_logistic_s8": "lut_s8.c",
    "ef_tanh_s8": "lut_s8.c",
    "ef_hard_swish_s8": "lut_s8.c",
    "ef_quantize_s8": "quantize_s8.c",
    "ef_relu_s8": "quantize_s8.c",
    "ef_relu6_s8": "quantize_s8.c",
    "ef_leaky_relu_s8": "lut_s8.c",
    "ef_sqrt_s8": "lut_s8.c",
    "ef_rsqrt_s8": "lut_s8.c",
    "ef_exp_s8": "lut_s8.c",
    "ef_gelu_s8": "lut_s8.c",
    "ef_squared_difference_s8": "squared_difference_s8.c",
    "ef_matmul_s8": "matmul_s8.c",
    "ef_sum_s8": "reduce_s8.c",
    "ef_gather_s8": "gather_s8.c",
    "ef_transpose_conv_s8": "transpose_conv_s8.c",
    "ef_lstm_s8": "lstm_s8.c",
    "ef_prelu_s8": "prelu_s8.c",
    "ef_reduce_max_s8": "reduce_s8.c",
    "ef_reduce_min_s8": "reduce_s8.c",
    # true in-place variants, called where the plan asks (GraphPlan.kernels; ef_inplace.h)
    "ef_dwconv2d_inplace_s8": "dwconv2d_inplace_s8.c",
    "ef_conv2d_1x1_inplace_s8": "conv2d_1x1_inplace_s8.c",
    PAIR_KERNEL: "conv_pair_add_s8.c",      # residual block row by row (GraphPlan.fused)
}


class _Refuse(Exception):
    """An emitter's reason for not handling a node (collected into one UnsupportedOpError)."""


@dataclass
class CPackage:
    dir: Path
    files: list[str]
    kernels: list[str]              # C symbols called, schedule order, unique
    weight_bytes: int               # bytes of const data in weights.c
    arena_bytes: int
    packed: list[dict] = field(default_factory=list)   # packed weight tensors: bytes saved


@dataclass
class _Emit:
    g: Graph
    offsets: dict[str, int]
    numerics: Numerics
    prefix: str = "ef_model_"                            # weights.c symbols are global
    inplace: dict[str, str] = field(default_factory=dict)   # out -> in-place kernel symbol
    scratch: dict[str, tuple[int, int]] = field(default_factory=dict)  # out -> (off, size)
    decls: list[str] = field(default_factory=list)     # model.c static consts
    externs: list[str] = field(default_factory=list)   # model.c extern decls of weights
    weights: list[str] = field(default_factory=list)   # weights.c definitions
    kernels: list[str] = field(default_factory=list)
    weight_bytes: int = 0
    pre: list[str] = field(default_factory=list)       # calls before the node's kernel
    packed: list[dict] = field(default_factory=list)   # per packed weight tensor: bytes
    consts: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, init) -> var

    def ptr(self, name: str, const: bool = True) -> str:
        if name not in self.offsets:
            raise _Refuse(f"tensor {name!r} has no arena offset in the plan")
        cast = "const int8_t *" if const else "int8_t *"
        return f"({cast})(ef_arena_ + {self.offsets[name]})"

    def dims(self, var: str, shape: tuple[int, ...]) -> str:
        n, h, w, c = dims4(shape)
        return self.struct("ef_dims", var, f"{{{n}, {h}, {w}, {c}}}")

    def struct(self, ctype: str, var: str, init: str) -> str:
        # one const per distinct value (a node's output dims are the next one's input
        # dims): each is ~16-44 bytes of flash, and the firmware's code budget counts them
        seen = self.consts.setdefault((ctype, init), var)
        if seen == var:
            self.decls.append(f"static const {ctype} {var} = {init};")
        return f"&{seen}"

    def array(self, var: str, ctype: str, data: np.ndarray) -> str:
        var = self.prefix + var
        flat = np.asarray(data).ravel()
        self.externs.append(f"extern const {ctype} {var}[{flat.size}];")
        self.weights.append(f"const {ctype} {var}[{flat.size}] EF_ALIGNED(16) = {{\n"
                            + _c_values(flat) + "\n};")
        self.weight_bytes += flat.size * np.dtype(ctype.replace("_t", "")).itemsize
        return var

    def use(self, symbol: str) -> str:
        if symbol not in self.kernels:
            self.kernels.append(symbol)
        return symbol

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.g.tensors[name].shape)

    def variant(self, node: Node, default: str) -> tuple[str, str]:
        """(kernel symbol, leading ctx argument) for node: the plan's in-place variant, else
        `default`. A kernel that takes a ctx (plan.scratch.CTX_KERNELS) gets the node's
        planned arena scratch, or NULL when the plan gave it none (its no-scratch loop)."""
        out = node.outputs[0]
        fn = self.inplace.get(out, default)
        if fn not in CTX_KERNELS:
            return self.use(fn), ""
        off, size = self.scratch.get(out, (0, 0))
        skip = unpacked_bytes(node, self.g)     # packed weights unpack in front of it
        off, size = off + skip, max(size - skip, 0)
        ctx = f"&(ef_ctx){{ef_arena_ + {off}, {size}}}, " if size else "NULL, "
        return self.use(fn), ctx


def dims4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """NHWC dims of a tensor of rank <= 4 (leading 1s added)."""
    if len(shape) > 4:
        raise _Refuse(f"rank {len(shape)} tensor; the C kernels take rank <= 4")
    s = (1,) * (4 - len(shape)) + tuple(int(d) for d in shape)
    return s[0], s[1], s[2], s[3]


_SPELL8 = np.array([str(v) for v in range(-128, 256)], dtype=object)


# each int8 / uint8 spelling with the separator that follows it inside a line / at its end
_SPELL8_SEP = np.array([v + ", " for v in _SPELL8], dtype=object)
_SPELL8_EOL = np.array([v + ",\n    " for v in _SPELL8], dtype=object)


def _c_values(flat: np.ndarray, per_line: int = 24) -> str:
    flat = np.asarray(flat)
    if flat.dtype in (np.int8, np.uint8) and flat.size:
        # weights: the 256 spellings looked up with their separators and joined once (a
        # str() per value took 9 s for 11 M values, a join per line 2.7 s; this 1.2 s)
        idx = flat.reshape(-1).astype(np.int64) + 128
        vals = _SPELL8_SEP[idx]
        vals[per_line - 1::per_line] = _SPELL8_EOL[idx[per_line - 1::per_line]]
        vals[-1] = _SPELL8[idx[-1]] + ","
        return "    " + "".join(vals.tolist())
    if flat.dtype in (np.int8, np.uint8):
        vals = []
    else:
        vals = list(map(str, flat.astype(np.int64).tolist()))
    if flat.dtype == np.int32 or flat.dtype == np.int64:
        vals = [v if v != "-2147483648" else "INT32_MIN" for v in vals]
    return "\n".join("    " + ", ".join(vals[i:i + per_line]) + ","
                     for i in range(0, len(vals), per_line)) or "    0"


def _act(q: Any) -> str:
    return f"{{{int(q.act_min)}, {int(q.act_max)}}}"


def _quant(e: _Emit, tag: str, mult: np.ndarray, shift: np.ndarray, n: int) -> str:
    mult = np.broadcast_to(np.asarray(mult, np.int32), (n,))
    shift = np.broadcast_to(np.asarray(shift, np.int32), (n,))
    m = e.array(f"{tag}_mult", "int32_t", mult)
    s = e.array(f"{tag}_shift", "int32_t", shift)
    return e.struct("ef_quant", f"{tag}_q", f"{{{m}, {s}}}")




def _weights(e: _Emit, tag: str, node: Node, transpose: tuple[int, ...] | None = None
             ) -> tuple[str, str]:
    w = np.asarray(e.g.tensors[node.inputs[1]].data, np.int8)
    if transpose is not None:
        w = np.ascontiguousarray(w.transpose(transpose))
    bits = packed_bits(node, e.g)
    wv = _packed(e, tag, node, w, bits) if bits else e.array(f"{tag}_w", "int8_t", w)
    b = node.inputs[2] if len(node.inputs) > 2 else ""
    bv = e.array(f"{tag}_b", "int32_t", np.asarray(e.g.tensors[b].data, np.int32)) if b else "0"
    return wv, bv


def pack_indices(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(value table [2^bits] int8, packed indices uint8) of int8 `w` (at most 2^bits
    values): index i in bits [bits*i % 8, ...) of byte bits*i // 8 (ef_unpack_s8)."""
    flat = np.asarray(w, np.int8).ravel()
    vals = np.unique(flat)
    if vals.size > 1 << bits:
        raise ValueError(f"{vals.size} values do not fit {bits}-bit indices")
    table = np.zeros(1 << bits, np.int8)
    table[:vals.size] = vals
    idx = np.searchsorted(vals, flat).astype(np.uint8)
    per = 8 // bits
    idx = np.concatenate([idx, np.zeros(-idx.size % per, np.uint8)]).reshape(-1, per)
    packed = np.zeros(idx.shape[0], np.uint8)
    for k in range(per):
        packed |= idx[:, k] << (bits * k)
    return table, packed


def _store_packed(e: _Emit, tag: str, node: Node, w: np.ndarray, bits: int,
                  packed: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[str, str]:
    """weights.c arrays (value table, packed indices) of `w` (pack_indices, or `packed`
    given in another kernel's layout); records the bytes saved."""
    table, idx = packed if packed is not None else pack_indices(w, bits)
    before = e.weight_bytes
    tv = e.array(f"{tag}_wt", "int8_t", table)
    iv = e.array(f"{tag}_wi", "uint8_t", idx)
    e.packed.append({"node": node.name or node.outputs[0], "tensor": node.inputs[1],
                     "bits": bits, "dense_bytes": int(w.size),
                     "stored_bytes": int(e.weight_bytes - before),
                     "saved_bytes": int(w.size - (e.weight_bytes - before))})
    return tv, iv


def _packed(e: _Emit, tag: str, node: Node, w: np.ndarray, bits: int) -> str:
    """Store `w` (the kernel's layout) as a value table + bit-packed indices, and unpack it
    into the front of the node's arena scratch before its kernel runs (plan.scratch)."""
    off, size = e.scratch.get(node.outputs[0], (0, 0))
    if size < w.size:
        raise _Refuse(f"the plan gave {size} scratch bytes to unpack {w.size} weights")
    tv, iv = _store_packed(e, tag, node, w, bits)
    e.pre.append(f"{e.use('ef_unpack_s8')}({tv}, {iv}, {w.size}, {bits}, "
                 f"(int8_t *)(ef_arena_ + {off}))")
    return f"(const int8_t *)(ef_arena_ + {off})"


# ---------------------------------------------------------------- emitters, one per Op
Emitter = Callable[[_Emit, str, Node], list[str]]


def _io(e: _Emit, tag: str, node: Node) -> tuple[str, str, str, str]:
    x, y = node.inputs[0], node.outputs[0]
    return (e.dims(f"{tag}_in", e.shape(x)), e.ptr(x),
            e.dims(f"{tag}_out", e.shape(y)), e.ptr(y, const=False))


def _conv_parts(e: _Emit, tag: str, node: Node) -> tuple[str, list[str]]:
    """(default kernel, [params, quant, in dims, x, filter dims, w, bias, out dims, y])."""
    a, q = node.attrs, prepare(node, e.g, e.numerics)
    w_shape = e.shape(node.inputs[1])
    default = conv_kernel(node, e.g)
    p = e.struct("ef_conv_params", f"{tag}_p",
                 f"{{{q.in_offset}, {q.out_offset}, {{{a.stride[0]}, {a.stride[1]}}}, "
                 f"{{{a.pad[0]}, {a.pad[1]}}}, {{{a.dilation[0]}, {a.dilation[1]}}}, "
                 f"{_act(q)}}}")
    qq = _quant(e, tag, q.mult, q.shift, w_shape[0])
    din, x, dout, y = _io(e, tag, node)
    wd = e.dims(f"{tag}_wd", w_shape)
    # few input channels (first layers): a filter row is too short for a good dot product,
    # so ship the filter transposed and vectorize over output channels instead; the choice
    # is plan.scratch's, which sizes that kernel's scratch
    shallow = default == "ef_conv2d_shallow_s8"
    w, b = _weights(e, tag, node, transpose=(1, 2, 3, 0) if shallow else None)
    return default, [p, qq, din, x, wd, w, b, dout, y]


def emit_conv2d(e: _Emit, tag: str, node: Node) -> list[str]:
    if conv_kernel(node, e.g) == "ef_fc_bsr_s8":   # a pointwise conv is an FC over its pixels
        q, w_shape = prepare(node, e.g, e.numerics), e.shape(node.inputs[1])
        bsr = _fc_bsr(e, tag, node, np.asarray(e.g.tensors[node.inputs[1]].data)
                      .reshape(w_shape[0], w_shape[3]), q)
        if bsr is None:
            raise _Refuse("plan.scratch.block_sparse and block_sparse_fc disagree")
        return bsr
    default, args = _conv_parts(e, tag, node)
    fn, ctx = e.variant(node, default)
    return [f"{fn}({ctx}{', '.join(args)})"]


def emit_pair_add(e: _Emit, tag: str, f: PairAdd) -> list[str]:
    """conv1 -> conv2 -> add row by row (plan.fuse): one ef_conv_pair_add_s8 call at the
    add's step, with the add's planned scratch (band, row, the convs' scratch)."""
    calls = []
    for k, conv in enumerate((f.conv1, f.conv2)):
        fn, (p, qq, din, _, wd, w, b, dout, _) = _conv_parts(e, f"{tag}_c{k + 1}", conv)
        calls.append(f"&(ef_conv_call){{{e.use(fn)}, {p}, {qq}, {din}, {wd}, {w}, {b}, "
                     f"{dout}}}")
    off, size = e.scratch[f.add.outputs[0]]
    add = e.use(ADD_KERNELS[f.add.op])
    call = (f"{e.use(PAIR_KERNEL)}(&(ef_ctx){{ef_arena_ + {off}, {size}}}, {calls[0]}, "
            f"{calls[1]}, {add}, {_add_params(e, tag, f.add)}, {int(f.conv_first)}, "
            f"{f.group}, {e.ptr(f.x)}, {e.ptr(f.skip)}, "
            f"{e.ptr(f.add.outputs[0], const=False)})")
    return [call]


def emit_dwconv2d(e: _Emit, tag: str, node: Node) -> list[str]:
    a, q = node.attrs, prepare(node, e.g, e.numerics)
    w_shape = e.shape(node.inputs[1])
    p = e.struct("ef_dw_params", f"{tag}_p",
                 f"{{{q.in_offset}, {q.out_offset}, {a.depth_multiplier}, "
                 f"{{{a.stride[0]}, {a.stride[1]}}}, {{{a.pad[0]}, {a.pad[1]}}}, "
                 f"{{{a.dilation[0]}, {a.dilation[1]}}}, {_act(q)}}}")
    qq = _quant(e, tag, q.mult, q.shift, w_shape[3])
    din, x, dout, y = _io(e, tag, node)
    wd = e.dims(f"{tag}_wd", w_shape)
    w, b = _weights(e, tag, node)
    fn, ctx = e.variant(node, dw_kernel(node, e.g))
    return [f"{fn}({ctx}{p}, {qq}, {din}, {x}, {wd}, {w}, {b}, {dout}, {y})"]


def pack_fc(w: np.ndarray, bias: np.ndarray | None, in_offset: int
            ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(packed weights, folded bias, acc_small) for ef_fc_packed_s8, or None if the layer
    does not fit its bounds (ef_fc_s8 then runs it).

    bias + in_offset * sum(w) replaces the per-MAC offset add (the same integer sum,
    regrouped). Rows go in blocks of four, as two pairs (r0, r1) and (r2, r3). Per group of
    four inputs, four words: pair (r0, r1) on inputs (0, 2), then (1, 3), then the same for
    (r2, r3). A word's int16 lane k is 256 * w[rb, k] + w[ra, k] (low byte w[ra, k], high
    byte w[rb, k] - (w[ra, k] < 0)): SXTB16 of the word gives row ra's pair, and SMLAD of the
    raw word gives ra's sum + 256 * rb's sum, so three instructions do four MACs. rb's sum
    is recovered as (T - D) / 256, exact while |rb's sum| < 2^23 (checked here) even though
    T wraps. Then each block's C_IN % 4 tail weights per row; the C_OUT % 4 rows left over
    stay in plain row order.
    """
    w = np.asarray(w, np.int8)
    cout, cin = w.shape
    w64 = w.astype(np.int64)
    b = (np.zeros(cout, np.int64) if bias is None else np.asarray(bias, np.int64)
         ) + int(in_offset) * w64.sum(axis=1)
    row_abs = 128 * np.abs(w64).sum(axis=1)
    if cout < 4 or (w == -128).any() or int(row_abs.max()) >= 1 << 23:
        return None      # (no block of four rows: the plain kernel, and less code)
    bound = int((np.abs(b) + row_abs).max())
    if bound >= 1 << 31:
        return None
    d4, o4 = cin & ~3, cout & ~3
    parts = []
    for o in range(0, o4, 4):
        g = w64[o:o + 4, :d4].reshape(4, d4 // 4, 4)          # row, group, input
        words = []
        for ra, rb in ((0, 1), (2, 3)):
            for ks in ((0, 2), (1, 3)):
                e, f = g[ra][:, ks], g[rb][:, ks]             # [group, lane]
                words.append(np.stack([e & 0xFF, (f - (e < 0)) & 0xFF], axis=-1))
        parts.append(np.stack(words, axis=1).astype(np.uint8).ravel())   # group, word, lane
        parts.append(w[o:o + 4, d4:].view(np.uint8).ravel())
    parts.append(w[o4:].view(np.uint8).ravel())
    packed = np.concatenate(parts).view(np.int8)
    return packed, b.astype(np.int32), int(bound < 1 << 30)


def block_sparse_fc(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(bptr uint16 [C_OUT/4 + 1], bcol uint16 [nnzb], bval int8 [16 nnzb]) for ef_fc_bsr_s8:
    the nonzero 4x4 blocks of int8 weights [C_OUT, C_IN] by block row, each block's four rows
    of four (C_OUT padded with zero rows to a multiple of 4); or None where the dense kernels
    are smaller and faster (plan.scratch.bsr_blocks says which).
    On the M4 a stored block costs ~2x a dense packed one (512 -> 256 at 25% of the blocks:
    0.49x the instructions), so half empty is the break-even in instructions, where flash
    (18 B per stored block vs 16 B per dense one) is already 0.56x dense."""
    w = np.asarray(w, np.int8)
    nz = bsr_blocks(w)
    if nz is None:
        return None
    cout, cin = w.shape
    w = np.pad(w, ((0, -cout % 4), (0, 0)))
    blocks = w.reshape(-(-cout // 4), 4, cin // 4, 4).transpose(0, 2, 1, 3)   # br, bc, row, in
    bptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.uint16)
    bcol = (4 * np.nonzero(nz)[1]).astype(np.uint16)
    return bptr, bcol, blocks[nz].reshape(-1).astype(np.int8)


def _fc_bsr(e: _Emit, tag: str, node: Node, w2d: np.ndarray, q: Any) -> list[str] | None:
    """ef_fc_bsr_s8 where block_sparse_fc takes the layer, else None."""
    bsr = block_sparse_fc(w2d)
    if bsr is None:
        return None
    cout, cin = w2d.shape
    p = e.struct("ef_fc_params", f"{tag}_p", f"{{{q.in_offset}, {q.out_offset}, {_act(q)}}}")
    qq = _quant(e, tag, q.mult, q.shift, cout)
    din, x, dout, y = _io(e, tag, node)
    wd = e.dims(f"{tag}_wd", (cout, 1, 1, cin))
    bptr, bcol, bval = bsr
    if not bcol.size:       # an all-zero matrix: one unread block (C has no empty arrays)
        bcol, bval = np.zeros(1, np.uint16), np.zeros(16, np.int8)
    bp, bc = e.array(f"{tag}_wp", "uint16_t", bptr), e.array(f"{tag}_wc", "uint16_t", bcol)
    bv = e.array(f"{tag}_w", "int8_t", bval)
    b = node.inputs[2] if len(node.inputs) > 2 else ""
    bias = e.array(f"{tag}_b", "int32_t", np.asarray(e.g.tensors[b].data, np.int32)) if b else "0"
    return [(f"{e.use('ef_fc_bsr_s8')}({p}, {qq}, {din}, {x}, {wd}, {bp}, {bc}, {bv}, {bias}, "
             f"{dout}, {y})")]


def pack_fc_lut(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(value table [2^bits] int8, lane indices uint8) of clustered int8 weights [C_OUT, C_IN]
    for ef_fc_packed_lut_s8, or None unless C_IN and C_OUT are multiples of 4. pack_fc's
    layout with no tails: per block of four rows, per group of four inputs, words (rows 0, 1)
    on inputs (0, 2), then (1, 3), then rows (2, 3) alike; each word's two int16 lanes pair
    a weight of row ra with one of row rb, and lane index = idx(ra's) | idx(rb's) << bits
    (4 bits: one a byte; 2 bits: two a byte, low nibble first), so an index per lane costs
    the flash pack_indices would."""
    w = np.asarray(w, np.int8)
    cout, cin = w.shape
    if cout % 4 or cin % 4 or not w.size:
        return None
    vals = np.unique(w)
    table = np.zeros(1 << bits, np.int8)
    table[:vals.size] = vals
    g = np.searchsorted(vals, w).astype(np.uint8).reshape(cout // 4, 4, cin // 4, 4)
    words = [g[:, ra][:, :, ks] | g[:, rb][:, :, ks] << bits     # [block, group, lane]
             for ra, rb in ((0, 1), (2, 3)) for ks in ((0, 2), (1, 3))]
    lanes = np.stack(words, axis=2).ravel()                      # block, group, word, lane
    if bits == 2:
        lanes = lanes[0::2] | lanes[1::2] << 4
    return table, lanes.astype(np.uint8)


def _fc_packed(e: _Emit, tag: str, node: Node, w2d: np.ndarray, q: Any, bits: int = 0
               ) -> list[str] | None:
    """ef_fc_packed_s8 on weights [C_OUT, C_IN] over the node's rows (FC rows or 1x1 conv
    pixels), or for clustered weights (`bits`) ef_fc_packed_lut_s8 on their lane indices;
    None where pack_fc (pack_fc_lut) refuses the layer."""
    cout, cin = w2d.shape
    b = node.inputs[2] if len(node.inputs) > 2 else ""
    packed = pack_fc(w2d, e.g.tensors[b].data if b else None, q.in_offset)
    lut = pack_fc_lut(w2d, bits) if bits else None
    if packed is None or (bits and lut is None):
        return None
    pw, pb, small = packed
    shift = np.broadcast_to(np.asarray(q.shift, np.int64), (cout,))
    rq = "0"       # the DSP output pass's (mult, right shift, rounding) per channel; not
    # for clustered weights: 12 B a channel undoes a tenth of AD01's flash saving for 5%
    if small and not bits and not _single(node.op, e.numerics) and (shift < 0).all():
        mult = np.broadcast_to(np.asarray(q.mult, np.int64), (cout,))
        rq = e.array(f"{tag}_rq", "int32_t",
                     np.stack([mult, -shift, 1 << (-shift - 1)], axis=1).astype(np.int32))
    p = e.struct("ef_fc_packed_params", f"{tag}_p",
                 f"{{{q.out_offset}, {_act(q)}, {small}, {rq}}}")
    qq = _quant(e, tag, q.mult, q.shift, cout)
    din, x, dout, y = _io(e, tag, node)
    wd = e.dims(f"{tag}_wd", (cout, 1, 1, cin))
    bv = e.array(f"{tag}_b", "int32_t", pb)
    if not bits:
        w = e.array(f"{tag}_w", "int8_t", pw)
        return [(f"{e.use('ef_fc_packed_s8')}({p}, {qq}, {din}, {x}, {wd}, {w}, {bv}, "
                 f"{dout}, {y})")]
    off, size = e.scratch.get(node.outputs[0], (0, 0))
    need = unpacked_bytes(node, e.g)      # lane table + four or more rows (plan.scratch)
    if size < need:
        raise _Refuse(f"the plan gave {size} scratch bytes to unpack FC weight rows")
    tv, iv = _store_packed(e, tag, node, w2d, bits, lut)
    e.use("ef_fc_packed_s8")
    return [(f"{e.use('ef_fc_packed_lut_s8')}(&(ef_ctx){{ef_arena_ + {off}, {need}}}, {p}, "
             f"{qq}, {din}, {x}, {wd}, {tv}, {iv}, {bits}, {bv}, {dout}, {y})")]


def emit_fc(e: _Emit, tag: str, node: Node) -> list[str]:
    q = prepare(node, e.g, e.numerics)
    cout, cin = e.shape(node.inputs[1])
    bits = packed_bits(node, e.g)
    w2d = np.asarray(e.g.tensors[node.inputs[1]].data)
    packed = _fc_packed(e, tag, node, w2d, q, bits) if bits else (
        _fc_bsr(e, tag, node, w2d, q) or _fc_packed(e, tag, node, w2d, q))
    if packed is not None:
        return packed
    p = e.struct("ef_fc_params", f"{tag}_p",
                 f"{{{q.in_offset}, {q.out_offset}, {_act(q)}}}")
    qq = _quant(e, tag, q.mult, q.shift, cout)
    din, x, dout, y = _io(e, tag, node)
    wd = e.dims(f"{tag}_wd", (cout, 1, 1, cin))
    if bits:        # rows unpacked a chunk at a time into the node's scratch (plan.scratch)
        off, size = e.scratch.get(node.outputs[0], (0, 0))
        if size < unpacked_bytes(node, e.g):
            raise _Refuse(f"the plan gave {size} scratch bytes to unpack FC weight rows")
        tv, iv = _store_packed(e, tag, node, np.asarray(e.g.tensors[node.inputs[1]].data,
                                                        np.int8), bits)
        b = node.inputs[2] if len(node.inputs) > 2 else ""
        bv = e.array(f"{tag}_b", "int32_t", np.asarray(e.g.tensors[b].data, np.int32)) \
            if b else "0"
        e.use("ef_fc_s8")
        e.use("ef_unpack_s8")
        ctx = f"&(ef_ctx){{ef_arena_ + {off}, {unpacked_bytes(node, e.g)}}}"
        return [(f"{e.use('ef_fc_lut_s8')}({ctx}, {p}, {qq}, {din}, {x}, {wd}, {tv}, {iv}, "
                 f"{bits}, {bv}, {dout}, {y})")]
    w, b = _weights(e, tag, node)
    return [f"{e.use('ef_fc_s8')}({p}, {qq}, {din}, {x}, {wd}, {w}, {b}, {dout}, {y})"]


# The pool, mean, add/sub and mul emitters serve the 16x8 twins too (EMITTERS_S16): such a
# node's params come from qparams16 (whose zero-point offsets are 0) and its pointers are
# int16_t; _binary16 orders its declarations as before, so the C text is unchanged.
def _prepare_any(e: _Emit, node: Node) -> Any:
    return (qp16.prepare if qp16.is_s16_node(node, e.g) else prepare)(node, e.g, e.numerics)


def _io_any(e: _Emit, tag: str, node: Node) -> tuple[str, str, str, str]:
    return (_io16 if qp16.is_s16_node(node, e.g) else _io)(e, tag, node)


def _emit_pool(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        a, q = node.attrs, _prepare_any(e, node)
        p = e.struct("ef_pool_params", f"{tag}_p",
                     f"{{{{{a.stride[0]}, {a.stride[1]}}}, {{{a.pad[0]}, {a.pad[1]}}}, "
                     f"{{{a.kernel[0]}, {a.kernel[1]}}}, {_act(q)}}}")
        din, x, dout, y = _io_any(e, tag, node)
        return [f"{e.use(symbol)}({p}, {din}, {x}, {dout}, {y})"]
    return emit


def emit_mean(e: _Emit, tag: str, node: Node) -> list[str]:
    shape = e.shape(node.inputs[0])
    pad = 4 - len(shape)
    reduce = [0] * 4
    for ax in node.attrs.axes:
        reduce[ax + pad] = 1
    q = _prepare_any(e, node)
    # REDUCE_MAX / MIN: PoolQuant (bytes only); the struct's offsets and multiplier unused
    in_off, out_off, mult, shift = ((q.in_offset, q.out_offset, q.mult, q.shift)
                                    if hasattr(q, "mult") else (0, 0, 0, 0))
    p = e.struct("ef_mean_params", f"{tag}_p",
                 f"{{{in_off}, {out_off}, {mult}, {shift}, "
                 f"{{{', '.join(map(str, reduce))}}}, {_act(q)}}}")
    din, x, dout, y = _io_any(e, tag, node)
    symbol = {Op.SUM: "ef_sum_s8", Op.REDUCE_MAX: "ef_reduce_max_s8",
              Op.REDUCE_MIN: "ef_reduce_min_s8"}.get(node.op, "ef_mean_s8")
    if isinstance(q, qp16.Quant16):              # EMITTERS_S16 sends MEAN only
        symbol = "ef_mean_s16"
    return [f"{e.use(symbol)}({p}, {din}, {x}, {dout}, {y})"]


def _binary(e: _Emit, tag: str, node: Node) -> tuple[str, str, str, str, str, str]:
    x1, x2, y = node.inputs[0], node.inputs[1], node.outputs[0]
    out = e.shape(y)
    for name in (x1, x2):
        s = e.shape(name)
        if len(s) > len(out):
            raise _Refuse(f"input {name!r} has a higher rank than the output")
    ptrs = []
    for k, name in enumerate((x1, x2)):
        t = e.g.tensors[name]
        if t.is_const:      # a constant operand lives in weights.c, not in the arena
            if t.dtype != "int8":
                raise _Refuse(f"constant operand {name!r} is {t.dtype}, expected int8")
            ptrs.append(e.array(f"{tag}_c{k + 1}", "int8_t", np.asarray(t.data, np.int8)))
        else:
            ptrs.append(e.ptr(name))
    return (e.dims(f"{tag}_in1", (1,) * (len(out) - len(e.shape(x1))) + e.shape(x1)),
            ptrs[0],
            e.dims(f"{tag}_in2", (1,) * (len(out) - len(e.shape(x2))) + e.shape(x2)),
            ptrs[1], e.dims(f"{tag}_out", out), e.ptr(y, const=False))


def _add_params(e: _Emit, tag: str, node: Node) -> str:
    q = _prepare_any(e, node)
    return e.struct("ef_add_params", f"{tag}_p",
                    f"{{{q.in1_offset}, {q.in2_offset}, {q.out_offset}, "
                    f"{q.in1_mult}, {q.in1_shift}, {q.in2_mult}, {q.in2_shift}, "
                    f"{q.out_mult}, {q.out_shift}, {q.left_shift}, {_act(q)}}}")


def _emit_addsub(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        p = _add_params(e, tag, node)
        d1, x1, d2, x2, dout, y = (_binary16 if qp16.is_s16_node(node, e.g) else _binary)(
            e, tag, node)
        fn, ctx = e.variant(node, symbol)
        return [f"{fn}({ctx}{p}, {d1}, {x1}, {d2}, {x2}, {dout}, {y})"]
    return emit


def _emit_mul(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        q, s16 = _prepare_any(e, node), qp16.is_s16_node(node, e.g)
        p = e.struct("ef_mul_params", f"{tag}_p",
                     f"{{{q.in1_offset}, {q.in2_offset}, {q.out_offset}, "
                     f"{q.out_mult}, {q.out_shift}, {_act(q)}}}")
        d1, x1, d2, x2, dout, y = (_binary16 if s16 else _binary)(e, tag, node)
        return [f"{e.use(symbol)}({p}, {d1}, {x1}, {d2}, {x2}, {dout}, {y})"]
    return emit


def emit_transpose_conv(e: _Emit, tag: str, node: Node) -> list[str]:
    a, q = node.attrs, prepare(node, e.g, e.numerics)
    w_shape = e.shape(node.inputs[1])
    p = e.struct("ef_conv_params", f"{tag}_p",
                 f"{{{q.in_offset}, {q.out_offset}, {{{a.stride[0]}, {a.stride[1]}}}, "
                 f"{{{a.pad[0]}, {a.pad[1]}}}, {{1, 1}}, {_act(q)}}}")
    qq = _quant(e, tag, q.mult, q.shift, w_shape[0])
    din, x, dout, y = _io(e, tag, node)
    wd = e.dims(f"{tag}_wd", w_shape)
    w, b = _weights(e, tag, node)
    call = (f"{e.use('ef_transpose_conv_s8')}({p}, {qq}, {din}, {x}, {wd}, {w}, {b}, "
            f"{dout}, {y})")
    return [call]


def emit_lstm(e: _Emit, tag: str, node: Node) -> list[str]:
    """ef_lstm_s8 with its params struct: weights, biases, state reset values and the sigmoid
    table as weights.c arrays; the plan's scratch holds the states and gate rows."""
    from edgeforge.ir import LSTM_B, LSTM_C, LSTM_H, LSTM_R, LSTM_W
    q, a = prepare(node, e.g, e.numerics), node.attrs
    x = e.shape(node.inputs[0])
    b, t = (x[1], x[0]) if a.time_major else (x[0], x[1])
    off, size = e.scratch.get(node.outputs[0], (0, 0))
    if size < 3 * b * q.n_cell + 16 * q.n_cell:
        raise _Refuse(f"the plan gave the LSTM {size} scratch bytes")

    def arr(k: int, what: str, ctype: str) -> str:
        return e.array(f"{tag}_{what}", ctype, e.g.tensors[node.inputs[k]].data)

    w = ", ".join(arr(k, f"w{i}", "int8_t") for i, k in enumerate(LSTM_W))
    r = ", ".join(arr(k, f"r{i}", "int8_t") for i, k in enumerate(LSTM_R))
    bs = ", ".join(arr(k, f"b{i}", "int32_t") for i, k in enumerate(LSTM_B))
    h0, c0 = arr(LSTM_H, "h0", "int8_t"), arr(LSTM_C, "c0", "int16_t")
    table = e.array(f"{tag}_table", "uint16_t", q.table)

    def four(v: tuple[int, ...]) -> str:
        return "{" + ", ".join(str(int(i)) for i in v) + "}"
    p = e.struct("ef_lstm_params", f"{tag}_p",
                 f"{{{b}, {t}, {q.n_input}, {q.n_cell}, {int(a.time_major)}, {q.in_offset}, "
                 f"{q.h_offset}, {q.out_zp}, {four(q.in_mult)}, {four(q.in_shift)}, "
                 f"{four(q.rec_mult)}, {four(q.rec_shift)}, {q.fc_mult}, {q.fc_shift}, "
                 f"{q.ig_mult}, {q.ig_shift}, {q.h_mult}, {q.h_shift}, {q.cell_power}, "
                 f"{q.cell_clip}, {q.tanh_mult}, {q.tanh_shift}, {int(q.litert)}, {int(q.single)}, "
                 f"{table}, "
                 f"{{{w}}}, {{{r}}}, {{{bs}}}, {h0}, {c0}}}")
    call = (f"{e.use('ef_lstm_s8')}({p}, ef_arena_ + {off}, {e.ptr(node.inputs[0])}, "
            f"{e.ptr(node.outputs[0], const=False)})")
    return [call]


def emit_gather(e: _Emit, tag: str, node: Node) -> list[str]:
    shape, axis = e.shape(node.inputs[0]), node.attrs.axis
    idx = np.asarray(e.g.tensors[node.inputs[1]].data, np.int32).ravel()
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    iv = e.array(f"{tag}_idx", "int32_t", idx)
    p = e.struct("ef_gather_params", f"{tag}_p",
                 f"{{{outer}, {shape[axis]}, {inner}, {idx.size}, {iv}}}")
    din, x, dout, y = _io(e, tag, node)
    return [f"{e.use('ef_gather_s8')}({p}, {din}, {x}, {dout}, {y})"]


def emit_prelu(e: _Emit, tag: str, node: Node) -> list[str]:
    q = prepare(node, e.g, e.numerics)
    out = e.shape(node.outputs[0])
    a = e.g.tensors[node.inputs[1]]
    if not a.is_const or a.dtype != "int8":
        raise _Refuse(f"alpha {node.inputs[1]!r} must be a constant int8 tensor")
    av = e.array(f"{tag}_alpha", "int8_t", np.asarray(a.data, np.int8))
    ad = e.dims(f"{tag}_ad", (1,) * (len(out) - len(a.shape)) + tuple(a.shape))
    p = e.struct("ef_prelu_params", f"{tag}_p",
                 f"{{{q.in_offset}, {q.alpha_offset}, {q.out_offset}, "
                 f"{q.mult1}, {q.shift1}, {q.mult2}, {q.shift2}}}")
    din, x, dout, y = _io(e, tag, node)
    return [f"{e.use('ef_prelu_s8')}({p}, {din}, {x}, {ad}, {av}, {dout}, {y})"]


def emit_matmul(e: _Emit, tag: str, node: Node) -> list[str]:
    """BATCH_MATMUL of [..., M, K] x [..., K, N]: up to two batch dims (ef_dims n, h),
    rows in w, columns in c; a batch dim of 1 broadcasts."""
    x1, x2, y = node.inputs[0], node.inputs[1], node.outputs[0]
    q = prepare(node, e.g, e.numerics)
    p = e.struct("ef_mul_params", f"{tag}_p",
                 f"{{{q.in1_offset}, {q.in2_offset}, {q.out_offset}, "
                 f"{q.out_mult}, {q.out_shift}, {_act(q)}}}")
    ptrs = []
    for k, name in enumerate((x1, x2)):
        t = e.g.tensors[name]
        ptrs.append(e.array(f"{tag}_c{k + 1}", "int8_t", np.asarray(t.data, np.int8))
                    if t.is_const else e.ptr(name))
    d1, d2 = e.dims(f"{tag}_in1", e.shape(x1)), e.dims(f"{tag}_in2", e.shape(x2))
    dout = e.dims(f"{tag}_out", e.shape(y))
    call = (f"{e.use('ef_matmul_s8')}({p}, {d1}, {ptrs[0]}, {d2}, {ptrs[1]}, {dout}, "
            f"{e.ptr(y, const=False)})")
    return [call]


def _emit_requant(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        x, y = e.g.tensors[node.inputs[0]], e.g.tensors[node.outputs[0]]
        if x.dtype != "int8" or y.dtype != "int8":
            raise _Refuse(f"{x.dtype} -> {y.dtype}; the C package is int8 end to end")
        q = prepare(node, e.g, e.numerics)
        q = getattr(q, "requant", q)        # QUANTIZE wraps its int8 -> int8 requant
        p = e.struct("ef_requant_params", f"{tag}_p",
                     f"{{{q.in_offset}, {q.out_offset}, {q.mult}, {q.shift}, {_act(q)}}}")
        din, xp, dout, yp = _io(e, tag, node)
        return [f"{e.use(symbol)}({p}, {din}, {xp}, {dout}, {yp})"]
    return emit


def _emit_lut(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        lut = np.asarray(prepare(node, e.g, e.numerics).lut, np.int8)
        if lut.shape != (256,):
            raise _Refuse(f"table of shape {lut.shape}, expected (256,)")
        t = e.array(f"{tag}_lut", "int8_t", lut)
        p = e.struct("ef_lut_params", f"{tag}_p", f"{{{t}}}")
        din, x, dout, y = _io(e, tag, node)
        return [f"{e.use(symbol)}({p}, {din}, {x}, {dout}, {y})"]
    return emit


def emit_softmax(e: _Emit, tag: str, node: Node) -> list[str]:
    shape = e.shape(node.inputs[0])
    if node.attrs.axis != len(shape) - 1:
        raise _Refuse(f"softmax over axis {node.attrs.axis}; int8 softmax is last-axis only")
    q = prepare(node, e.g, e.numerics)
    p = e.struct("ef_softmax_params", f"{tag}_p",
                 f"{{{q.in_mult}, {q.in_left_shift}, {q.diff_min}}}")
    din, x, dout, y = _io(e, tag, node)
    return [f"{e.use('ef_softmax_s8')}({p}, {din}, {x}, {dout}, {y})"]


def emit_reshape(e: _Emit, tag: str, node: Node) -> list[str]:
    x, y = node.inputs[0], node.outputs[0]
    if e.offsets.get(x) == e.offsets.get(y):
        return []        # the planner aliased it: no code at all
    n = int(np.prod(e.shape(x)))
    din = e.dims(f"{tag}_in", (n,))
    dout = e.dims(f"{tag}_out", (n,))
    return [f"{e.use('ef_reshape_s8')}({din}, {e.ptr(x)}, {dout}, {e.ptr(y, const=False)})"]


def emit_transpose(e: _Emit, tag: str, node: Node) -> list[str]:
    shape = e.shape(node.inputs[0])
    perm_in = [int(d) for d in node.attrs.perm]
    if len(shape) > 4:   # size-1 dims move no bytes: drop them (ShuffleNet's 5-D shuffle)
        keep = [d for d in range(len(shape)) if shape[d] != 1]
        perm_in = [keep.index(d) for d in perm_in if shape[d] != 1]
        shape = tuple(shape[d] for d in keep)
    rank = len(shape)
    pad = 4 - rank
    if pad < 0:
        raise _Refuse(f"rank {rank}")
    perm = list(range(pad)) + [pad + d for d in perm_in]
    p = e.struct("ef_transpose_params", f"{tag}_p", "{{" + ", ".join(map(str, perm)) + "}}")
    x, y = node.inputs[0], node.outputs[0]
    din = e.dims(f"{tag}_in", shape)
    dout = e.dims(f"{tag}_out", tuple(shape[d] for d in perm_in))
    return [(f"{e.use('ef_transpose_s8')}({p}, {din}, {e.ptr(x)}, {dout}, "
             f"{e.ptr(y, const=False)})")]


def emit_concat(e: _Emit, tag: str, node: Node) -> list[str]:
    y = node.outputs[0]
    out = e.shape(y)
    yq = e.g.tensors[y].quant
    axis = node.attrs.axis
    if node.attrs.act.value != "NONE":
        raise _Refuse("fused activation on CONCAT")
    inner = int(np.prod(out[axis + 1:], dtype=np.int64))
    outer = int(np.prod(out[:axis], dtype=np.int64))
    dout = e.dims(f"{tag}_out", out)
    calls, start = [], 0
    for k, x in enumerate(node.inputs):
        t = e.g.tensors[x]
        if t.quant != yq:
            raise _Refuse(f"input {k} quantization differs from the output's "
                          "(int8 CONCAT requires equal scale and zero point)")
        if t.is_const:
            raise _Refuse(f"constant input {k}")
        s = e.shape(x)
        p = e.struct("ef_concat_params", f"{tag}_p{k}",
                     f"{{{outer}, {s[axis] * inner}, {out[axis] * inner}, {start * inner}}}")
        d = e.dims(f"{tag}_in{k}", s)
        calls.append(f"{e.use('ef_concat_s8')}({p}, {d}, {e.ptr(x)}, {dout}, "
                     f"{e.ptr(y, const=False)})")
        start += s[axis]
    return calls


def emit_pad(e: _Emit, tag: str, node: Node) -> list[str]:
    x = node.inputs[0]
    rank = len(e.shape(x))
    if rank > 4:
        raise _Refuse(f"rank {rank}")
    pads = [(0, 0)] * (4 - rank) + [tuple(int(v) for v in p) for p in node.attrs.pads]
    value = prepare(node, e.g, e.numerics).pad_value
    p = e.struct("ef_pad_params", f"{tag}_p",
                 "{{" + ", ".join(str(b) for b, _ in pads) + "}, {"
                 + ", ".join(str(a) for _, a in pads) + f"}}, {int(value)}}}")
    din, xp, dout, yp = _io(e, tag, node)
    return [f"{e.use('ef_pad_s8')}({p}, {din}, {xp}, {dout}, {yp})"]


def emit_strided_slice(e: _Emit, tag: str, node: Node) -> list[str]:
    a = node.attrs
    x, y = node.inputs[0], node.outputs[0]
    dims = list(zip(e.shape(x), e.shape(y), a.begin, a.strides))
    if len(dims) > 4:   # dims of size 1 in and out move no bytes: drop them (ViT's qkv split)
        dims = [d for d in dims if d[:2] != (1, 1)]
    pad = 4 - len(dims)
    if pad < 0:
        raise _Refuse(f"rank {len(dims)} after dropping unit dims")
    prepare(node, e.g, e.numerics)               # refuses operands with different quant
    begin = [0] * pad + [int(d[2]) for d in dims]
    stride = [1] * pad + [int(d[3]) for d in dims]
    p = e.struct("ef_strided_slice_params", f"{tag}_p",
                 "{{" + ", ".join(map(str, begin)) + "}, {" + ", ".join(map(str, stride)) + "}}")
    din = e.dims(f"{tag}_in", tuple(d[0] for d in dims))
    dout = e.dims(f"{tag}_out", tuple(d[1] for d in dims))
    return [(f"{e.use('ef_strided_slice_s8')}({p}, {din}, {e.ptr(x)}, {dout}, "
             f"{e.ptr(y, const=False)})")]


def emit_resize_nearest(e: _Emit, tag: str, node: Node) -> list[str]:
    """RESIZE_NEAREST (index per row / column) and RESIZE_BILINEAR (three ints each)."""
    q = prepare(node, e.g, e.numerics)
    rows = e.array(f"{tag}_rows", "int32_t", np.asarray(q.rows, np.int32))
    cols = e.array(f"{tag}_cols", "int32_t", np.asarray(q.cols, np.int32))
    p = e.struct("ef_resize_params", f"{tag}_p", f"{{{rows}, {cols}}}")
    din, x, dout, y = _io(e, tag, node)
    fn = "ef_resize_bilinear_s8" if node.op == Op.RESIZE_BILINEAR else "ef_resize_nearest_s8"
    return [f"{e.use(fn)}({p}, {din}, {x}, {dout}, {y})"]


def _emit_minmax(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        prepare(node, e.g, e.numerics)           # refuses operands with different quant
        d1, x1, d2, x2, dout, y = _binary(e, tag, node)
        return [f"{e.use(symbol)}({d1}, {x1}, {d2}, {x2}, {dout}, {y})"]
    return emit


EMITTERS: dict[Op, Emitter] = {
    Op.CONV2D: emit_conv2d,
    Op.DWCONV2D: emit_dwconv2d,
    Op.FC: emit_fc,
    Op.AVGPOOL2D: _emit_pool("ef_avgpool2d_s8"),
    Op.MAXPOOL2D: _emit_pool("ef_maxpool2d_s8"),
    Op.MEAN: emit_mean,
    Op.ADD: _emit_addsub("ef_add_s8"),
    Op.SUB: _emit_addsub("ef_sub_s8"),
    Op.MUL: _emit_mul("ef_mul_s8"),
    Op.RELU: _emit_requant("ef_relu_s8"),
    Op.RELU6: _emit_requant("ef_relu6_s8"),
    Op.QUANTIZE: _emit_requant("ef_quantize_s8"),
    Op.LEAKY_RELU: _emit_lut("ef_leaky_relu_s8"),
    Op.LOGISTIC: _emit_lut("ef_logistic_s8"),
    Op.TANH: _emit_lut("ef_tanh_s8"),
    Op.HARD_SWISH: _emit_lut("ef_hard_swish_s8"),
    Op.SOFTMAX: emit_softmax,
    Op.RESHAPE: emit_reshape,
    Op.TRANSPOSE: emit_transpose,
    Op.STRIDED_SLICE: emit_strided_slice,
    Op.RESIZE_NEAREST: emit_resize_nearest,
    Op.RESIZE_BILINEAR: emit_resize_nearest,
    Op.MAXIMUM: _emit_minmax("ef_maximum_s8"),
    Op.MINIMUM: _emit_minmax("ef_minimum_s8"),
    Op.CONCAT: emit_concat,
    Op.PAD: emit_pad,
    Op.SQRT: _emit_lut("ef_sqrt_s8"),
    Op.RSQRT: _emit_lut("ef_rsqrt_s8"),
    Op.EXP: _emit_lut("ef_exp_s8"),
    Op.GELU: _emit_lut("ef_gelu_s8"),
    Op.SQUARED_DIFFERENCE: _emit_addsub("ef_squared_difference_s8"),
    Op.MATMUL: emit_matmul,
    Op.SUM: emit_mean,
    Op.GATHER: emit_gather,
    Op.TRANSPOSE_CONV: emit_transpose_conv,
    Op.LSTM: emit_lstm,
    Op.PRELU: emit_prelu,
    Op.REDUCE_MAX: emit_mean,
    Op.REDUCE_MIN: emit_mean,
}


# ---------------------------------------------------------------- 16x8 emitters
# int16-activation nodes (qparams16.is_s16_node) call runtime/c/ef_kernels_s16.h's kernels,
# all in kernels/ref/nn_s16.c; params from edgeforge.qparams16, as the host reference.
KERNEL_FILES_S16: dict[str, str] = {s: "nn_s16.c" for s in (
    "ef_conv2d_s16", "ef_dwconv2d_s16", "ef_fc_s16", "ef_avgpool2d_s16", "ef_maxpool2d_s16",
    "ef_mean_s16", "ef_add_s16", "ef_sub_s16", "ef_mul_s16", "ef_logistic_s16", "ef_tanh_s16",
    "ef_softmax_s16", "ef_quantize_s8_s16", "ef_quantize_s16_s8", "ef_quantize_s16")}


def _ptr16(e: _Emit, name: str, const: bool = True) -> str:
    ctype = "int16_t" if e.g.tensors[name].dtype == "int16" else "int8_t"
    if name not in e.offsets:
        raise _Refuse(f"tensor {name!r} has no arena offset in the plan")
    return f"({'const ' if const else ''}{ctype} *)(ef_arena_ + {e.offsets[name]})"


def _io16(e: _Emit, tag: str, node: Node) -> tuple[str, str, str, str]:
    x, y = node.inputs[0], node.outputs[0]
    return (e.dims(f"{tag}_in", e.shape(x)), _ptr16(e, x),
            e.dims(f"{tag}_out", e.shape(y)), _ptr16(e, y, const=False))


def _weights16(e: _Emit, tag: str, node: Node) -> tuple[str, str]:
    w = e.array(f"{tag}_w", "int8_t", np.asarray(e.g.tensors[node.inputs[1]].data, np.int8))
    b = node.inputs[2] if len(node.inputs) > 2 else ""
    bv = e.array(f"{tag}_b", "int64_t", np.asarray(e.g.tensors[b].data, np.int64)) if b else "0"
    return w, bv


def emit_conv2d_s16(e: _Emit, tag: str, node: Node) -> list[str]:
    a, q = node.attrs, qp16.prepare(node, e.g, e.numerics)
    w_shape = e.shape(node.inputs[1])
    geo = (f"{{{a.stride[0]}, {a.stride[1]}}}, {{{a.pad[0]}, {a.pad[1]}}}, "
           f"{{{a.dilation[0]}, {a.dilation[1]}}}, {_act(q)}, {int(not q.acc64)}")
    n_out = w_shape[3] if node.op == Op.DWCONV2D else w_shape[0]
    qq = _quant(e, tag, q.mult, q.shift, n_out)
    if node.op == Op.DWCONV2D:
        p = e.struct("ef_dw_s16_params", f"{tag}_p", f"{{{a.depth_multiplier}, {geo}}}")
        symbol = "ef_dwconv2d_s16"
    else:
        p = e.struct("ef_conv_s16_params", f"{tag}_p", f"{{{geo}}}")
        symbol = "ef_conv2d_s16"
    din, x, dout, y = _io16(e, tag, node)
    wd = e.dims(f"{tag}_wd", w_shape)
    w, b = _weights16(e, tag, node)
    return [f"{e.use(symbol)}({p}, {qq}, {din}, {x}, {wd}, {w}, {b}, {dout}, {y})"]


def emit_fc_s16(e: _Emit, tag: str, node: Node) -> list[str]:
    q = qp16.prepare(node, e.g, e.numerics)
    w_shape = e.shape(node.inputs[1])
    p = e.struct("ef_fc_s16_params", f"{tag}_p", f"{{{_act(q)}, {int(not q.acc64)}}}")
    qq = _quant(e, tag, q.mult, q.shift, w_shape[0])
    din, x, dout, y = _io16(e, tag, node)
    wd = e.dims(f"{tag}_wd", (w_shape[0], 1, 1, w_shape[1]))
    w, b = _weights16(e, tag, node)
    return [f"{e.use('ef_fc_s16')}({p}, {qq}, {din}, {x}, {wd}, {w}, {b}, {dout}, {y})"]


def _binary16(e: _Emit, tag: str, node: Node) -> tuple[str, str, str, str, str, str]:
    out = e.shape(node.outputs[0])
    ptrs, dims = [], []
    for k, name in enumerate(node.inputs[:2]):
        t = e.g.tensors[name]
        if len(t.shape) > len(out):
            raise _Refuse(f"input {name!r} has a higher rank than the output")
        if t.is_const:
            if t.dtype != "int16":
                raise _Refuse(f"constant operand {name!r} is {t.dtype}, expected int16")
            ptrs.append(e.array(f"{tag}_c{k + 1}", "int16_t", np.asarray(t.data, np.int16)))
        else:
            ptrs.append(_ptr16(e, name))
        dims.append(e.dims(f"{tag}_in{k + 1}", (1,) * (len(out) - len(t.shape)) + t.shape))
    return (dims[0], ptrs[0], dims[1], ptrs[1], e.dims(f"{tag}_out", out),
            _ptr16(e, node.outputs[0], const=False))


def _emit_sigmoid_s16(symbol: str) -> Emitter:
    def emit(e: _Emit, tag: str, node: Node) -> list[str]:
        q = qp16.prepare(node, e.g, e.numerics)
        p = e.struct("ef_sigmoid_s16_params", f"{tag}_p", f"{{{q.mult}, {q.left_shift}}}")
        din, x, dout, y = _io16(e, tag, node)
        return [f"{e.use(symbol)}({p}, {din}, {x}, {dout}, {y})"]
    return emit


def emit_softmax_s16(e: _Emit, tag: str, node: Node) -> list[str]:
    if node.attrs.axis != len(e.shape(node.inputs[0])) - 1:
        raise _Refuse(f"softmax over axis {node.attrs.axis}; int16 softmax is last-axis only")
    q = qp16.prepare(node, e.g, e.numerics)
    ex = e.array(f"{tag}_exp", "int16_t", q.exp_lut)
    rc = e.array(f"{tag}_recip", "int16_t", q.recip_lut)
    p = e.struct("ef_softmax_s16_params", f"{tag}_p",
                 f"{{{q.in_mult}, {q.in_shift}, {ex}, {rc}}}")
    din, x, dout, y = _io16(e, tag, node)
    return [f"{e.use('ef_softmax_s16')}({p}, {din}, {x}, {dout}, {y})"]


def emit_reshape_s16(e: _Emit, tag: str, node: Node) -> list[str]:
    x, y = node.inputs[0], node.outputs[0]
    if e.offsets.get(x) == e.offsets.get(y):
        return []        # aliased by the planner
    n = 2 * int(np.prod(e.shape(x)))                 # bytes: ef_reshape_s8 is a memmove
    din, dout = e.dims(f"{tag}_in", (n,)), e.dims(f"{tag}_out", (n,))
    return [f"{e.use('ef_reshape_s8')}({din}, {e.ptr(x)}, {dout}, {e.ptr(y, const=False)})"]


def emit_pad_s16(e: _Emit, tag: str, node: Node) -> list[str]:
    """int16 PAD as ef_pad_s8 on bytes: the last axis holds 2 bytes a value, so its pads
    double; the pad value's two bytes must agree (0, the zero point, always does)."""
    shape = e.shape(node.inputs[0])
    if len(shape) > 4:
        raise _Refuse(f"rank {len(shape)}")
    value = qp16.prepare(node, e.g, e.numerics).pad_value
    lo, hi = value & 0xFF, (value >> 8) & 0xFF
    if lo != hi:
        raise _Refuse(f"int16 pad value {value} is not one byte repeated")
    pads = [(0, 0)] * (4 - len(shape)) + [tuple(int(v) for v in q) for q in node.attrs.pads]
    pads[3] = (2 * pads[3][0], 2 * pads[3][1])
    bshape = (1,) * (4 - len(shape)) + shape[:-1] + (2 * shape[-1],)
    oshape = tuple(d + b + a for d, (b, a) in zip(bshape, pads))
    p = e.struct("ef_pad_params", f"{tag}_p",
                 "{{" + ", ".join(str(b) for b, _ in pads) + "}, {"
                 + ", ".join(str(a) for _, a in pads) + f"}}, {lo - 256 if lo > 127 else lo}}}")
    din, dout = e.dims(f"{tag}_in", bshape), e.dims(f"{tag}_out", oshape)
    x, y = node.inputs[0], node.outputs[0]
    return [f"{e.use('ef_pad_s8')}({p}, {din}, {e.ptr(x)}, {dout}, {e.ptr(y, const=False)})"]


def emit_quantize_s16(e: _Emit, tag: str, node: Node) -> list[str]:
    src, dst = e.g.tensors[node.inputs[0]].dtype, e.g.tensors[node.outputs[0]].dtype
    symbol = {("int8", "int16"): "ef_quantize_s8_s16", ("int16", "int8"): "ef_quantize_s16_s8",
              ("int16", "int16"): "ef_quantize_s16"}.get((src, dst))
    if symbol is None:
        raise _Refuse(f"{src} -> {dst}; no C requantize between these types")
    rq = qp16.prepare(node, e.g, e.numerics).requant
    p = e.struct("ef_requant_params", f"{tag}_p",
                 f"{{{rq.in_offset}, {rq.out_offset}, {rq.mult}, {rq.shift}, "
                 f"{{{rq.out_min}, {rq.out_max}}}}}")
    din, x, dout, y = _io16(e, tag, node)
    return [f"{e.use(symbol)}({p}, {din}, {x}, {dout}, {y})"]


EMITTERS_S16: dict[Op, Emitter] = {
    Op.CONV2D: emit_conv2d_s16, Op.DWCONV2D: emit_conv2d_s16, Op.FC: emit_fc_s16,
    Op.AVGPOOL2D: _emit_pool("ef_avgpool2d_s16"),
    Op.MAXPOOL2D: _emit_pool("ef_maxpool2d_s16"), Op.MEAN: emit_mean,
    Op.ADD: _emit_addsub("ef_add_s16"), Op.SUB: _emit_addsub("ef_sub_s16"),
    Op.MUL: _emit_mul("ef_mul_s16"),
    Op.LOGISTIC: _emit_sigmoid_s16("ef_logistic_s16"),
    Op.TANH: _emit_sigmoid_s16("ef_tanh_s16"), Op.SOFTMAX: emit_softmax_s16,
    Op.RESHAPE: emit_reshape_s16, Op.QUANTIZE: emit_quantize_s16, Op.PAD: emit_pad_s16,
}


def _emitter(graph: Graph, n: Node) -> Emitter | None:
    return (EMITTERS_S16 if qp16.is_s16_node(n, graph) else EMITTERS).get(n.op)


# ---------------------------------------------------------------- the package
def check_supported(graph: Graph, path: str = "") -> None:
    """Raise ONE UnsupportedOpError listing every node the C backend cannot emit."""
    problems = []
    for i, n in enumerate(graph.nodes):
        if _emitter(graph, n) is None:
            kind = "int16 " if qp16.is_s16_node(n, graph) else ""
            problems.append((i, n.name or n.outputs[0], str(n.op),
                             f"no {kind}C kernel for this op"))
    if not problems:
        where = {o: i for i, n in enumerate(graph.nodes) for o in n.outputs}
        for name in graph.inputs + graph.outputs:
            if graph.tensors[name].dtype not in IO_CTYPES:
                why = (f"{graph.tensors[name].dtype} graph input/output; the C package "
                       "takes int8 or int16")
                problems.append((where.get(name, 0), name, "graph I/O", why))
    if problems:
        raise UnsupportedOpError(path or graph.name, problems, [str(o) for o in EMITTERS])


def node_tag(i: int, node: Node) -> str:
    return f"{node.op.value.lower()}{i}"


def emit_c(graph: Graph, plan: Any, out_dir: str | Path, name: str = "model",
           numerics: str | Numerics = "tflm", model_hash: str = "",
           header: str = "model.h") -> CPackage:
    """Write out_dir/{model.h, model.c, weights.c} + the used kernels and headers.

    `plan` has `.offsets` (tensor -> arena byte offset) and `.size` (arena bytes), and
    optionally `.schedule(graph)` (edgeforge.plan.memory.GraphPlan: the node order to emit);
    `model_hash` is the sha256 hex of the model.tflite this package was compiled with.
    `header` other than model.h (compile --name NAME: NAME.h) holds the model's API, and
    model.h shrinks to the one-model EF_MODEL_* glue that includes it.
    """
    if not name.isidentifier():
        raise ValueError(f"C name {name!r} is not an identifier")
    numerics = Numerics(numerics)
    check_supported(graph)
    if hasattr(plan, "schedule"):      # edgeforge.plan GraphPlan: run the nodes in its order
        graph = plan.schedule(graph)
    e = _Emit(graph, dict(plan.offsets), numerics, prefix=f"ef_{name}_",
              inplace=dict(getattr(plan, "kernels", None) or {}),
              scratch=dict(getattr(plan, "scratch", None) or {}))
    body: list[str] = []
    problems = []
    fused = dict(getattr(plan, "fused", None) or {})
    hidden = {t for f in fused.values() for t in f.hidden}
    for i, n in enumerate(graph.nodes):
        tag = node_tag(i, n)
        try:
            if n.outputs[0] in hidden:              # runs inside its block's add
                calls = []
            elif n.outputs[0] in fused:
                calls = emit_pair_add(e, tag, fused[n.outputs[0]])
            else:
                calls = _emitter(graph, n)(e, tag, n)
            calls, e.pre = e.pre + calls, []
        except _Refuse as why:
            problems.append((i, n.name or n.outputs[0], str(n.op), str(why)))
            continue
        body.append(f"    EF_OP_BEGIN({i});  /* {n.op.value} -> {_comment(n.outputs[0])} */")
        body += [f"    EF_TRY({c});" for c in calls]
        body.append(f"    EF_OP_END({i});")
    if problems:
        raise UnsupportedOpError(graph.name, problems, [str(o) for o in EMITTERS])

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arena = max(int(plan.size), 16)
    files = _copy_runtime(out, e.kernels, numerics)
    api, glue = _model_h(graph, e, name, arena, numerics, model_hash)
    if header == "model.h":
        (out / "model.h").write_text(api.replace(GLUE_MARKER, glue))
    else:
        (out / header).write_text(api.replace(GLUE_MARKER + "\n", ""))
        (out / "model.h").write_text(
            f"/* Generated by edgeforge: one-model glue for firmware templates and harnesses;\n"
            f"   programs with several models include each model's own header instead. */\n"
            f"#ifndef EF_MODEL_GLUE_H\n#define EF_MODEL_GLUE_H\n#include \"{header}\"\n"
            f"{glue}\n#endif\n")
        files.append(header)
    (out / "model.c").write_text(_model_c(graph, e, name, arena, numerics, body, header))
    (out / "weights.c").write_text(
        "/* Generated by edgeforge: constant tensors of the model. */\n"
        '#include "ef_types.h"\n\n' + "\n\n".join(e.weights) + "\n")
    files += ["model.h", "model.c", "weights.c"]
    return CPackage(out, sorted(files), list(e.kernels), e.weight_bytes, arena, e.packed)


def _comment(s: str) -> str:
    s = s.replace("*/", "* /")
    return s if len(s) <= 60 else s[:28] + "..." + s[-28:]


# IR ops whose kernels requantize: each has an EF_<OP>_SINGLE_ROUNDING macro in ef_requantize.h
# Ops whose kernel picks its requantization rounding with an EF_<OP>_SINGLE_ROUNDING macro:
# read from ef_requantize.h, the one list (test_op_coverage checks the kernels use no other)
ROUNDING_OPS = tuple(Op(m) for m in re.findall(r"^#ifndef EF_(\w+)_SINGLE_ROUNDING$",
                                               (RUNTIME_C / "ef_requantize.h").read_text(),
                                               re.MULTILINE))
PROFILE_MARKER = ("/* EF_PROFILE: the C generator replaces this line with the compiled "
                  "profile's defaults */")


def _single(op: Op, numerics: Numerics) -> int:
    return int(rounding(op, numerics) is Rounding.SINGLE)


def _profile_block(numerics: Numerics) -> str:
    """Per-op rounding defaults of the profile (edgeforge.qparams.rounding), for ef_requantize.h."""
    lines = [f"/* profile {numerics}: per-op requantization rounding (sdk/qparams.py) */"]
    for op in ROUNDING_OPS:
        lines += [f"#ifndef EF_{op.value}_SINGLE_ROUNDING",
                  f"#define EF_{op.value}_SINGLE_ROUNDING {_single(op, numerics)}", "#endif"]
    return "\n".join(lines)


def _rounding_checks(numerics: Numerics) -> list[str]:
    out = []
    for op in ROUNDING_OPS:
        v = _single(op, numerics)
        msg = f"compiled for --numerics {numerics}: EF_{op.value}_SINGLE_ROUNDING must be {v}"
        out += [f"#if EF_{op.value}_SINGLE_ROUNDING != {v}", f'#error "{msg}"', "#endif"]
    return out


def _copy_runtime(out: Path, kernels: list[str], numerics: Numerics) -> list[str]:
    files = []
    for h in HEADERS:
        text = (RUNTIME_C / h).read_text()
        if h == "ef_requantize.h":   # default the rounding to the compiled profile
            text = text.replace(PROFILE_MARKER, _profile_block(numerics))
        if h == "ef_kernels.h":      # opt-in per-profile symbol names (README: several models)
            text = text.replace('#include "ef_types.h"\n',
                                '#include "ef_types.h"\n' + namespace_block(numerics), 1)
        (out / h).write_text(text)
        files.append(h)
    for h in PRIVATE_HEADERS:
        shutil.copyfile(KERNEL_DIR / h, out / h)
        files.append(h)
    if any(k in KERNEL_FILES_S16 for k in kernels):
        text = (RUNTIME_C / "ef_kernels_s16.h").read_text()
        (out / "ef_kernels_s16.h").write_text(text.replace(
            S16_INCLUDE, S16_INCLUDE + namespace_block(numerics, s16=True), 1))
        shutil.copyfile(KERNEL_DIR / "ef_nn_s16.h", out / "ef_nn_s16.h")   # nn_s16.c's helpers
        files += ["ef_kernels_s16.h", "ef_nn_s16.h"]
    for src in dict.fromkeys(KERNEL_FILES.get(k) or KERNEL_FILES_S16[k] for k in kernels):
        shutil.copyfile(KERNEL_DIR / src, out / src)
        files.append(src)
    return files


# the line of ef_kernels_s16.h after which a 16x8 package's copy gets its namespace block
S16_INCLUDE = '#include "ef_requantize.h"\n'


def kernel_symbols(s16: bool = False) -> list[str]:
    """Every external symbol of the kernel library: the functions ef_kernels.h and
    ef_inplace.h declare (static inline helpers are not external); s16: those of
    ef_kernels_s16.h (16x8), which only 16x8 packages carry."""
    text = ((RUNTIME_C / "ef_kernels_s16.h").read_text() if s16 else
            (RUNTIME_C / "ef_kernels.h").read_text() + (KERNEL_DIR / "ef_inplace.h").read_text())
    names = re.findall(r"^(?:ef_status|int32_t|int|void)\s+(ef_\w+)\s*\(", text, re.MULTILINE)
    return sorted(set(names))


def namespace_block(numerics: Numerics | str, s16: bool = False) -> str:
    """#defines giving every kernel symbol the profile's name (ef_fc_s8 -> ef_tflm_fc_s8)
    when the build defines EF_NAMESPACE_KERNELS: two models compiled for different numerics
    profiles then link side by side, while one profile's kernels are shared. s16: the 16x8
    kernels' block (in ef_kernels_s16.h, so int8 packages keep their exact text)."""
    p = str(Numerics(numerics))
    lines = ["", "/* EF_NAMESPACE_KERNELS (set by CMakeLists.txt, library.json, edgeforge.mk):",
             f"   kernel symbols carry the numerics profile ({p}), so packages compiled for",
             "   different profiles link into one program without clashing. */",
             "#ifdef EF_NAMESPACE_KERNELS"]
    lines += [f"#define {s} ef_{p}_{s[3:]}" for s in kernel_symbols(s16)]
    return "\n".join(lines + ["#endif", ""]) + "\n"


def _io_specs(graph: Graph) -> list[tuple[str, str, Any, int]]:
    specs = []
    for kind, names in (("INPUT", graph.inputs), ("OUTPUT", graph.outputs)):
        for k, n in enumerate(names):
            specs.append((kind, n, graph.tensors[n], k))
    return specs


GLUE_MARKER = "/* EF_MODEL_GLUE */"
# graph I/O element types; an int8-only model's header keeps its int8 spelling unchanged
IO_CTYPES = {"int8": "int8_t", "int16": "int16_t"}


def io_ctype(graph: Graph, names: list[str]) -> str:
    """The C type ef_<name>_input / _output return: the I/O's type, `void` when mixed."""
    types = {graph.tensors[n].dtype for n in names} or {"int8"}
    return IO_CTYPES[types.pop()] if len(types) == 1 else "void"


def _wide_io(graph: Graph) -> bool:
    return any(graph.tensors[n].dtype != "int8" for n in graph.inputs + graph.outputs)


def _model_h(graph: Graph, e: _Emit, name: str, arena: int, numerics: Numerics,
             model_hash: str) -> tuple[str, str]:
    """(the model's API header with GLUE_MARKER where the glue goes, the EF_MODEL_* glue)."""
    N = name.upper()
    hash8 = bytes.fromhex(model_hash[:16]) if model_hash else bytes(8)
    hash_init = "{" + ", ".join(f"0x{b:02x}" for b in hash8) + "}"
    lines = [
        f"/* Generated by edgeforge: C API of model '{graph.name}' (numerics {numerics}). */",
        f"#ifndef EF_{N}_MODEL_H",
        f"#define EF_{N}_MODEL_H",
        "",
        "#include <stdint.h>",
        "",
        f"#define EF_{N}_NUMERICS \"{numerics}\"",
        f"#define EF_{N}_ARENA_SIZE {arena}",
        f"#define EF_{N}_OP_COUNT {len(graph.nodes)}",
        f"#define EF_{N}_INPUT_COUNT {len(graph.inputs)}",
        f"#define EF_{N}_OUTPUT_COUNT {len(graph.outputs)}",
        f"#define EF_{N}_HASH8 {hash_init}",
    ]
    for kind, tname, t, k in _io_specs(graph):
        q = t.quant
        scale = float(q.scale[0]) if q is not None else 0.0
        zp = int(q.zero_point[0]) if q is not None else 0
        pre = f"EF_{N}_{kind}{k}"
        lines += [
            f"/* {kind.lower()} {k}: {_comment(tname)} */",
            f"#define {pre}_RANK {len(t.shape)}",
            f"#define {pre}_SHAPE {{" + ", ".join(str(d) for d in t.shape) + "}",
            f"#define {pre}_BYTES {t.nbytes}",
            f"#define {pre}_SCALE {scale!r}f",
            f"#define {pre}_ZERO_POINT {zp}",
            f"#define {pre}_OFFSET {e.offsets[tname]}",
        ]
        if _wide_io(graph):            # element type and size, for int16 graph I/O
            lines += [f"#define {pre}_TYPE {IO_CTYPES[t.dtype]}",
                      f"#define {pre}_ELEM_BYTES {np.dtype(t.dtype).itemsize}"]
    ib = _ternary("i", [graph.tensors[n].nbytes for n in graph.inputs])
    ob = _ternary("i", [graph.tensors[n].nbytes for n in graph.outputs])
    lines += [
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        "/** Run the model on the arena's inputs; 0 on success, else the failing ef_status. */",
        f"int ef_{name}_invoke(void);",
        *_io_decls(graph, name),
        "/** The arena in use (EF_" + N + "_ARENA_SIZE bytes). */",
        f"uint8_t *ef_{name}_arena(void);",
        f"#ifdef EF_{N}_USER_ARENA",
        "/** Hand in the arena (>= ARENA_SIZE bytes, 16-byte aligned) before the first call. */",
        f"void ef_{name}_set_arena(uint8_t *arena);",
        "#endif",
        "",
        *_float_helpers(graph, name),
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        GLUE_MARKER,
        "",
        f"#endif /* EF_{N}_MODEL_H */",
        "",
    ]
    glue = [
        "/* Name-independent glue for firmware templates and harnesses (one model per build). */",
        "#ifndef EF_MODEL_INVOKE",
        f"#define EF_MODEL_INVOKE() ef_{name}_invoke()",
        f"#define EF_MODEL_INPUT(i) ef_{name}_input(i)",
        f"#define EF_MODEL_OUTPUT(i) ef_{name}_output(i)",
        f"#define EF_MODEL_NUM_INPUTS {len(graph.inputs)}",
        f"#define EF_MODEL_NUM_OUTPUTS {len(graph.outputs)}",
        f"#define EF_MODEL_INPUT_BYTES(i) {ib}",
        f"#define EF_MODEL_OUTPUT_BYTES(i) {ob}",
        f"#define EF_MODEL_NUM_OPS {len(graph.nodes)}",
        f"#define EF_MODEL_HASH {hash_init}",
        f"#define EF_MODEL_ARENA_BYTES {arena}",
        "#endif",
    ]
    return "\n".join(lines), "\n".join(glue)


def _io_decls(graph: Graph, name: str) -> list[str]:
    N = name.upper()
    if not _wide_io(graph):
        return ["/** Input i, as int8 in the arena (EF_" + N + "_INPUTi_BYTES bytes); NULL if no such. */",
                f"int8_t *ef_{name}_input(int i);",
                "/** Output i, as int8 in the arena; NULL if no such output. */",
                f"int8_t *ef_{name}_output(int i);"]
    out = []
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        ct = io_ctype(graph, names)
        what = ct if ct != "void" else "EF_" + N + f"_{kind.upper()}i_TYPE"
        doc = (f"/** {kind.capitalize()} i, as {what} in the arena "
               f"(EF_{N}_{kind.upper()}i_BYTES bytes); NULL if no such. */")
        out += [doc, f"{ct} *ef_{name}_{kind}(int i);"]
    return out


def _float_helpers(graph: Graph, name: str) -> list[str]:
    """Inline float <-> int8 conversions with the model's I/O scales and zero points:
    TFLite's quantization (x / scale rounded half away from zero, + zero point, saturated;
    edgeforge.qmath.quantize) and (q - zero point) * scale."""
    N = name.upper()
    out = []
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        K = kind.upper()
        for what, macro, ctype in (("scale", "SCALE", "float"), ("zero_point", "ZERO_POINT",
                                                                 "int32_t")):
            expr = "0"
            for k in reversed(range(len(names))):
                expr = f"(i) == {k} ? EF_{N}_{K}{k}_{macro} : {expr}"
            out += [f"static inline {ctype} ef_{name}_{kind}_{what}(int i) {{ return {expr}; }}"]
        expr = _ternary("i", [graph.tensors[n].nbytes for n in names])
        out += [f"static inline int32_t ef_{name}_{kind}_bytes(int i) {{ return {expr}; }}"]
    if _wide_io(graph):
        return out + _float_helpers_wide(graph, name)
    return out + [
        "",
        "/** Quantize n floats into input i with its scale and zero point (TFLite rounding:",
        "    half away from zero, saturated to int8). 0, or -1 if no input i or n too large. */",
        f"static inline int ef_{name}_input_from_float(int i, const float *x, int32_t n)",
        "{",
        f"    int8_t *q = ef_{name}_input(i);",
        f"    const float s = ef_{name}_input_scale(i);",
        f"    const int32_t zp = ef_{name}_input_zero_point(i);",
        "    int32_t k;",
        f"    if (!q || n < 0 || n > ef_{name}_input_bytes(i) || s == 0.0f) return -1;",
        "    for (k = 0; k < n; ++k) {",
        "        float v = x[k] / s;                  /* float32, as the reference divides */",
        "        int32_t r;",
        "        if (!(v > -512.0f)) v = -512.0f;     /* also NaN: saturate, never overflow */",
        "        if (v > 512.0f) v = 512.0f;",
        "        r = (int32_t)(v >= 0.0f ? (double)v + 0.5 : (double)v - 0.5) + zp;",
        "        q[k] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);",
        "    }",
        "    return 0;",
        "}",
        "",
        "/** Dequantize n values of output i to float: (q - zero_point) * scale. 0, or -1. */",
        f"static inline int ef_{name}_output_to_float(int i, float *y, int32_t n)",
        "{",
        f"    const int8_t *q = ef_{name}_output(i);",
        f"    const double s = (double)ef_{name}_output_scale(i);",
        f"    const int32_t zp = ef_{name}_output_zero_point(i);",
        "    int32_t k;",
        f"    if (!q || n < 0 || n > ef_{name}_output_bytes(i)) return -1;",
        "    for (k = 0; k < n; ++k) y[k] = (float)((double)(q[k] - zp) * s);",
        "    return 0;",
        "}",
        "",
    ]


def _float_helpers_wide(graph: Graph, name: str) -> list[str]:
    """The float helpers of a model with int16 graph I/O: per I/O element size (1: int8,
    2: int16), the same rounding, saturated to the element's range; n counts elements."""
    out = []
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        expr = _ternary("i", [np.dtype(graph.tensors[n].dtype).itemsize for n in names])
        out += [f"static inline int32_t ef_{name}_{kind}_elem_bytes(int i) {{ return {expr}; }}"]
    return out + [
        "",
        "/** Quantize n floats into input i with its scale and zero point (TFLite rounding:",
        "    half away from zero, saturated to the input's int8 / int16 range). 0, or -1 if no",
        "    input i or n too large. */",
        f"static inline int ef_{name}_input_from_float(int i, const float *x, int32_t n)",
        "{",
        f"    void *q = ef_{name}_input(i);",
        f"    const int32_t w = ef_{name}_input_elem_bytes(i);",
        f"    const float s = ef_{name}_input_scale(i);",
        f"    const int32_t zp = ef_{name}_input_zero_point(i);",
        "    const float lim = w == 2 ? 131072.0f : 512.0f;",
        "    const int32_t lo = w == 2 ? -32768 : -128, hi = w == 2 ? 32767 : 127;",
        "    int32_t k;",
        f"    if (!q || n < 0 || (int64_t)n * w > ef_{name}_input_bytes(i) || s == 0.0f)",
        "        return -1;",
        "    for (k = 0; k < n; ++k) {",
        "        float v = x[k] / s;                  /* float32, as the reference divides */",
        "        int32_t r;",
        "        if (!(v > -lim)) v = -lim;           /* also NaN: saturate, never overflow */",
        "        if (v > lim) v = lim;",
        "        r = (int32_t)(v >= 0.0f ? (double)v + 0.5 : (double)v - 0.5) + zp;",
        "        r = r < lo ? lo : r > hi ? hi : r;",
        "        if (w == 2) ((int16_t *)q)[k] = (int16_t)r; else ((int8_t *)q)[k] = (int8_t)r;",
        "    }",
        "    return 0;",
        "}",
        "",
        "/** Dequantize n values of output i to float: (q - zero_point) * scale. 0, or -1. */",
        f"static inline int ef_{name}_output_to_float(int i, float *y, int32_t n)",
        "{",
        f"    const void *q = ef_{name}_output(i);",
        f"    const int32_t w = ef_{name}_output_elem_bytes(i);",
        f"    const double s = (double)ef_{name}_output_scale(i);",
        f"    const int32_t zp = ef_{name}_output_zero_point(i);",
        "    int32_t k;",
        f"    if (!q || n < 0 || (int64_t)n * w > ef_{name}_output_bytes(i)) return -1;",
        "    for (k = 0; k < n; ++k) {",
        "        const int32_t v = w == 2 ? ((const int16_t *)q)[k] : ((const int8_t *)q)[k];",
        "        y[k] = (float)((double)(v - zp) * s);",
        "    }",
        "    return 0;",
        "}",
        "",
    ]


def _ternary(var: str, values: list[int]) -> str:
    expr = "0"
    for k in reversed(range(len(values))):
        expr = f"(({var}) == {k} ? {values[k]} : {expr})"
    return expr


def _model_c(graph: Graph, e: _Emit, name: str, arena: int, numerics: Numerics,
             body: list[str], header: str = "model.h") -> str:
    N = name.upper()
    ins = ", ".join(str(e.offsets[n]) for n in graph.inputs)
    outs = ", ".join(str(e.offsets[n]) for n in graph.outputs)
    cin, cout = io_ctype(graph, graph.inputs), io_ctype(graph, graph.outputs)
    return "\n".join([
        (f"/* Generated by edgeforge: model '{graph.name}', numerics {numerics}, "
         f"{len(graph.nodes)} ops, arena {arena} bytes. */"),
        f'#include "{header}"',
        '#include "ef_kernels.h"',
        '#include "ef_inplace.h"',
        '#include "ef_requantize.h"',
        *(['#include "ef_kernels_s16.h"'] if any(k in KERNEL_FILES_S16 for k in e.kernels)
          else []),
        "",
        *_rounding_checks(numerics),
        "",
        "#ifndef EF_OP_BEGIN",
        "#define EF_OP_BEGIN(i) ((void)0)",
        "#endif",
        "#ifndef EF_OP_END",
        "#define EF_OP_END(i) ((void)0)",
        "#endif",
        "",
        f"#ifndef EF_{N}_USER_ARENA",
        f"static uint8_t ef_{name}_arena_[{arena}] EF_ALIGNED(16);",
        f"static uint8_t *ef_arena_ = ef_{name}_arena_;",
        "#else",
        "static uint8_t *ef_arena_ = 0;",
        f"void ef_{name}_set_arena(uint8_t *arena) {{ ef_arena_ = arena; }}",
        "#endif",
        "",
        f"uint8_t *ef_{name}_arena(void) {{ return ef_arena_; }}",
        "",
        f"static const int32_t ef_in_off_[{max(len(graph.inputs), 1)}] = {{{ins or '0'}}};",
        f"static const int32_t ef_out_off_[{max(len(graph.outputs), 1)}] = {{{outs or '0'}}};",
        "",
        f"{cin} *ef_{name}_input(int i)",
        "{",
        f"    if (i < 0 || i >= {len(graph.inputs)} || !ef_arena_) return 0;",
        f"    return ({cin} *)(ef_arena_ + ef_in_off_[i]);",
        "}",
        "",
        f"{cout} *ef_{name}_output(int i)",
        "{",
        f"    if (i < 0 || i >= {len(graph.outputs)} || !ef_arena_) return 0;",
        f"    return ({cout} *)(ef_arena_ + ef_out_off_[i]);",
        "}",
        "",
        "/* constant tensors (weights.c) */",
        *e.externs,
        "",
        "/* per-node parameters */",
        *e.decls,
        "",
        f"int ef_{name}_invoke(void)",
        "{",
        "    if (!ef_arena_) return (int)EF_ERR_ARG;",
        *body,
        "    return 0;",
        "}",
        "",
    ])
