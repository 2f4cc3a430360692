"""Calibration: run the float graph over sample data and pick each activation's int8 range.

Observers keep bounded memory: a running min/max plus one fixed-size histogram per tensor
(2048 bins, widened by merging when new data falls outside), never the activations.

  minmax      the observed range (what TFLite's converter uses)
  percentile  the 0.01 / 99.99 percentiles (outliers clipped)
  entropy     TensorRT's KL-divergence threshold search on the histogram
  mse         the clip range whose expected quantization MSE (rounding + clipping) is least

DEFAULT_OBSERVER is chosen by measurement, see the comment at its definition.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.arrays import read_npy
from edgeforge.errors import QuantizeError
from edgeforge.ir import Graph, Op

NBINS = 2048
Range = tuple[float, float]
CalibData = str | Path | np.ndarray | Mapping[str, np.ndarray] | Sequence[np.ndarray]


# ---------------------------------------------------------------- observers
class MinMaxObserver:
    """Running min/max."""

    def __init__(self) -> None:
        self.lo, self.hi = np.inf, -np.inf

    def update(self, x: np.ndarray) -> None:
        if x.size:
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))

    def range(self) -> Range:
        return _with_zero(self.lo, self.hi)


class HistogramObserver(MinMaxObserver):
    """Min/max plus a fixed-bin histogram over [lo, hi]; subclasses choose the clip range."""

    def __init__(self, bins: int = NBINS) -> None:
        super().__init__()
        self.bins = bins
        self.counts = np.zeros(bins, np.float64)
        self.edges: tuple[float, float] | None = None   # histogram span (lo, hi)
        self.zeros = 0                                  # exact zeros (ReLU's spike)

    def update(self, x: np.ndarray) -> None:
        if not x.size:
            return
        lo, hi = float(x.min()), float(x.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)   # MinMaxObserver's, one pass
        if self.edges is None:
            a, b = _with_zero(lo, hi)
            self.edges = (a, b if b > a else a + 1e-8)
        elif lo < self.edges[0] or hi > self.edges[1]:
            self._widen(min(lo, self.edges[0]), max(hi, self.edges[1]))
        a, b = self.edges
        idx = ((x.ravel().astype(np.float32) - np.float32(a)) * np.float32(self.bins / (b - a)))
        idx = np.clip(idx.astype(np.int64), 0, self.bins - 1)
        self.counts += np.bincount(idx, minlength=self.bins)
        self.zeros += int(np.count_nonzero(x == 0))

    def _widen(self, lo: float, hi: float) -> None:
        """Grow the span (by 25% extra, so growth is rare) and re-bin the old counts by their
        bin centres."""
        a, b = self.edges
        pad = 0.25 * (hi - lo)
        lo = lo - pad if lo < a else a
        hi = hi + pad if hi > b else b
        centres = a + (np.arange(self.bins) + 0.5) * (b - a) / self.bins
        idx = np.clip(((centres - lo) * self.bins / (hi - lo)).astype(np.int64), 0, self.bins - 1)
        self.counts = np.bincount(idx, weights=self.counts, minlength=self.bins)
        self.edges = (lo, hi)

    def centres(self) -> np.ndarray:
        a, b = self.edges
        return a + (np.arange(self.bins) + 0.5) * (b - a) / self.bins


class PercentileObserver(HistogramObserver):
    def __init__(self, percentile: float = 99.99, bins: int = NBINS) -> None:
        super().__init__(bins)
        self.percentile = percentile

    def range(self) -> Range:
        if self.edges is None:
            return super().range()
        cdf = np.cumsum(self.counts) / self.counts.sum()
        q = 1.0 - self.percentile / 100.0
        a, b = self.edges
        width = (b - a) / self.bins
        lo = a + np.searchsorted(cdf, q, side="left") * width
        hi = a + (np.searchsorted(cdf, 1.0 - q, side="left") + 1) * width
        return _with_zero(max(lo, self.lo), min(hi, self.hi))


class EntropyObserver(HistogramObserver):
    """TensorRT's entropy calibration: the threshold T minimizing KL(P || Q), where P is the
    histogram of |x| clipped at T (outliers folded into the last bin) and Q is P squeezed into
    the int8 levels available below T and expanded back over P's non-empty bins."""

    def range(self) -> Range:
        if self.edges is None:
            return super().range()
        top = max(abs(self.edges[0]), abs(self.edges[1]))   # span of the |x| histogram
        if self.lo >= 0:                      # one-sided (ReLU outputs): 256 levels on [0, T]
            t = _kl_threshold(self._abs_hist(), 256, top)
            return _with_zero(0.0, min(t, self.hi))
        t = _kl_threshold(self._abs_hist(), 128, top)
        return _with_zero(max(-t, self.lo), min(t, self.hi))

    def _abs_hist(self) -> np.ndarray:
        top = max(abs(self.edges[0]), abs(self.edges[1]))
        idx = np.clip((np.abs(self.centres()) * self.bins / top).astype(np.int64), 0,
                      self.bins - 1)
        hist = np.bincount(idx, weights=self.counts, minlength=self.bins)
        # exact zeros are exact in int8 (0 is always on the grid): leave ReLU's spike out, or
        # KL would only ever pick thresholds whose first bucket holds bin 0 alone
        hist[0] = max(hist[0] - self.zeros, 0.0)
        return hist


def _kl_threshold(hist: np.ndarray, levels: int, top: float) -> float:
    nbins = hist.size
    width = top / nbins
    best_kl, best_i = np.inf, nbins
    total = hist.sum()
    if total == 0:
        return top
    for i in range(levels, nbins + 1, 8):      # every 8th bin: same answer to <0.4%, 8x faster
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        # squeeze into `levels` buckets, then spread each bucket evenly over its non-empty bins
        bucket = (np.arange(i) * levels) // i
        nonzero = hist[:i] > 0
        mass = np.bincount(bucket, weights=hist[:i], minlength=levels)
        count = np.bincount(bucket, weights=nonzero, minlength=levels)
        q = np.where(nonzero, mass[bucket] / np.maximum(count[bucket], 1), 0.0)
        ps, qs = p.sum(), q.sum()
        if qs == 0:
            continue
        pn, qn = p / ps, q / qs
        m = pn > 0
        # a bin with P>0 but Q=0 (only the folded outlier bin can be) gets a tiny Q
        kl = float(np.sum(pn[m] * np.log(pn[m] / np.maximum(qn[m], 1e-12))))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * width


class MseObserver(HistogramObserver):
    """The [lo, hi] minimizing expected squared error of asymmetric 8-bit quantization:
    s^2/12 rounding noise inside the range, squared distance to the bound outside it."""

    GRID = np.linspace(0.05, 1.0, 96)

    def range(self) -> Range:
        if self.edges is None:
            return super().range()
        x, c = self.centres(), self.counts
        lo0, hi0 = _with_zero(self.lo, self.hi)
        lo_c = lo0 * self.GRID if lo0 < 0 else np.zeros(1)
        hi_c = hi0 * self.GRID if hi0 > 0 else np.zeros(1)
        best, best_err = (lo0, hi0), np.inf
        # alternate: best hi for the current lo, then best lo for that hi (converges in ~3)
        lo = lo0
        for _ in range(4):
            hi = hi_c[np.argmin(_mse(x, c, np.full_like(hi_c, lo), hi_c))]
            errs = _mse(x, c, lo_c, np.full_like(lo_c, hi))
            lo = lo_c[np.argmin(errs)]
            err = float(errs.min())
            if err < best_err:
                best, best_err = (float(lo), float(hi)), err
            else:
                break
        return _with_zero(*best)


def _mse(x: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Expected squared error for each candidate (lo[k], hi[k]) over the histogram (bin
    centres x ascending, counts c): sum c (lo - x)^2 below lo, sum c (x - hi)^2 above hi,
    (count inside) s^2 / 12. From prefix sums of c, c x and c x^2 and one binary search
    per bound: O(bins + candidates), not a [candidates, bins] matrix per call."""
    p0, p1, p2 = (np.concatenate([[0.0], np.cumsum(c * x ** k)]) for k in (0, 1, 2))
    i = np.searchsorted(x, lo, side="left")           # x[:i] < lo
    j = np.searchsorted(x, hi, side="right")          # x[j:] > hi
    below = lo * lo * p0[i] - 2.0 * lo * p1[i] + p2[i]
    above = (p2[-1] - p2[j]) - 2.0 * hi * (p1[-1] - p1[j]) + hi * hi * (p0[-1] - p0[j])
    s = np.maximum(hi - lo, 1e-12) / 255.0
    inside = np.maximum(p0[j] - p0[i], 0.0)
    return np.maximum(below, 0.0) + np.maximum(above, 0.0) + inside * s ** 2 / 12.0


def _with_zero(lo: float, hi: float) -> Range:
    """int8 ranges must contain 0 exactly (so zero padding is exact)."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return 0.0, 0.0
    return float(min(lo, 0.0)), float(max(hi, 0.0))


class SoftmaxInputObserver(MinMaxObserver):
    """A softmax input only needs the top of each row: exp(z - max) < e^-10 is far below the
    int8 output step (1/256), so the range runs from (lowest row maximum - 10 / beta) up to
    the observed maximum. The largest logit is never clipped; the int8 step gets finer."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.low_rowmax = np.inf

    def update(self, x: np.ndarray) -> None:
        super().update(x)
        if x.size:
            self.low_rowmax = min(self.low_rowmax, float(x.max(axis=-1).min()))

    def range(self) -> Range:
        lo = max(self.lo, self.low_rowmax - 10.0 / max(self.beta, 1e-6))
        return _with_zero(lo, self.hi)


OBSERVERS: dict[str, Callable[[], MinMaxObserver]] = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "entropy": EntropyObserver,
    "mse": MseObserver,
}

# Chosen by measurement: output SQNR (dB) vs float on held-out data, no equalization, bias
# correction or refit (benchmarks/quant_fidelity.py --observers reruns it):
#               minmax  percentile  entropy  mse
#   ResNet-8     14.4     14.9       12.1    16.0   (photo crops, the only real-image set)
#   KWS DS-CNN   23.6     23.3       23.2    24.2   (perturbations of one real input)
#   digits       45.5     43.0       40.6    43.4   (450 test images: a few uncertain ones
#                                                    dominate, +-1.5 dB from run to run)
# mse wins on both MLPerf models; entropy (KL) clips heavy-tailed activations too hard for
# 8-bit asymmetric quantization.
DEFAULT_OBSERVER = "mse"


# ---------------------------------------------------------------- calibration data
def load_calib(data: CalibData, graph: Graph) -> list[np.ndarray]:
    """Calibration data -> one float32 array per graph input, batch first [N, *sample_shape].

    Accepts a .npz (one array per input, by input name or in input order; any single array
    for a one-input model), a .npy or ndarray (one-input models), a dict or a list.
    Each sample has the input's shape without its batch dimension; `[N, *input_shape]`
    (a leading batch of 1 kept) is accepted too. Raises QuantizeError naming the input.
    """
    src = str(data) if isinstance(data, (str, Path)) else "calibration data"
    arrays = _read_arrays(data, graph, src)
    out: list[np.ndarray] = []
    n0 = None
    for name, arr in zip(graph.inputs, arrays):
        shape = tuple(graph.tensors[name].shape)
        sample = shape[1:] if shape and shape[0] == 1 else shape
        want = f"[N, {', '.join(str(d) for d in sample)}]"
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fiu":
            raise QuantizeError(f"{src}: input {name!r} has dtype {arr.dtype}; expected a real "
                                f"numeric array (float32) of shape {want}")
        if arr.ndim == len(sample) + 2 and arr.shape[1] == 1 and tuple(arr.shape[2:]) == sample:
            arr = arr[:, 0]
        arr = _from_onnx_layout(graph, name, arr)
        if arr.ndim != len(sample) + 1 or tuple(arr.shape[1:]) != tuple(sample):
            raise QuantizeError(f"{src}: input {name!r} has shape {list(arr.shape)}; expected "
                                f"{want} (N samples, batch first, each of shape "
                                f"{list(sample)})")
        if arr.shape[0] == 0:
            raise QuantizeError(f"{src}: input {name!r} has no samples; expected {want}")
        arr = arr.astype(np.float32)
        bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        if bad.any():
            raise QuantizeError(f"{src}: input {name!r} has NaN or Inf in sample "
                                f"{int(np.argmax(bad))} ({int(bad.sum())} bad samples)")
        if n0 is not None and arr.shape[0] != n0:
            raise QuantizeError(f"{src}: input {name!r} has {arr.shape[0]} samples but "
                                f"input {graph.inputs[0]!r} has {n0}; counts must match")
        n0 = arr.shape[0]
        out.append(arr)
    return out


def _from_onnx_layout(graph: Graph, name: str, arr: np.ndarray) -> np.ndarray:
    """Data in the ONNX model's own layout (NCHW) is moved to the IR's (NHWC): the ONNX
    frontend records each input's permutation in meta["onnx_layout"]."""
    perm = graph.meta.get("onnx_layout", {}).get(name)
    shape = tuple(graph.tensors[name].shape)
    if not perm or list(perm) == list(range(len(perm))) or len(perm) != len(shape) \
            or shape[0] != 1 or arr.ndim != len(shape):
        return arr
    onnx_shape = [0] * len(shape)
    for i, p in enumerate(perm):
        onnx_shape[p] = shape[i]
    if tuple(arr.shape[1:]) == tuple(onnx_shape[1:]) and tuple(arr.shape[1:]) != shape[1:]:
        return arr.transpose(perm)
    return arr


def split_key(data: CalibData) -> tuple[CalibData, list[str]]:
    """`file.npz:key` (or `file.npz:k1,k2`, one key per input in order) -> (file, keys);
    anything else -> (data, [])."""
    if isinstance(data, (str, Path)) and not Path(data).exists():
        path, sep, keys = str(data).rpartition(":")
        if sep and keys and path and Path(path).is_file():
            return path, keys.split(",")
    return data, []


def _read_arrays(data: CalibData, graph: Graph, src: str) -> list[np.ndarray]:
    names = list(graph.inputs)
    data, keys = split_key(data)
    if isinstance(data, (str, Path)):
        data = read_npy(data, QuantizeError)
    if keys:                               # file.npz:key picks the arrays by name
        have = list(data) if isinstance(data, Mapping) else []
        missing = [k for k in keys if k not in have]
        if missing or len(keys) != len(names):
            why = (f"has no array {missing[0]!r} (it has {have})" if missing else
                   f"names {len(keys)} array(s) for the model's {len(names)} input(s) {names}")
            raise QuantizeError(f"{src}: {why}")
        return [data[k] for k in keys]
    if isinstance(data, np.ndarray):
        data = [data]
    if isinstance(data, Mapping):
        keys = list(data)
        if all(n in data for n in names):
            return [data[n] for n in names]
        if len(keys) == len(names) and (len(names) == 1 or not set(keys) & set(names)):
            return [data[k] for k in keys]          # one array per input, in order
        missing = [n for n in names if n not in data]
        raise QuantizeError(f"{src}: has arrays {keys}; the model has {len(names)} input(s) "
                            f"{names} (missing {missing})")
    arrays = list(data)
    if len(arrays) != len(names):
        raise QuantizeError(f"{src}: {len(arrays)} array(s) given; the model has "
                            f"{len(names)} input(s) {names}")
    return arrays


# ---------------------------------------------------------------- running the float graph
def activation_names(graph: Graph) -> list[str]:
    return [n for n in graph.activations() if not graph.tensors[n].is_const]


def iterate_float(graph: Graph, data: list[np.ndarray], batch_size: int = 32,
                  verbose: int = 1, what: str = "calibrating") -> Iterable[dict[str, np.ndarray]]:
    """Yield every float tensor (by name, batch first) for successive batches of `data`.
    A batch holds every activation of its samples: it shrinks to fit ir.HOST_MAX_BYTES, and
    a graph whose one sample does not fit is a QuantizeError before anything is allocated."""
    from edgeforge.ir import HOST_MAX_BYTES
    per_sample = graph.activation_bytes()
    if per_sample > HOST_MAX_BYTES:
        raise QuantizeError(f"{graph.meta.get('source') or graph.name}: one sample's "
                            f"activations take {per_sample:,} B, more than the "
                            f"{HOST_MAX_BYTES:,} B calibration holds")
    batch_size = max(1, min(batch_size, HOST_MAX_BYTES // max(per_sample, 1)))
    n = data[0].shape[0]
    run = batch_runner(graph)
    with _progress(n, verbose, what) as advance:
        for start in range(0, n, batch_size):
            feeds = [d[start:start + batch_size] for d in data]
            yield run(feeds)
            advance(feeds[0].shape[0])


def batch_runner(graph: Graph, numerics: str = "tflm"
                 ) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    """feeds (batch first) -> every tensor of `graph` by name, via the reference runtime.

    A whole batch runs at once on a rebatched copy of the graph (batch dimension 1 -> B),
    with the int8 params prepared once per batch size; graphs that cannot be rebatched run
    one sample at a time."""
    from edgeforge.runtime import reference
    cache: dict[int, tuple[Graph, Any] | None] = {}

    shapes = [tuple(graph.tensors[i].shape) for i in graph.inputs]

    def one_by_one(feeds: list[np.ndarray]) -> dict[str, np.ndarray]:
        if 0 not in cache:
            cache[0] = (graph, reference.prepare_graph(graph, numerics))
        g, params = cache[0]
        outs = [reference.run(g, [f[i].reshape(s) for f, s in zip(feeds, shapes)],
                              numerics=numerics, intermediate=True, params=params)
                for i in range(feeds[0].shape[0])]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def run(feeds: list[np.ndarray]) -> dict[str, np.ndarray]:
        b = feeds[0].shape[0]
        if b not in cache:
            g = rebatch(graph, b)
            cache[b] = None if g is None else (g, reference.prepare_graph(g, numerics))
        if cache[b] is None:
            return one_by_one(feeds)
        g, params = cache[b]
        return reference.run(g, feeds, numerics=numerics, intermediate=True, params=params)

    return run


def rebatch(graph: Graph, batch: int) -> Graph | None:
    """A copy of `graph` with batch `batch` (activations' leading 1 -> batch), or None when
    the graph's batch dimension is not a leading 1 everywhere."""
    g = graph.copy()
    for name in activation_names(g):
        t = g.tensors[name]
        if not t.shape or t.shape[0] != 1:
            return None
        t.shape = (batch,) + tuple(t.shape[1:])
    for k, node in enumerate(g.nodes):
        a = node.attrs
        if node.op == Op.RESHAPE:
            if not a.shape or a.shape[0] != 1:
                return None
            g.nodes[k] = node.with_(attrs=type(a)(shape=(batch,) + tuple(a.shape[1:])),
                                    inputs=node.inputs[:1])
        elif node.op == Op.STRIDED_SLICE:       # keeps the whole batch: take all of it
            if (a.begin[:1], a.end[:1], a.strides[:1]) != ((0,), (1,), (1,)):
                return None
            g.nodes[k] = node.with_(attrs=type(a)(a.begin, (batch,) + tuple(a.end[1:]),
                                                  a.strides))
        elif node.op == Op.LSTM and a.time_major:
            return None                          # dim 0 is time (states broadcast a batch)
        elif 0 in _axes(a) or node.op == Op.TRANSPOSE and a.perm and a.perm[0] != 0:
            return None                          # works across, or moves, the batch axis
    return g


def _axes(a: Any) -> tuple[int, ...]:
    """The axes an op works along (MEAN axes, CONCAT / SOFTMAX axis); () for other attrs."""
    if hasattr(a, "axes"):
        return tuple(a.axes)
    return (a.axis,) if hasattr(a, "axis") else ()


PROGRESS = logging.getLogger("edgeforge.progress")


def report_progress(stage: str, done: int, total: int, detail: str = "") -> None:
    """One progress event of a long step (stage, e.g. "calibrating"; done of total; detail,
    e.g. the layer): a DEBUG record on the edgeforge.progress logger carrying them as
    attributes. The library draws nothing: the CLI turns these into a bar on a terminal."""
    if PROGRESS.isEnabledFor(logging.DEBUG):
        PROGRESS.debug("%s %d/%d %s", stage, done, total, detail,
                       extra={"stage": stage, "done": done, "total": total, "detail": detail})


class _progress:
    """Sample progress of one pass over the data, as report_progress events (`verbose` is
    kept for the callers' signatures: drawing is the CLI's choice)."""

    def __init__(self, total: int, verbose: int, what: str) -> None:
        self.total, self.what, self.done = total, what, 0

    def __enter__(self) -> Callable[[int], None]:
        report_progress(self.what, 0, self.total, "samples")

        def advance(k: int) -> None:
            self.done += k
            report_progress(self.what, self.done, self.total, "samples")
        return advance

    def __exit__(self, *exc: object) -> None:
        if self.done < self.total:          # an error midway: close the stage anyway
            report_progress(self.what, self.total, self.total, "samples")


class FloatRecord:
    """Float tensors that bias correction and the SQNR report read, kept from calibration's
    own pass so the float graph runs once instead of three times: `chunks[t][c]` holds
    tensor t for samples [c * chunk, (c + 1) * chunk), as calibration batched them.

    `graph`: the float graph calibration runs instead, where a weighted layer with a fused
    activation writes its output before the activation to a tensor of its own and a CLIP
    node applies the activation (the same float32 values: clamping to bounds float32 holds
    exactly commutes with rounding to float32; with_pre_activations). `pre_act`: layer
    output -> the recorded tensor holding its pre-activation output. `full` tensors are
    kept for the first `samples` samples, `head` tensors for the first `head_samples` (the
    SQNR report's samples)."""

    def __init__(self, graph: Graph, pre_act: dict[str, str], full: set[str], head: set[str],
                 samples: int, chunk: int, head_samples: int) -> None:
        self.graph, self.pre_act = graph, pre_act
        self.full, self.head = full, head - full
        self.samples, self.chunk, self.head_samples = samples, chunk, head_samples
        self.chunks: dict[str, list[np.ndarray]] = {t: [] for t in full | head}
        self.sqnr_acc: dict[str, list[float]] = {}   # filled by bias correction

    def keep(self, start: int, values: dict[str, np.ndarray]) -> None:
        """Record the batch of calibration samples that begins at sample `start`."""
        if start < self.samples:
            for t in self.full:
                self.chunks[t].append(values[t])
        if start < self.head_samples:
            for t in self.head:
                self.chunks[t].append(values[t])


def with_pre_activations(graph: Graph, layers: set[str]) -> tuple[Graph, dict[str, str]]:
    """A copy of `graph` where each layer in `layers` (output names) with a fused activation
    writes its pre-activation output to a new tensor, which a CLIP node then clamps into the
    layer's own output; returns it and {layer output: pre-activation tensor}."""
    from dataclasses import replace

    from edgeforge.ir import ACT_RANGE, Act, ClipAttrs, Node, Tensor
    g = graph.copy()
    pre: dict[str, str] = {}
    nodes: list[Node] = []
    for n in g.nodes:
        out = n.outputs[0]
        act = getattr(n.attrs, "act", Act.NONE)
        name = f"{out}/pre_activation"
        if out not in layers or act == Act.NONE or name in g.tensors:
            nodes.append(n)
            continue
        g.add_tensor(Tensor(name, tuple(g.tensors[out].shape), "float32"))
        lo, hi = ACT_RANGE[Act(act)]
        nodes += [n.with_(attrs=replace(n.attrs, act=Act.NONE), outputs=(name,)),
                  Node(Op.CLIP, (name,), (out,), ClipAttrs(lo, hi), f"{n.name or out}/act")]
        pre[out] = name
    g.nodes = nodes
    return g, pre


def calibrate(graph: Graph, data: CalibData, observer: str | None = None,
              batch_size: int = 32, verbose: int = 1,
              record: FloatRecord | None = None) -> dict[str, Range]:
    """Float ranges (min, max) of every activation tensor (graph inputs included) over `data`.

    The float reference runs over the data in batches; observers see each batch once.
    With `record`, it runs record.graph (the same values) in batches of record.chunk and
    keeps what the record asks for.
    """
    name = observer or DEFAULT_OBSERVER
    if name not in OBSERVERS:
        raise QuantizeError(f"unknown observer {name!r}; available: {', '.join(OBSERVERS)}")
    arrays = load_calib(data, graph)
    obs: dict[str, MinMaxObserver] = {t: OBSERVERS[name]() for t in activation_names(graph)}
    # what the user reads is never clipped; a softmax input keeps its row maxima (above)
    for t in graph.outputs:
        obs[t] = MinMaxObserver()
    for n in graph.nodes:
        if n.op == Op.SOFTMAX and n.inputs[0] not in graph.outputs:
            obs[n.inputs[0]] = SoftmaxInputObserver(n.attrs.beta)
    run_g, batch = (graph, batch_size) if record is None else (record.graph, record.chunk)
    with np.errstate(all="ignore"):      # an overflow is found below, not warned about
        for k, values in enumerate(iterate_float(run_g, arrays, batch, verbose)):
            if record is not None:
                record.keep(k * record.chunk, values)
            for t, o in obs.items():
                if t in values:
                    v = np.asarray(values[t], dtype=np.float32)
                    _check_finite(graph, t, v)
                    o.update(v)
        ranges = {t: o.range() for t, o in obs.items()}
    for t, r in ranges.items():            # scales from these would be NaN / Inf
        _check_finite(graph, t, np.asarray(r, dtype=np.float64))
    for name, arr in zip(graph.inputs, arrays):
        grid = input_grid(arr)
        if grid is not None:
            ranges[name] = grid
    return ranges


def _check_finite(graph: Graph, t: str, v: np.ndarray) -> None:
    """Calibration statistics must be finite: a NaN / Inf activation makes NaN scales."""
    if not np.isfinite(v).all():
        raise QuantizeError(f"{graph.meta.get('source') or graph.name}: tensor {t!r} reaches "
                            "NaN or Inf on the calibration data (the float model overflows "
                            "float32 on these inputs)")


def input_grid(x: np.ndarray) -> Range | None:
    """When every calibration value of an input lies on a uniform grid d * k with at most 256
    levels (images: integer pixels, or pixels / 16), the range whose int8 step is exactly d,
    so the input is quantized losslessly; else None."""
    u = np.unique(x)
    if u.size < 2 or u.size > 256:
        return None
    d = float(np.diff(u).min())
    k = u.astype(np.float64) / d
    if d <= 0 or np.abs(k - np.round(k)).max() > 1e-3:
        return None
    k0 = min(int(np.round(k[0])), 0)
    if int(np.round(k[-1])) - k0 > 255:
        return None
    return d * k0, d * (k0 + 255)

