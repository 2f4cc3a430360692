"""Guard rails for compression: what each step costs, a warning when it costs too much, and
the search for the strongest setting within a bound (issue 19).

    ev = eval_set(teacher, held_out_arrays)                  # or eval_set(teacher, "val.npz")
    fid = fidelity(ev, student)        # {"sqnr_db": 31.2, "accuracy": 0.983} vs the float model
    drop = sqnr_drop(int8_db=45.0, compress_db=31.2)         # 13.8 dB

The fidelity cost of a compression step is the output SQNR of the compressed float model
against the original float model, on data the refit did not see (the held-out 20% of the
calibration set, or `--val-data` with labels: then top-1 accuracy too). Quantization adds
its own noise later, so a bound on SQNR is stated as a drop: the int8 model's output SQNR
(vs float) without compression, minus what it becomes once the compression's noise adds to
it (independent noises add in power). A drop of 3 dB means half the output's fidelity lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import Graph

# Warn when compression costs more than this and no explicit bound was given: with labels,
# accuracy decides (the SQNR of a confident classifier's softmax falls long before its
# top-1 does: digits at 50% sparsity + refit, 42 -> 17 dB yet 98.7% -> 98.2%); without them,
# the SQNR drop (6 dB: the output's noise power four times the int8 model's).
WARN_SQNR_DROP_DB = 6.0
WARN_ACCURACY_DROP = 0.01        # one point of top-1 accuracy


@dataclass
class EvalSet:
    """Inputs (batch first, one array per graph input), optional class labels, the float
    teacher's first output on them, and where they came from."""
    arrays: list[np.ndarray]
    labels: np.ndarray | None
    reference: np.ndarray
    source: str

    @property
    def teacher_accuracy(self) -> float | None:
        return accuracy(self.reference, self.labels)


def eval_set(teacher: Graph, data: Any, *, max_samples: int = 512) -> EvalSet:
    """`data`: a list of arrays (held-out calibration inputs), or a .npz / dict with x and
    optionally y (labels), as `edgeforge validate --data` takes."""
    from edgeforge.quantize.calibrate import load_calib
    labels, source = None, "held-out calibration samples"
    if isinstance(data, (str, Path, dict)):
        from edgeforge.arrays import read_npy
        source = "data" if isinstance(data, dict) else str(data)
        d = data if isinstance(data, dict) else read_npy(data)
        if isinstance(d, np.ndarray) or "x" not in d:
            raise EdgeforgeError(f"{source}: --val-data wants a .npz with x (inputs) and "
                                 "optionally y (labels)")
        arrays = load_calib(d["x"], teacher)
        if d.get("y") is not None:
            labels = _labels(np.asarray(d["y"]), arrays[0].shape[0], source)
    else:
        arrays = list(data)
    arrays = [a[:max_samples] for a in arrays]
    if labels is not None:
        labels = labels[:max_samples]
    return EvalSet(arrays, labels, run_output(teacher, arrays), source)


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if len(y) != n:
        raise EdgeforgeError(f"{where}: y has {len(y)} entries for {n} samples in x")
    if y.ndim >= 2 and y.reshape(n, -1).shape[1] > 1:
        return y.reshape(n, -1).argmax(axis=1)             # one-hot rows
    if not np.allclose(y, np.round(y)):
        raise EdgeforgeError(f"{where}: y must be N class labels or N one-hot rows")
    return y.reshape(n).astype(np.int64)


def run_output(g: Graph, arrays: list[np.ndarray], batch: int = 64,
               tensor: str | None = None) -> np.ndarray:
    """The float graph's first output (or `tensor`) on `arrays`, batch first."""
    from edgeforge.quantize.calibrate import batch_runner
    run = batch_runner(g)
    outs = [run([a[s:s + batch] for a in arrays])[tensor or g.outputs[0]]
            for s in range(0, arrays[0].shape[0], batch)]
    return np.concatenate(outs).astype(np.float64)


def accuracy(out: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy of a classifier output [N, ..., K] against N labels."""
    if labels is None:
        return None
    pred = out.reshape(out.shape[0], -1).argmax(axis=1)
    return float(np.mean(pred == labels))


def sqnr(ref: np.ndarray, test: np.ndarray) -> float:
    from edgeforge.quantize.quantize import sqnr_db
    return float(sqnr_db(ref, test))


def fidelity(ev: EvalSet, student: Graph) -> dict[str, Any]:
    """Output SQNR (dB) of `student` vs the teacher on the eval set, and its accuracy."""
    out = run_output(student, ev.arrays)
    return {"sqnr_db": sqnr(ev.reference, out), "accuracy": accuracy(out, ev.labels)}


def sqnr_drop(int8_db: float, compress_db: float) -> float:
    """How much the int8 output SQNR falls when compression noise at `compress_db` adds to
    the quantization noise at `int8_db` (noise powers add): >= 0, inf if nothing is left."""
    if not np.isfinite(compress_db):
        return 0.0 if compress_db > 0 else float("inf")
    if not np.isfinite(int8_db):
        return float("inf") if compress_db < 200 else 0.0
    both = -10 * np.log10(10 ** (-int8_db / 10) + 10 ** (-compress_db / 10))
    return float(int8_db - both)


def int8_baseline(teacher: Graph, fit: list[np.ndarray], ev: EvalSet) -> float:
    """Output SQNR (dB) of the uncompressed model quantized to int8 (defaults, no refit),
    against float on the eval set: the floor the compression's noise is measured against."""
    from edgeforge.quantize.bias_correction import run_int8_float_pairs
    from edgeforge.quantize.quantize import quantize_model
    qg = quantize_model(teacher, fit, verbose=0, refit=None)
    name = teacher.outputs[0]
    ref, got = [], []
    for f, q in run_int8_float_pairs(teacher, qg, ev.arrays, [name], batch_size=64):
        ref.append(f[name])
        got.append(q[name])
    return sqnr(np.concatenate(ref), np.concatenate(got))


def within(fid: dict[str, Any], int8_db: float, max_sqnr_drop: float | None,
           min_accuracy: float | None) -> bool:
    """Whether a compressed model's fidelity meets both bounds (None: no bound)."""
    if max_sqnr_drop is not None and sqnr_drop(int8_db, fid["sqnr_db"]) > max_sqnr_drop:
        return False
    acc = fid["accuracy"]
    return min_accuracy is None or acc is None or acc >= min_accuracy


def warnings_for(setting: str, fid: dict[str, Any], ev: EvalSet, int8_db: float,
                 max_drop: float, max_acc_drop: float) -> list[str]:
    """One line per bound the compressed model breaks, naming the setting and the cure."""
    out = []
    drop = sqnr_drop(int8_db, fid["sqnr_db"])
    if drop > max_drop and (ev.labels is None or fid["accuracy"] is None):
        out.append(f"{setting} costs {drop:.1f} dB of output SQNR (int8 vs float "
                   f"{int8_db:.1f} dB without it; the compressed float model alone is at "
                   f"{fid['sqnr_db']:.1f} dB), more than {max_drop:g} dB")
    t_acc, acc = ev.teacher_accuracy, fid["accuracy"]
    if t_acc is not None and acc is not None and t_acc - acc > max_acc_drop:
        out.append(f"{setting} costs {100 * (t_acc - acc):.1f} points of accuracy on "
                   f"{ev.source} ({100 * t_acc:.1f}% -> {100 * acc:.1f}%), more than "
                   f"{100 * max_acc_drop:g}")
    if out:
        cure = "lower the setting" if "--distill" in setting else \
            "refit (drop --no-distill), lower the setting"
        out[-1] += (f"; {cure}, or pass --max-sqnr-drop DB / --min-accuracy A to search for "
                    "the strongest setting that fits")
    return out


def search(build: Any, ok: Any, steps: int = 5) -> tuple[float, Any]:
    """The largest t in (0, 1] with ok(build(t)), assuming fidelity falls as t grows:
    t = 1 first, then bisection (`steps` halvings). Returns (t, build(t)); t = 0 and None
    when even the weakest setting tried fails."""
    top = build(1.0)
    if ok(top):
        return 1.0, top
    lo, hi, best = 0.0, 1.0, None
    for _ in range(steps):
        mid = (lo + hi) / 2
        cand = build(mid)
        if ok(cand):
            lo, best = mid, cand
        else:
            hi = mid
    return lo, best
