"""numpy interpreter of the IR: float32 ops and int8 ops bit-exact to TFLM / LiteRT.

`run(graph, feeds, numerics="tflm")` executes nodes in order. Per node it picks the int8
kernel (REFERENCE_S8) when any activation it reads or writes is int8, else the float kernel
(REFERENCE), or for a float layer whose weight is hybrid (int8 + scales, sdk/ir.py) the
LiteRT hybrid kernel (REFERENCE_HYBRID; prepare_graph hands it a HybridWeight); the loop
has no per-op cases. int8 kernels take the op's params from
edgeforge.qparams (the same numbers the C codegen emits), so all profile differences live there
(or in sdk/qmath.py), never here.

TFLM (profile tflm) vs ai-edge-litert 2.3 BUILTIN_REF (profile litert), found by reading the
kernels and measured on single-op models (tests/unit/test_reference_opcases.py) and on the
MLPerf fixtures' layers:
  1. Q31 requantization rounding. TFLM double-rounds (SaturatingRoundingDoublingHighMul then
     RoundingDivideByPOT). ai-edge-litert is NOT built with TFLITE_SINGLE_ROUNDING: its
     reference conv/depthwise/add/sub/mul/pool/mean/softmax double-round like TFLM, but its
     int8 FULLY_CONNECTED single-rounds -> sdk/qparams.py: SINGLE_ROUNDING_OPS / rounding();
     the arithmetic itself is sdk/qmath.py: requantize().
  2. RELU6 int8: TFLM clamps the input bytes to [in_zp, q_in(6)] with no rescale; LiteRT's
     ReluX requantizes in -> out, then clamps on the output scale -> qparams.prepare_relu6.
  3. LOGISTIC / TANH int8: TFLM runs gemmlowp fixed-point logistic/tanh on Q4.27 inputs;
     LiteRT's reference kernels look up a float-filled LUT (1/(1+expf(-x)), tanhf) ->
     qparams.prepare_logistic / prepare_tanh (both tabulated into a 256-entry LUT).
  4. RELU / LEAKY_RELU multiplier: LiteRT divides the float scales in float, TFLM in double
     -> qparams._real_div (no byte difference seen yet; kept because the sources differ).
  5. SUM int8: ai-edge-litert 2.3's BUILTIN_REF kernel writes -1 whatever the input, so the
     litert profile follows its default kernel, which single-rounds (SINGLE_ROUNDING_OPS).
  6. SQRT, EXP, GELU int8: TFLM has no kernel; both profiles tabulate LiteRT's (EXP and GELU
     a float LUTPopulate; SQRT truncates instead of rounding) -> qparams.prepare_sqrt etc.
Shared by both (so not behind the switch, but easy to get wrong): MEAN folds 1/count into
the multiplier (n = min(log2(count), 32, 31 + shift); mult = (mult << n) // count) rather
than dividing the sum; AVERAGE_POOL divides rounding half away from zero; ADD/SUB shift
inputs left by 20; int8 CONCAT demands equal quant everywhere (both refuse otherwise).
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgeforge import fixedpoint as fx
from edgeforge import qparams as qp
from edgeforge import qparams16 as qp16
from edgeforge.ir import (
    ACT_RANGE,
    OPS,
    Act,
    BatchNormAttrs,
    BinaryAttrs,
    ClipAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    GatherAttrs,
    Graph,
    HardSigmoidAttrs,
    LeakyReluAttrs,
    LrnAttrs,
    MeanAttrs,
    NoAttrs,
    Node,
    Op,
    PadAttrs,
    Pool2dAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    TransposeAttrs,
    TransposeConvAttrs,
    hybrid_int8,
)
from edgeforge.qmath import (
    INT8_MAX,
    INT8_MIN,
    Numerics,
    Rounding,
    gelu,
    requantize,
    round_half_away,
)
from edgeforge.qmath import rounding_divide_by_pot as rdpot
from edgeforge.runtime.lstm import lstm, lstm_s8

F32 = np.float32


# ---------------------------------------------------------------- shared geometry
def _out_hw(h: int, w: int, k: tuple[int, int], stride: tuple[int, int],
            dil: tuple[int, int], pad: tuple[int, int, int, int]) -> tuple[int, int]:
    eh, ew = (k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1
    return ((h + pad[0] + pad[2] - eh) // stride[0] + 1,
            (w + pad[1] + pad[3] - ew) // stride[1] + 1)


def windows(x: np.ndarray, k: tuple[int, int], stride: tuple[int, int],
             dil: tuple[int, int], pad: tuple[int, int, int, int], value: Any = 0
             ) -> np.ndarray:
    """[N,H,W,C] -> view [N, OH, OW, KH, KW, C] of the padded input (pad filled with value).
    Also the im2col rows of edgeforge.compress.distill's least-squares refit."""
    t, left, b, r = pad
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)
    eh, ew = (k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1
    win = sliding_window_view(xp, (eh, ew), axis=(1, 2))      # [N,OH',OW',C,eh,ew]
    win = win[:, ::stride[0], ::stride[1], :, ::dil[0], ::dil[1]]
    oh, ow = _out_hw(x.shape[1], x.shape[2], k, stride, dil, pad)
    return win[:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3)


def _gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer matmul via BLAS. Every product is at most ma * mb in magnitude, so over
    a block of at most 2^24 / (ma * mb) taps every partial sum, in any order, is an integer
    float32 holds exactly: float32 GEMMs (twice float64's speed) give each block's exact sum
    (int8 operands: 514 taps a block), added in int64. Wider operands (int16) use float64,
    exact while partial sums stay below 2^53."""
    ma = max(-int(a.min(initial=0)), int(a.max(initial=0)))
    mb = max(-int(b.min(initial=0)), int(b.max(initial=0)))
    blk = (1 << 24) // max(ma * mb, 1)
    if blk < 64:
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    bf = b.astype(np.float32)
    k = a.shape[-1]
    acc = (a[:, :blk].astype(np.float32) @ bf[:blk]).astype(np.int64)
    for s in range(blk, k, blk):
        acc += (a[:, s:s + blk].astype(np.float32) @ bf[s:s + blk]).astype(np.int64)
    return acc


def _act_f(y: np.ndarray, act: Act) -> np.ndarray:
    lo, hi = ACT_RANGE[Act(act)]
    return np.clip(y, lo, hi) if act != Act.NONE else y


def _clamp8(y: np.ndarray, lo: int = INT8_MIN, hi: int = INT8_MAX) -> np.ndarray:
    return np.clip(y, lo, hi).astype(np.int8)


def _cdiv(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """C integer division (truncates toward zero)."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (np.asarray(b) < 0), -q, q)


# ---------------------------------------------------------------- float kernels
def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Conv2dAttrs) -> np.ndarray:
    win = windows(x.astype(np.float64), w.shape[1:3], a.stride, a.dilation, a.pad)
    n, oh, ow = win.shape[:3]
    y = win.reshape(n * oh * ow, -1) @ w.reshape(w.shape[0], -1).T.astype(np.float64)
    if b is not None:
        y = y + b
    return _act_f(y.reshape(n, oh, ow, -1), a.act).astype(F32)


def _dw_expand(x: np.ndarray, mult: int) -> np.ndarray:
    return np.repeat(x, mult, axis=3) if mult > 1 else x


def _dw_taps(win: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum over taps of win[n, h, w, i, j, c] * w[i, j, c]: one multiply-add per tap on
    [N, OH, OW, C] slices (an einsum over the 6-D view runs a C loop, 5x slower here).
    Integer operands give the exact integer sum in any order."""
    acc = win[:, :, :, 0, 0, :] * w[0, 0]
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            if i or j:
                acc += win[:, :, :, i, j, :] * w[i, j]
    return acc


def dwconv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: DwConv2dAttrs
             ) -> np.ndarray:
    xe = _dw_expand(x.astype(np.float64), w.shape[3] // x.shape[3])
    y = _dw_taps(windows(xe, w.shape[1:3], a.stride, a.dilation, a.pad),
                 w[0].astype(np.float64))
    if b is not None:
        y = y + b
    return _act_f(y, a.act).astype(F32)


def fc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: FcAttrs) -> np.ndarray:
    rows = x.reshape(-1, w.shape[1]).astype(np.float64)
    y = rows @ w.T.astype(np.float64)
    if b is not None:
        y = y + b
    shape = x.shape[:-1] + (w.shape[0],) if a.keep_num_dims else (rows.shape[0], w.shape[0])
    return _act_f(y, a.act).reshape(shape).astype(F32)


def matmul(x: np.ndarray, y: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.matmul(x.astype(np.float64), y.astype(np.float64)).astype(F32)


def batchnorm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray,
              var: np.ndarray, a: BatchNormAttrs) -> np.ndarray:
    inv = scale / np.sqrt(var.astype(np.float64) + a.epsilon)
    return ((x - mean) * inv + bias).astype(F32)


def _pool_count(x: np.ndarray, a: Pool2dAttrs) -> np.ndarray:
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=np.int64)
    return windows(ones, a.kernel, a.stride, (1, 1), a.pad).sum(axis=(3, 4))  # [1,OH,OW,1]


def avgpool2d(x: np.ndarray, a: Pool2dAttrs) -> np.ndarray:
    s = windows(x.astype(np.float64), a.kernel, a.stride, (1, 1), a.pad).sum(axis=(3, 4))
    cnt = a.kernel[0] * a.kernel[1] if a.count_include_pad else _pool_count(x, a)
    return _act_f(s / cnt, a.act).astype(F32)


def maxpool2d(x: np.ndarray, a: Pool2dAttrs) -> np.ndarray:
    win = windows(x, a.kernel, a.stride, (1, 1), a.pad, value=-np.inf)
    return _act_f(win.max(axis=(3, 4)), a.act).astype(F32)


def mean(x: np.ndarray, a: MeanAttrs) -> np.ndarray:
    return np.mean(x.astype(np.float64), axis=a.axes, keepdims=a.keepdims).astype(F32)


def add(x: np.ndarray, y: np.ndarray, a: BinaryAttrs) -> np.ndarray:
    return _act_f(np.add(x, y, dtype=F32), a.act)


def sub(x: np.ndarray, y: np.ndarray, a: BinaryAttrs) -> np.ndarray:
    return _act_f(np.subtract(x, y, dtype=F32), a.act)


def mul(x: np.ndarray, y: np.ndarray, a: BinaryAttrs) -> np.ndarray:
    return _act_f(np.multiply(x, y, dtype=F32), a.act)


def div(x: np.ndarray, y: np.ndarray, a: BinaryAttrs) -> np.ndarray:
    return _act_f(np.divide(x, y, dtype=F32), a.act)


def relu(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.maximum(x, F32(0))


def relu6(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.clip(x, F32(0), F32(6))


def clip(x: np.ndarray, a: ClipAttrs) -> np.ndarray:
    return np.clip(x, F32(a.min), F32(a.max)).astype(F32)


def leaky_relu(x: np.ndarray, a: LeakyReluAttrs) -> np.ndarray:
    return np.where(x >= 0, x, x * F32(a.alpha)).astype(F32)


def logistic(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(F32)


def tanh(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.tanh(x.astype(np.float64)).astype(F32)


def hard_swish(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    xd = x.astype(np.float64)
    return (xd * np.clip(xd + 3.0, 0.0, 6.0) / 6.0).astype(F32)


def hard_sigmoid(x: np.ndarray, a: HardSigmoidAttrs) -> np.ndarray:
    return np.clip(a.alpha * x.astype(np.float64) + a.beta, 0.0, 1.0).astype(F32)


def reshape(x: np.ndarray, a: ReshapeAttrs) -> np.ndarray:
    return x.reshape(a.shape)


def transpose(x: np.ndarray, a: TransposeAttrs) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, a.perm))


def concat(*xs_and_a: Any) -> np.ndarray:
    *xs, a = xs_and_a
    return _act_f(np.concatenate(xs, axis=a.axis), a.act).astype(F32)


def pad(x: np.ndarray, a: PadAttrs) -> np.ndarray:
    return np.pad(x, a.pads, constant_values=F32(a.value))


def softmax(x: np.ndarray, a: SoftmaxAttrs) -> np.ndarray:
    z = (x.astype(np.float64) - x.max(axis=a.axis, keepdims=True)) * a.beta
    e = np.exp(z)
    return (e / e.sum(axis=a.axis, keepdims=True)).astype(F32)


def lrn(x: np.ndarray, a: LrnAttrs) -> np.ndarray:
    """LOCAL_RESPONSE_NORMALIZATION across the last axis (window clipped at the edges)."""
    sq = np.square(x.astype(np.float64))
    c = x.shape[-1]
    csum = np.concatenate([np.zeros(sq.shape[:-1] + (1,)), np.cumsum(sq, axis=-1)], axis=-1)
    lo = np.clip(np.arange(c) - a.radius, 0, c)
    hi = np.clip(np.arange(c) + a.radius + 1, 0, c)
    s = csum[..., hi] - csum[..., lo]
    return (x / np.power(a.bias + a.alpha * s, a.beta)).astype(F32)


def identity_f(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    return x.astype(F32)


def sqrt(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.sqrt(x.astype(F32))


def rsqrt(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (F32(1) / np.sqrt(x.astype(F32))).astype(F32)


def exp(x: np.ndarray, a: NoAttrs) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64)).astype(F32)


def reduce_sum(x: np.ndarray, a: MeanAttrs) -> np.ndarray:
    return np.sum(x.astype(np.float64), axis=a.axes, keepdims=a.keepdims).astype(F32)


def reduce_max(x: np.ndarray, a: MeanAttrs) -> np.ndarray:
    return np.max(x, axis=a.axes, keepdims=a.keepdims)


def reduce_min(x: np.ndarray, a: MeanAttrs) -> np.ndarray:
    return np.min(x, axis=a.axes, keepdims=a.keepdims)


def _transpose_conv_acc(x: np.ndarray, w: np.ndarray, a: TransposeConvAttrs) -> np.ndarray:
    """The scatter sum (float64) of a transpose conv, cropped by a.pad: every input pixel adds
    x * w[:, ky, kx, :] at output (iy * s + ky - pad_top, ix * s + kx - pad_left)."""
    n, h, wd, _ = x.shape
    cout, kh, kw, _ = w.shape
    sh, sw = a.stride
    full = np.zeros((n, (h - 1) * sh + kh, (wd - 1) * sw + kw, cout))
    xd, wdd = x.astype(np.float64), w.astype(np.float64)
    for ky in range(kh):
        for kx in range(kw):
            full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (wd - 1) * sw + 1:sw] += \
                xd @ wdd[:, ky, kx, :].T
    t, left, b, r = a.pad
    full = np.pad(full, ((0, 0), (0, max(-b, 0)), (0, max(-r, 0)), (0, 0)))
    return full[:, t:full.shape[1] - max(b, 0), left:full.shape[2] - max(r, 0)]


def transpose_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   a: TransposeConvAttrs) -> np.ndarray:
    y = _transpose_conv_acc(x, w, a)
    if b is not None:
        y = y + b
    return _act_f(y, a.act).astype(F32)


def gather(x: np.ndarray, idx: np.ndarray, a: GatherAttrs) -> np.ndarray:
    return np.take(x, idx.astype(np.int64), axis=a.axis)


def prelu(x: np.ndarray, alpha: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.where(x >= 0, x, x * alpha.astype(F32)).astype(F32)


def squared_difference(x: np.ndarray, y: np.ndarray, a: NoAttrs) -> np.ndarray:
    d = np.subtract(x, y, dtype=F32)
    return (d * d).astype(F32)


def strided_slice(x: np.ndarray, a: Any) -> np.ndarray:
    """STRIDED_SLICE with resolved begin/end/strides (sdk/ir.py StridedSliceAttrs); int8 too:
    bytes move, the output shares the input's quantization."""
    return np.ascontiguousarray(x[tuple(slice(b, e, s) for b, e, s in
                                        zip(a.begin, a.end, a.strides))])


def resize_nearest(x: np.ndarray, a: Any) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR over H, W of NHWC (TFLite GetNearestNeighbor index maps)."""
    rows, cols = qp.nearest_maps(x.shape[1:3], a.size, a.align_corners, a.half_pixel_centers)
    return np.ascontiguousarray(x[:, rows][:, :, cols])


def resize_bilinear(x: np.ndarray, a: Any) -> np.ndarray:
    """RESIZE_BILINEAR, float: reference_ops::ResizeBilinear in float32 (its scale, its
    clamped lower/upper taps and its order of the four products)."""
    f = np.float32
    taps = []
    for n_in, n_out in zip(x.shape[1:3], a.size):
        scale = f(n_in - 1) / f(n_out - 1) if a.align_corners and n_out > 1 else \
            f(n_in) / f(n_out)
        pos = np.arange(n_out, dtype=f)
        pos = (pos + f(0.5)) * scale - f(0.5) if a.half_pixel_centers else pos * scale
        lo = np.maximum(np.floor(pos).astype(np.int64), 0)
        hi = np.minimum(np.ceil(pos).astype(np.int64), n_in - 1)
        taps.append((lo, hi, (pos - lo.astype(f)).astype(f)))
    (y0, y1, dy), (x0, x1, dx) = taps
    dy, dx = dy[None, :, None, None], dx[None, None, :, None]
    xf = x.astype(f)

    def at(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return xf[:, ys][:, :, xs]
    one = f(1)
    out = (at(y0, x0) * (one - dy) * (one - dx) + at(y1, x0) * dy * (one - dx)
           + at(y0, x1) * (one - dy) * dx + at(y1, x1) * dy * dx)
    return out.astype(f)


def maximum(x: np.ndarray, y: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.maximum(x, y)


def minimum(x: np.ndarray, y: np.ndarray, a: NoAttrs) -> np.ndarray:
    return np.minimum(x, y)


REFERENCE: dict[Op, Callable[..., np.ndarray]] = {
    Op.CONV2D: conv2d, Op.DWCONV2D: dwconv2d, Op.FC: fc, Op.MATMUL: matmul,
    Op.BATCHNORM: batchnorm, Op.AVGPOOL2D: avgpool2d, Op.MAXPOOL2D: maxpool2d, Op.MEAN: mean,
    Op.ADD: add, Op.SUB: sub, Op.MUL: mul, Op.DIV: div, Op.RELU: relu, Op.RELU6: relu6,
    Op.CLIP: clip, Op.LEAKY_RELU: leaky_relu, Op.LOGISTIC: logistic, Op.TANH: tanh,
    Op.HARD_SWISH: hard_swish, Op.HARD_SIGMOID: hard_sigmoid, Op.RESHAPE: reshape,
    Op.TRANSPOSE: transpose, Op.CONCAT: concat, Op.PAD: pad, Op.SOFTMAX: softmax, Op.LRN: lrn,
    Op.QUANTIZE: identity_f, Op.DEQUANTIZE: identity_f,
    Op.STRIDED_SLICE: strided_slice, Op.RESIZE_NEAREST: resize_nearest, Op.MAXIMUM: maximum,
    Op.MINIMUM: minimum, Op.RESIZE_BILINEAR: resize_bilinear,
    Op.SQRT: sqrt, Op.RSQRT: rsqrt, Op.EXP: exp, Op.GELU: gelu,
    Op.SQUARED_DIFFERENCE: squared_difference, Op.SUM: reduce_sum, Op.REDUCE_MAX: reduce_max,
    Op.REDUCE_MIN: reduce_min, Op.GATHER: gather, Op.PRELU: prelu,
    Op.TRANSPOSE_CONV: transpose_conv, Op.LSTM: lstm,
}


# ---------------------------------------------------------------- hybrid kernels
@dataclass(frozen=True)
class HybridWeight:
    """A float layer's int8 weight (sdk/ir.py: hybrid_int8), run as LiteRT's hybrid kernels."""
    q: np.ndarray                  # int8 values
    scale: np.ndarray              # float32 [1] or per output channel


def _quantize_symmetric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tensor_utils::SymmetricQuantizeFloats per batch: scale = max|x| / 127 and
    q = round(x * (127 / max|x|)), all float32; an all-zero batch gets q = 0, scale 1."""
    flat = x.reshape(x.shape[0], -1).astype(F32)
    rng = np.abs(flat).max(axis=1)
    safe = np.where(rng == 0, F32(1), rng)
    sf = np.where(rng == 0, F32(1), safe / F32(127)).astype(F32)
    q = np.clip(round_half_away(flat * (F32(127) / safe)[:, None]), -127, 127)
    return q.reshape(x.shape).astype(np.int64), sf, np.zeros(x.shape[0], np.int64)


def _quantize_asymmetric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tensor_utils::AsymmetricQuantizeFloats per batch: [min(x, 0), max(x, 0)] onto
    [-128, 127]; the scale and zero point in double, the rounding of x in float32."""
    flat = x.reshape(x.shape[0], -1).astype(F32)
    rmin, rmax = np.minimum(flat.min(axis=1), F32(0)), np.maximum(flat.max(axis=1), F32(0))
    same = rmin == rmax
    scale = np.where(same, 1.0, (rmax - rmin).astype(np.float64) / 255.0)
    lo, hi = rmin.astype(np.float64) / scale, rmax.astype(np.float64) / scale
    zp = np.where(128.0 + np.abs(lo) < 127.0 + np.abs(hi), -128.0 - lo, 127.0 - hi)
    zp = np.where(same, 0, np.clip(round_half_away(zp), -128, 127)).astype(np.int64)
    sf = np.where(same, F32(0), scale.astype(F32))
    inv = np.where(same, F32(0), (1.0 / np.where(same, 1.0, sf.astype(np.float64)))).astype(F32)
    q = round_half_away(zp.astype(F32)[:, None] + flat * inv[:, None])
    return np.clip(q, -128, 127).reshape(x.shape).astype(np.int64), sf, zp


def conv2d_hybrid(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Conv2dAttrs,
                  h: HybridWeight, rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """conv.cc EvalHybrid (one weight scale: symmetric input, float(acc) * (in_scale *
    w_scale)) or EvalHybridPerChannel (distinct scales: asymmetric input, float(acc) *
    (w_scale[c] * in_scale)); padded taps add 0; then + bias and the activation, float32."""
    per_channel = np.unique(h.scale).size > 1
    q, sf, zp = (_quantize_asymmetric if per_channel else _quantize_symmetric)(x)
    win = windows(q - zp[:, None, None, None], w.shape[1:3], a.stride, a.dilation, a.pad)
    n, oh, ow = win.shape[:3]
    acc = _gemm(win.reshape(n * oh * ow, -1), h.q.reshape(h.q.shape[0], -1).T)
    acc = acc.reshape(n, oh * ow, -1).astype(F32)
    if per_channel:
        y = acc * (h.scale[None, :] * sf[:, None])[:, None, :]
    else:
        y = acc * (sf * h.scale[0])[:, None, None]
    if b is not None:
        y = y + b.astype(F32)
    return _act_f(y, a.act).astype(F32).reshape(n, oh, ow, -1)


def dwconv2d_hybrid(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: DwConv2dAttrs,
                    h: HybridWeight, rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """depthwise_conv.cc EvalHybridPerChannel (LiteRT has no per-tensor form): asymmetric
    input, float(acc) * (w_scale[c] * in_scale) + bias, padded taps add 0. (That is the
    reference kernel's rounding order; the optimized one is (acc * w_scale[c]) * in_scale,
    at most 1 ulp away, as is conv's reference kernel from the optimized order used above.)"""
    q, sf, zp = _quantize_asymmetric(x)
    xe = _dw_expand(q - zp[:, None, None, None], w.shape[3] // x.shape[3])
    win = windows(xe, w.shape[1:3], a.stride, a.dilation, a.pad)
    acc = np.einsum("nhwijc,ijc->nhwc", win.astype(np.float64), h.q[0].astype(np.float64))
    y = np.rint(acc).astype(F32) * (h.scale[None, :] * sf[:, None])[:, None, None, :]
    if b is not None:
        y = y + b.astype(F32)
    return _act_f(y, a.act).astype(F32)


def fc_hybrid(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: FcAttrs,
              h: HybridWeight, rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """fully_connected.cc EvalHybridDense with symmetric inputs (asymmetric_quantize_inputs
    is not in the IR): each row quantized on its own; bias + float(acc) * (in_scale *
    w_scale), per channel bias + float(acc) * (in_scale * w_scale[c])."""
    rows = x.reshape(-1, w.shape[1])
    q, sf, _ = _quantize_symmetric(rows)
    acc = _gemm(q, h.q.T).astype(F32)
    if h.scale.size == w.shape[0]:
        y = acc * (sf[:, None] * h.scale[None, :])
    else:
        y = acc * (sf * h.scale[0])[:, None]
    if b is not None:
        y = b.astype(F32) + y
    shape = x.shape[:-1] + (w.shape[0],) if a.keep_num_dims else (rows.shape[0], w.shape[0])
    return _act_f(y, a.act).astype(F32).reshape(shape)


# Op -> float kernel for a layer whose weight is hybrid (int8 + scales; sdk/ir.py)
REFERENCE_HYBRID: dict[Op, Callable[..., np.ndarray]] = {
    Op.CONV2D: conv2d_hybrid, Op.DWCONV2D: dwconv2d_hybrid, Op.FC: fc_hybrid,
}


# ---------------------------------------------------------------- int8 kernels
def _requant_out(acc: np.ndarray, q: qp.ConvQuant, rounding: Rounding) -> np.ndarray:
    y = requantize(acc, q.mult, q.shift, rounding) + q.out_offset
    return _clamp8(y, q.act_min, q.act_max)


# The int8 and 16x8 forms of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED share these sums
# (exact in int64, bias added); they differ in the input offset and the requantization.
def _conv_acc(xo: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Conv2dAttrs) -> np.ndarray:
    win = windows(xo, w.shape[1:3], a.stride, a.dilation, a.pad)
    n, oh, ow = win.shape[:3]
    acc = _gemm(win.reshape(n * oh * ow, -1), w.reshape(w.shape[0], -1).T)
    return (acc if b is None else acc + b.astype(np.int64)).reshape(n, oh, ow, -1)


def _dw_acc(xo: np.ndarray, w: np.ndarray, b: np.ndarray | None,
            a: DwConv2dAttrs) -> np.ndarray:
    xo = _dw_expand(xo, w.shape[3] // xo.shape[3])   # output channel = ic * mult + m
    acc = _dw_taps(windows(xo, w.shape[1:3], a.stride, a.dilation, a.pad), w[0].astype(np.int64))
    return acc if b is None else acc + b.astype(np.int64)


def _fc_acc(xo: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: FcAttrs) -> np.ndarray:
    rows = xo.reshape(-1, w.shape[1])
    acc = _gemm(rows, w.T)
    acc = acc if b is None else acc + b.astype(np.int64)
    return acc.reshape(xo.shape[:-1] + (w.shape[0],) if a.keep_num_dims else acc.shape)


def conv2d_s8(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Conv2dAttrs,
              q: qp.ConvQuant, rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_integer_ops::ConvPerChannel: acc = sum((x + in_offset) * w) + bias."""
    # padding contributes 0 after the offset
    return _requant_out(_conv_acc(x.astype(np.int64) + q.in_offset, w, b, a), q, rounding)


def dwconv2d_s8(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: DwConv2dAttrs,
                q: qp.ConvQuant, rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_integer_ops::DepthwiseConvPerChannel (output channel = ic * mult + m)."""
    return _requant_out(_dw_acc(x.astype(np.int64) + q.in_offset, w, b, a), q, rounding)


def fc_s8(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: FcAttrs, q: qp.ConvQuant,
          rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_integer_ops::FullyConnected (per-tensor or per-channel)."""
    return _requant_out(_fc_acc(x.astype(np.int64) + q.in_offset, w, b, a), q, rounding)


def avgpool2d_s8(x: np.ndarray, a: Pool2dAttrs, q: qp.PoolQuant,
                 rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_integer_ops::AveragePool: sum of valid taps, divided rounding half away."""
    acc = windows(x.astype(np.int64), a.kernel, a.stride, (1, 1), a.pad).sum(axis=(3, 4))
    cnt = _pool_count(x, a)
    y = np.where(acc > 0, _cdiv(acc + cnt // 2, cnt), _cdiv(acc - cnt // 2, cnt))
    return _clamp8(y, q.act_min, q.act_max)


def maxpool2d_s8(x: np.ndarray, a: Pool2dAttrs, q: qp.PoolQuant,
                 rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    win = windows(x.astype(np.int64), a.kernel, a.stride, (1, 1), a.pad, value=INT8_MIN - 1)
    return _clamp8(win.max(axis=(3, 4)), q.act_min, q.act_max)


def mean_s8(x: np.ndarray, a: MeanAttrs, q: qp.MeanQuant,
            rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_ops::QuantizedMeanOrSum: rq(sum(x) - zp * count) with 1/count folded in."""
    acc = x.astype(np.int64).sum(axis=a.axes, keepdims=a.keepdims) + q.in_offset * q.count
    y = requantize(acc, q.mult, q.shift, rounding) + q.out_offset
    return _clamp8(y, q.act_min, q.act_max)


def _add_sub_s8(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp.AddQuant,
                rounding: Rounding, sign: int) -> np.ndarray:
    """reference_integer_ops::AddElementwise / SubElementwise."""
    x1 = (x.astype(np.int64) + q.in1_offset) << q.left_shift
    x2 = (y.astype(np.int64) + q.in2_offset) << q.left_shift
    s1 = requantize(x1, q.in1_mult, q.in1_shift, rounding)
    s2 = requantize(x2, q.in2_mult, q.in2_shift, rounding)
    out = requantize(s1 + sign * s2, q.out_mult, q.out_shift, rounding) + q.out_offset
    return _clamp8(out, q.act_min, q.act_max)


def add_s8(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp.AddQuant,
           rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    return _add_sub_s8(x, y, a, q, rounding, 1)


def sub_s8(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp.AddQuant,
           rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    return _add_sub_s8(x, y, a, q, rounding, -1)


def mul_s8(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp.MulQuant,
           rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    prod = (x.astype(np.int64) + q.in1_offset) * (y.astype(np.int64) + q.in2_offset)
    out = requantize(prod, q.out_mult, q.out_shift, rounding) + q.out_offset
    return _clamp8(out, q.act_min, q.act_max)


def reduce_max_s8(x: np.ndarray, a: MeanAttrs, q: qp.PoolQuant,
                  rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """REDUCE_MAX / REDUCE_MIN int8: the bytes themselves (input and output share quant)."""
    return reduce_max(x, a)


def reduce_min_s8(x: np.ndarray, a: MeanAttrs, q: qp.PoolQuant,
                  rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    return reduce_min(x, a)


def transpose_conv_s8(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                      a: TransposeConvAttrs, q: qp.ConvQuant,
                      rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_integer_ops::TransposeConv: int32 scatter of (x + in_offset) * w, + bias,
    per-channel requantization (float64 sums are exact: |terms| < 2^15, few taps)."""
    acc = np.rint(_transpose_conv_acc(x.astype(np.int64) + q.in_offset, w, a)).astype(np.int64)
    if b is not None:
        acc = acc + b.astype(np.int64)
    return _requant_out(acc, q, rounding)


def gather_s8(x: np.ndarray, idx: np.ndarray, a: GatherAttrs, q: qp.NoQuant,
              rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """GATHER int8: rows copied (output quant == input quant)."""
    return gather(x, idx, a)


def prelu_s8(x: np.ndarray, alpha: np.ndarray, a: NoAttrs, q: qp.PreluQuant,
             rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_ops::BroadcastPrelu4DSlow: x + in_offset >= 0 -> rq(v, mult1, shift1),
    else rq(v * (alpha + alpha_offset), mult2, shift2); + out_offset, clamped."""
    v = x.astype(np.int64) + q.in_offset
    al = alpha.astype(np.int64) + q.alpha_offset
    pos = requantize(v, q.mult1, q.shift1, rounding)
    neg = requantize(v * al, q.mult2, q.shift2, rounding)
    return _clamp8(np.where(v >= 0, pos, neg) + q.out_offset)


def matmul_s8(x: np.ndarray, y: np.ndarray, a: NoAttrs, q: qp.MulQuant,
              rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_ops::BatchMatMul<int8>: acc = sum_k (x + off1) * (y + off2), requantized;
    batch dims broadcast. float64 is exact here: |terms| < 2^16, K < 2^37."""
    xa = x.astype(np.float64) + q.in1_offset
    ya = y.astype(np.float64) + q.in2_offset
    acc = np.rint(np.matmul(xa, ya)).astype(np.int64)
    out = requantize(acc, q.out_mult, q.out_shift, rounding) + q.out_offset
    return _clamp8(out, q.act_min, q.act_max)


def squared_difference_s8(x: np.ndarray, y: np.ndarray, a: NoAttrs, q: qp.AddQuant,
                          rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """squared_difference.cc: both inputs << 7 and rescaled to 1/(2 max scale), the int32
    difference squared (fits: |d| < 2^14), then requantized."""
    s1 = requantize((x.astype(np.int64) + q.in1_offset) << q.left_shift, q.in1_mult,
                    q.in1_shift, rounding)
    s2 = requantize((y.astype(np.int64) + q.in2_offset) << q.left_shift, q.in2_mult,
                    q.in2_shift, rounding)
    out = requantize((s1 - s2) ** 2, q.out_mult, q.out_shift, rounding) + q.out_offset
    return _clamp8(out, q.act_min, q.act_max)


def requant_s8(x: np.ndarray, a: Any, q: qp.RequantQuant,
               rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """RELU / RELU6 (ReluX): clamp(out_offset + rq(x + in_offset))."""
    out = requantize(x.astype(np.int64) + q.in_offset, q.mult, q.shift, rounding)
    return _clamp8(out + q.out_offset, q.act_min, q.act_max)


def lut_s8(x: np.ndarray, a: Any, q: qp.LutQuant, rounding: Rounding = Rounding.DOUBLE
           ) -> np.ndarray:
    """LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU: y = lut[x + 128]."""
    return q.lut[x.astype(np.int64) + 128]


def move_s8(x: np.ndarray, a: Any, q: qp.NoQuant, rounding: Rounding = Rounding.DOUBLE
            ) -> np.ndarray:
    """RESHAPE / TRANSPOSE: the float kernel moves int8 bytes unchanged."""
    return REFERENCE[Op.TRANSPOSE](x, a) if isinstance(a, TransposeAttrs) else x.reshape(a.shape)


def concat_s8(*args: Any) -> np.ndarray:
    """CONCATENATION: operands share the output's quant (checked by qparams): a byte copy."""
    *xs, a, _q, _rounding = args
    return np.concatenate(xs, axis=a.axis)


def pad_s8(x: np.ndarray, a: PadAttrs, q: qp.PadQuant, rounding: Rounding = Rounding.DOUBLE
           ) -> np.ndarray:
    return np.pad(x, a.pads, constant_values=np.int8(q.pad_value))


def softmax_s8(x: np.ndarray, a: SoftmaxAttrs, q: qp.SoftmaxQuant,
               rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_ops::Softmax<int8,int8> (gemmlowp; last axis)."""
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    ok = diff >= q.diff_min
    scaled = requantize(diff, q.in_mult, q.in_left_shift, rounding)
    e = fx.fx_exp_on_negative_values(scaled, 5)                 # Q0.31
    sum_e = np.where(ok, rdpot(e, 12), 0).sum(axis=-1, keepdims=True)   # Q12.19
    recip, bits_over = fx.fx_reciprocal(sum_e, 12)
    prod = qp.srdhm(recip, e)
    out = rdpot(prod, bits_over + 31 - 8) - 128
    return np.where(ok, _clamp8(out), np.int8(INT8_MIN)).astype(np.int8)


def quantize_s8(x: np.ndarray, a: NoAttrs, q: qp.QuantizeQuant,
                rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """float -> int8: AffineQuantize, round(x / scale) + zp (half away from zero);
    int8 -> int8: Requantize."""
    if q.requant is not None:
        return requant_s8(x, a, q.requant, rounding)
    r = round_half_away(x.astype(np.float32) / np.float32(q.scale)).astype(np.int64)
    return _clamp8(r + q.zero_point)


def dequantize_s8(x: np.ndarray, a: NoAttrs, q: qp.DequantizeQuant,
                  rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    return (np.float64(q.scale) * (x.astype(np.int64) - q.zero_point)).astype(F32)


def move_only_s8(*args: Any) -> np.ndarray:
    """STRIDED_SLICE, RESIZE_NEAREST, MAXIMUM, MINIMUM: the float kernel on the int8 bytes
    (TFLite's kernels do exactly that: operands and output share one quantization, checked
    by qparams)."""
    *xs, a, _q, _rounding = args
    return REFERENCE[_q.op](*xs, a).astype(np.int8)


def resize_bilinear_s8(x: np.ndarray, a: Any, q: qp.SharedQuant,
                       rounding: Rounding = Rounding.DOUBLE) -> np.ndarray:
    """reference_ops::ResizeBilinearInteger: 10-bit fixed-point weights, the 20-bit sum
    divided rounding half away from zero (neither runtime is built with single rounding)."""
    (y0, y1, dy), (x0, x1, dx) = q.rows.T, q.cols.T
    xi = x.astype(np.int64)
    dy, dx = dy[None, :, None, None], dx[None, None, :, None]

    def at(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return xi[:, ys][:, :, xs]
    acc = (at(y0, x0) * (1024 - dy) * (1024 - dx) + at(y1, x0) * dy * (1024 - dx)
           + at(y0, x1) * (1024 - dy) * dx + at(y1, x1) * dy * dx)
    out = _cdiv(acc + np.where(acc > 0, 1 << 19, -(1 << 19)), 1 << 20)
    return out.astype(np.int8)


REFERENCE_S8: dict[Op, Callable[..., np.ndarray]] = {
    Op.CONV2D: conv2d_s8, Op.DWCONV2D: dwconv2d_s8, Op.FC: fc_s8,
    Op.AVGPOOL2D: avgpool2d_s8, Op.MAXPOOL2D: maxpool2d_s8, Op.MEAN: mean_s8,
    Op.ADD: add_s8, Op.SUB: sub_s8, Op.MUL: mul_s8, Op.RELU: requant_s8,
    Op.RELU6: requant_s8, Op.LEAKY_RELU: lut_s8, Op.LOGISTIC: lut_s8, Op.TANH: lut_s8,
    Op.HARD_SWISH: lut_s8, Op.RESHAPE: move_s8, Op.TRANSPOSE: move_s8, Op.CONCAT: concat_s8,
    Op.PAD: pad_s8, Op.SOFTMAX: softmax_s8, Op.QUANTIZE: quantize_s8,
    Op.DEQUANTIZE: dequantize_s8,
    Op.STRIDED_SLICE: move_only_s8, Op.RESIZE_NEAREST: move_only_s8, Op.MAXIMUM: move_only_s8,
    Op.MINIMUM: move_only_s8, Op.RESIZE_BILINEAR: resize_bilinear_s8,
    Op.SQRT: lut_s8, Op.RSQRT: lut_s8, Op.EXP: lut_s8, Op.GELU: lut_s8,
    Op.SQUARED_DIFFERENCE: squared_difference_s8, Op.MATMUL: matmul_s8, Op.SUM: mean_s8,
    Op.REDUCE_MAX: reduce_max_s8, Op.REDUCE_MIN: reduce_min_s8, Op.GATHER: gather_s8,
    Op.PRELU: prelu_s8, Op.TRANSPOSE_CONV: transpose_conv_s8, Op.LSTM: lstm_s8,
}


# ---------------------------------------------------------------- 16x8 kernels
# int16 activations (zero point 0), int8 weights: TFLite's 16x8 reference kernels, params
# from edgeforge.qparams16 (whose docstring lists what differs from int8).
def _clamp16(y: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(y, lo, hi).astype(np.int16)


def _requant16(acc: np.ndarray, q: qp16.ConvQuant16, rounding: Any) -> np.ndarray:
    y = qp16.requantize64(acc, q.mult, q.shift) if q.acc64 else \
        requantize(acc, q.mult, q.shift, rounding)
    return _clamp16(y, q.act_min, q.act_max)


def conv2d_s16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Conv2dAttrs,
               q: qp16.ConvQuant16, rounding: Any = None) -> np.ndarray:
    """reference_integer_ops::ConvPerChannel<int16>: acc = sum(x * w) + bias (|x*w| < 2^22,
    so float64 sums stay exact for < 2^31 taps)."""
    return _requant16(_conv_acc(x.astype(np.int64), w, b, a), q, rounding)


def dwconv2d_s16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: DwConv2dAttrs,
                 q: qp16.ConvQuant16, rounding: Any = None) -> np.ndarray:
    """reference_integer_ops::DepthwiseConvPerChannel<int16>."""
    return _requant16(_dw_acc(x.astype(np.int64), w, b, a), q, rounding)


def fc_s16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: FcAttrs,
           q: qp16.ConvQuant16, rounding: Any = None) -> np.ndarray:
    """reference_integer_ops::FullyConnected<int16, int8, int16, int64>."""
    return _requant16(_fc_acc(x.astype(np.int64), w, b, a), q, rounding)


def avgpool2d_s16(x: np.ndarray, a: Pool2dAttrs, q: qp16.ClampQuant16, rounding: Any = None
                  ) -> np.ndarray:
    """AveragePool<int16>: the int8 algorithm (divide rounding half away) on int16."""
    acc = windows(x.astype(np.int64), a.kernel, a.stride, (1, 1), a.pad).sum(axis=(3, 4))
    cnt = _pool_count(x, a)
    y = np.where(acc > 0, _cdiv(acc + cnt // 2, cnt), _cdiv(acc - cnt // 2, cnt))
    return _clamp16(y, q.act_min, q.act_max)


def maxpool2d_s16(x: np.ndarray, a: Pool2dAttrs, q: qp16.ClampQuant16, rounding: Any = None
                  ) -> np.ndarray:
    win = windows(x.astype(np.int64), a.kernel, a.stride, (1, 1), a.pad, value=-(1 << 16))
    return _clamp16(win.max(axis=(3, 4)), q.act_min, q.act_max)


def mean_s16(x: np.ndarray, a: MeanAttrs, q: qp16.MeanQuant16, rounding: Any = None
             ) -> np.ndarray:
    acc = x.astype(np.int64).sum(axis=a.axes, keepdims=a.keepdims)
    return _clamp16(requantize(acc, q.mult, q.shift, rounding), q.act_min, q.act_max)


def _add_sub_s16(x: np.ndarray, y: np.ndarray, q: qp16.AddQuant16, rounding: Any, sign: int
                 ) -> np.ndarray:
    s1 = requantize(x.astype(np.int64) << q.left_shift, q.in1_mult, q.in1_shift, rounding)
    s2 = requantize(y.astype(np.int64) << q.left_shift, q.in2_mult, q.in2_shift, rounding)
    out = requantize(s1 + sign * s2, q.out_mult, q.out_shift, rounding)
    return _clamp16(out, q.act_min, q.act_max)


def add_s16(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp16.AddQuant16,
            rounding: Any = None) -> np.ndarray:
    return _add_sub_s16(x, y, q, rounding, 1)


def sub_s16(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp16.AddQuant16,
            rounding: Any = None) -> np.ndarray:
    return _add_sub_s16(x, y, q, rounding, -1)


def mul_s16(x: np.ndarray, y: np.ndarray, a: BinaryAttrs, q: qp16.MulQuant16,
            rounding: Any = None) -> np.ndarray:
    prod = x.astype(np.int64) * y.astype(np.int64)
    return _clamp16(requantize(prod, q.out_mult, q.out_shift, rounding), q.act_min,
                    q.act_max)


def logistic_s16(x: np.ndarray, a: NoAttrs, q: qp16.SigmoidQuant16, rounding: Any = None
                 ) -> np.ndarray:
    return qp16.logistic16(x, q)


def tanh_s16(x: np.ndarray, a: NoAttrs, q: qp16.SigmoidQuant16, rounding: Any = None
             ) -> np.ndarray:
    return qp16.tanh16(x, q)


def softmax_s16(x: np.ndarray, a: SoftmaxAttrs, q: qp16.SoftmaxQuant16, rounding: Any = None
                ) -> np.ndarray:
    return qp16.softmax16(x, q, rounding)


def reshape_s16(x: np.ndarray, a: ReshapeAttrs, q: qp16.MoveQuant16, rounding: Any = None
                ) -> np.ndarray:
    return x.reshape(a.shape)


def pad_s16(x: np.ndarray, a: PadAttrs, q: qp16.PadQuant16, rounding: Any = None
            ) -> np.ndarray:
    return np.pad(x, a.pads, constant_values=np.int16(q.pad_value))


def move_s16(*args: Any) -> np.ndarray:
    """CONCAT, TRANSPOSE, STRIDED_SLICE: the float kernel moves the int16 values."""
    *xs, a, _q, _rounding = args
    return REFERENCE[OP_OF_ATTRS[type(a)]](*xs, a).astype(np.int16)


def quantize_s16(x: np.ndarray, a: NoAttrs, q: qp16.QuantizeQuant16, rounding: Any = None
                 ) -> np.ndarray:
    """float -> int16 (AffineQuantize), or Requantize int8 <-> int16 (quantize.cc)."""
    if q.requant is None:
        r = round_half_away(x.astype(np.float32) / np.float32(q.scale)).astype(np.int64)
        return _clamp16(r + q.zero_point, -(1 << 15), (1 << 15) - 1)
    rq = q.requant
    y = requantize(x.astype(np.int64) + rq.in_offset, rq.mult, rq.shift, rounding) + rq.out_offset
    dtype = np.int16 if rq.out_max > INT8_MAX else np.int8
    return np.clip(y, rq.out_min, rq.out_max).astype(dtype)


def dequantize_s16(x: np.ndarray, a: NoAttrs, q: qp16.DequantizeQuant16, rounding: Any = None
                   ) -> np.ndarray:
    return (np.float64(q.scale) * (x.astype(np.int64) - q.zero_point)).astype(F32)


REFERENCE_S16: dict[Op, Callable[..., np.ndarray]] = {
    Op.CONV2D: conv2d_s16, Op.DWCONV2D: dwconv2d_s16, Op.FC: fc_s16,
    Op.AVGPOOL2D: avgpool2d_s16, Op.MAXPOOL2D: maxpool2d_s16, Op.MEAN: mean_s16,
    Op.ADD: add_s16, Op.SUB: sub_s16, Op.MUL: mul_s16, Op.LOGISTIC: logistic_s16,
    Op.TANH: tanh_s16, Op.SOFTMAX: softmax_s16, Op.RESHAPE: reshape_s16,
    Op.QUANTIZE: quantize_s16, Op.DEQUANTIZE: dequantize_s16, Op.PAD: pad_s16,
    Op.CONCAT: move_s16, Op.TRANSPOSE: move_s16, Op.STRIDED_SLICE: move_s16,
}
# the move ops above, found from their attrs (each has its own attrs class)
OP_OF_ATTRS: dict[type, Op] = {OPS[op].attrs: op for op in (Op.CONCAT, Op.TRANSPOSE,
                                                           Op.STRIDED_SLICE)}


# ---------------------------------------------------------------- the interpreter
def _is_s8_node(node: Node, g: Graph) -> bool:
    names = [i for k, i in enumerate(node.inputs) if i and k not in OPS[node.op].weights]
    return any(g.tensors[n].dtype == "int8" for n in names + list(node.outputs))


def _feeds(g: Graph, feeds: dict[str, np.ndarray] | list[np.ndarray] | np.ndarray
           ) -> dict[str, np.ndarray]:
    if isinstance(feeds, np.ndarray):
        feeds = [feeds]
    if not isinstance(feeds, dict):
        if len(feeds) != len(g.inputs):
            raise ValueError(f"{len(feeds)} inputs given, graph {g.name!r} has {len(g.inputs)}")
        feeds = dict(zip(g.inputs, feeds))
    out = {}
    for name in g.inputs:
        if name not in feeds:
            raise ValueError(f"missing input {name!r}")
        t, x = g.tensors[name], np.asarray(feeds[name])
        if tuple(x.shape) != tuple(t.shape) or x.dtype != np.dtype(t.dtype):
            raise ValueError(f"input {name!r} is {x.dtype}{list(x.shape)}, graph wants "
                             f"{t.dtype}{list(t.shape)}")
        out[name] = x
    return out


def _one_blas_thread() -> AbstractContextManager[Any]:
    """Our matmuls are tiny (<= a few M MACs): multithreaded BLAS only adds sync cost, and
    on a busy 2-core host it thrashes (measured 25 ms vs 0.7 ms for one ResNet-8 conv)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _hybrid(node: Node, g: Graph) -> HybridWeight | None:
    """The hybrid weight of a float layer that has a hybrid kernel, else None."""
    if node.op not in REFERENCE_HYBRID:
        return None
    t = g.tensors[node.inputs[1]]
    q = hybrid_int8(t)
    return None if q is None else HybridWeight(q, t.quant.scale)


def prepare_graph(g: Graph, numerics: Numerics | str = Numerics.TFLM) -> list[Any]:
    """edgeforge.qparams params of every node (a HybridWeight for a float layer with a hybrid
    weight, None for other float nodes), computed once per run."""
    n = Numerics(numerics)
    return [qp16.prepare(node, g, n) if qp16.is_s16_node(node, g) else
            qp.prepare(node, g, n) if _is_s8_node(node, g) else _hybrid(node, g)
            for node in g.nodes]


def _check_host_memory(g: Graph) -> None:
    """Refuse, before allocating, a graph whose activations pass ir.HOST_MAX_BYTES."""
    from edgeforge.errors import EdgeforgeError
    from edgeforge.ir import HOST_MAX_BYTES
    need = g.activation_bytes()
    if need > HOST_MAX_BYTES:
        raise EdgeforgeError(f"{g.meta.get('source') or g.name}: its activations take "
                             f"{need:,} B, more than the {HOST_MAX_BYTES:,} B the host "
                             "reference runtime holds")


def run(graph: Graph, feeds: dict[str, np.ndarray] | list[np.ndarray] | np.ndarray, *,
        numerics: Numerics | str = Numerics.TFLM, intermediate: bool = False,
        params: list[Any] | None = None) -> dict[str, np.ndarray]:
    """Execute `graph`; returns outputs by name (every tensor when `intermediate`).

    `params` (from prepare_graph) may be passed to skip the per-run Prepare."""
    numerics = Numerics(numerics)
    _check_host_memory(graph)
    qs = params if params is not None else prepare_graph(graph, numerics)
    env: dict[str, np.ndarray] = dict(_feeds(graph, feeds))
    with _one_blas_thread():
        _execute(graph, qs, numerics, env)
    if intermediate:
        return env
    return {name: env[name] for name in graph.outputs}


def _execute(graph: Graph, qs: list[Any], numerics: Numerics, env: dict[str, np.ndarray]
             ) -> None:
    for node, q in zip(graph.nodes, qs):
        args = [None if not i else env[i] if i in env else graph.tensors[i].data
                for i in node.inputs]
        # TFLite may leave an optional trailing parameter (a CONV_2D / FC bias) out entirely
        while len(args) < OPS[node.op].n_inputs[1] and len(args) in OPS[node.op].weights:
            args.append(None)
        fn = (REFERENCE if q is None else REFERENCE_HYBRID if isinstance(q, HybridWeight)
              else REFERENCE_S16 if isinstance(q, qp16.Quant16) else REFERENCE_S8).get(node.op)
        if fn is None:
            raise NotImplementedError(f"node {node.name or node.op}: no "
                                      f"{'float' if q is None else 'int8'} reference kernel "
                                      f"for {node.op}")
        if q is None:
            out = fn(*args, node.attrs)
        else:
            out = fn(*args, node.attrs, q, qp.rounding(node.op, numerics))  # per-op rounding
        outs = out if isinstance(out, tuple) else (out,)
        for name, val in zip(node.outputs, outs):
            env[name] = val
