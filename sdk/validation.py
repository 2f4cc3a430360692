"""`edgeforge validate MODEL_OR_DIR --data D.npz [--target URI]`: float vs int8, and the device.

    r = validate("out/kws", "test.npz")                        # host: float vs int8
    r = validate("out/kws", "test.npz", target="qemu://mps2-an386")   # + int8 on the device

D.npz holds `x` (N samples, stacked on the batch axis as --calib takes them; float, or int8
for an int8 input) and optionally `y` (N class labels, or one-hot rows, or N target arrays).

The float model is the DIR's source (manifest `source`) when it is a float model; a float
model file is compiled to a temporary DIR first (calibrated on --calib, else on x). Every
comparison is on the first output, dequantized with its scale and zero point:
  * int8 (host reference, the compiled profile) vs float: SQNR, RMSE, MAE, cosine, and for
    classifiers top-1 agreement; a 16x8 DIR's run is named "int16", a mixed one "int8+int16"
    (report["quantized"]);
  * int8 on the device vs int8 on the host: byte-equal samples (the C package promises equal
    bytes), plus the same metrics vs float;
  * vs the labels, when y is given: accuracy (classifiers) or RMSE/MAE, and the confusion
    matrix of each run;
  * the samples that disagree (top-1 differs from float or from the label, or device bytes
    differ from the host), first MAX_LISTED.
Returns data only; the CLI (edgeforge.cli.validate) prints it.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import Graph

log = logging.getLogger(__name__)
stage = logging.getLogger("edgeforge.stage.validate").info    # progress: shown on a terminal
MAX_LISTED = 50


def _samples(x: np.ndarray, shape: tuple[int, ...], where: str,
             perm: list[int] | None = None) -> np.ndarray:
    """[N, *shape]: N samples stacked on the batch axis (or on a new leading axis); an ONNX
    model's authored (NCHW) layout is transposed to the internal one."""
    x = np.asarray(x)
    cands = [x]
    if perm and x.ndim == len(perm):             # [N, C, H, W] with N on the batch axis
        cands.append(x.transpose(perm))
    if perm and x.ndim == len(perm) + 1:         # [N, 1, C, H, W]
        cands.append(x.transpose(0, *(1 + p for p in perm)))
    for c in cands:
        if shape and shape[0] == 1 and c.shape[1:] == shape[1:]:
            c = c[:, None]
        elif c.shape == shape:
            c = c[None]
        if c.shape[1:] == shape:
            x = np.ascontiguousarray(c)
            break
    if x.shape[1:] != shape:
        raise EdgeforgeError(f"{where}: x has shape {list(x.shape)}; the model's input is "
                             f"{list(shape)} (give N samples stacked on the batch axis)")
    if len(x) == 0:
        raise EdgeforgeError(f"{where}: x holds no samples")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        n = int(np.argmax(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)))
        raise EdgeforgeError(f"{where}: x sample {n} has NaN or Inf")
    return x


def _read(data: str | Path | dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    from edgeforge.arrays import read_npy
    d = data if isinstance(data, dict) else read_npy(data)
    where = "data" if isinstance(data, dict) else str(data)
    if isinstance(d, np.ndarray) or "x" not in d:
        have = "one array (a .npy)" if isinstance(d, np.ndarray) else f"arrays {list(d)}"
        raise EdgeforgeError(f"{where}: has {have}; validate wants a .npz with x (inputs) "
                             "and optionally y (labels)")
    return d["x"], d.get("y")


def metrics(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """SQNR (dB), RMSE, MAE and cosine similarity of `got` against `ref` (all samples)."""
    r = np.asarray(ref, np.float64).ravel()
    g = np.asarray(got, np.float64).ravel()
    err = g - r
    noise, signal = float(np.sum(err ** 2)), float(np.sum(r ** 2))
    sqnr = float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0
                                            else float("-inf"))
    den = float(np.linalg.norm(r) * np.linalg.norm(g))
    return {"sqnr_db": sqnr, "rmse": float(np.sqrt(np.mean(err ** 2))),
            "mae": float(np.mean(np.abs(err))),
            "cosine": float(r @ g / den) if den > 0 else float(np.array_equal(r, g))}


def _labels(y: np.ndarray | None, n: int, classes: int | None, where: str) -> np.ndarray | None:
    """Class indices from y (N ints, or N one-hot rows); None for a non-classifier."""
    if y is None or classes is None:
        return None
    y = np.asarray(y)
    if len(y) != n:
        raise EdgeforgeError(f"{where}: y has {len(y)} entries for {n} samples in x")
    if y.ndim >= 2 and int(np.prod(y.shape[1:])) == classes:
        return y.reshape(n, -1).argmax(axis=1)
    if y.reshape(n, -1).shape[1] == 1 and np.allclose(y, np.round(y)):
        lab = y.reshape(n).astype(np.int64)
        if lab.min() < 0 or lab.max() >= classes:
            raise EdgeforgeError(f"{where}: y has labels outside 0..{classes - 1}")
        return lab
    raise EdgeforgeError(f"{where}: y of shape {list(y.shape)} is neither N class labels "
                         f"nor N one-hot rows of {classes}")


def _is_classifier(g: Any, y: np.ndarray | None, n: int, classes: int) -> bool:
    """A softmax output, or labels that look like classes (N ints, or N one-hot rows)."""
    from edgeforge.ir import Op
    last = g.producers().get(g.outputs[0])
    if y is None:
        return last is not None and last.op == Op.SOFTMAX
    y = np.asarray(y)
    if y.size == n:
        return bool(np.allclose(y, np.round(y)))
    return y.size == n * classes and bool(np.isin(y, (0, 1)).all())


def _confusion(labels: np.ndarray, pred: np.ndarray, classes: int) -> list[list[int]]:
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (labels, pred), 1)
    return m.tolist()


def _dequant(q: np.ndarray, t: Any) -> np.ndarray:
    if t.quant is None:
        return np.asarray(q, np.float32)
    from edgeforge.qmath import dequantize
    return dequantize(q, float(t.quant.scale[0]), int(t.quant.zero_point[0]))


def _quant_input(x: np.ndarray, t: Any, where: str) -> np.ndarray:
    if t.dtype == "float32":
        return x.astype(np.float32)
    if x.dtype == np.dtype(t.dtype):
        return x
    if x.dtype.kind != "f" or t.quant is None:
        raise EdgeforgeError(f"{where}: x is {x.dtype}, the quantized model's input is "
                             f"{t.dtype}")
    from edgeforge.qmath import quantize
    return quantize(x, float(t.quant.scale[0]), int(t.quant.zero_point[0]), t.dtype)


def _resolve(model: Path, data: str | Path | dict, calib: Any, numerics: str | None,
             stack: contextlib.ExitStack) -> tuple[Path, Path | None]:
    """(compiled DIR, float model file or None)."""
    from edgeforge.frontends import load
    from edgeforge.manifest import Manifest
    if model.is_dir():
        m = Manifest.load(model)
        m.check_model(model)
        src = Path(str(m.extra.get("source", "")))
        if not (src.is_file() and src.suffix in (".tflite", ".onnx")):
            log.info("validate: %s's source model %s is not here: no float comparison", model,
                     src)
            return model, None
        from edgeforge.manifest import sha256_file
        if m.source_sha256 and sha256_file(src) != m.source_sha256:
            # a float model edited since compile is not the one this DIR was made from
            log.info("validate: %s changed since %s was compiled: no float comparison", src,
                     model)
            return model, None
        return model, (None if load(src).is_quantized() else src)
    if not model.is_file():
        raise EdgeforgeError(f"{model}: no such model file or compiled DIR")
    from edgeforge.compiler import compile_model
    g = load(model)
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edgeforge-validate-")))
    if g.is_quantized():
        res = compile_model(model, tmp / "dir", numerics=numerics or "tflm")
        return res.dir, None
    if calib is None:                # calibrate on the validation inputs themselves
        x, _ = _read(data)
        calib = x
        log.info("validate: %s is a float model; quantizing it calibrated on x "
                 "(%d samples); pass --calib for separate calibration data", model, len(x))
    res = compile_model(model, tmp / "dir", calib=calib, numerics=numerics or "tflm")
    return res.dir, model


def precision(g: Graph) -> str:
    """The activation types of a quantized graph: "int8", "int16" (16x8) or "int8+int16"
    (--activations auto): the name validate gives the quantized run."""
    kinds = {g.tensors[n].dtype for n in g.activations()}
    return "+".join(k for k in ("int8", "int16") if k in kinds) or "int8"


def validate(model: str | Path, data: str | Path | dict[str, np.ndarray], *,
             target: str | None = None, calib: Any = None, numerics: str | None = None,
             **target_options: Any) -> dict[str, Any]:
    """Compare float vs int8 on the host (and int8 on `target`); see the module docstring."""
    from edgeforge.frontends import load
    from edgeforge.manifest import Manifest
    from edgeforge.runtime.reference import run as ref_run

    where = "data" if isinstance(data, dict) else str(data)
    with contextlib.ExitStack() as stack:
        directory, float_path = _resolve(Path(model), data, calib, numerics, stack)
        man = Manifest.load(directory)
        prof = man.numerics
        g8 = load(directory / "model.tflite")
        if len(g8.inputs) != 1:
            raise EdgeforgeError(f"{model}: validate drives single-input models; this one "
                                 f"has {len(g8.inputs)} inputs")
        t_in, t_out = g8.tensors[g8.inputs[0]], g8.tensors[g8.outputs[0]]
        gf = load(float_path) if float_path is not None else None
        x_raw, y = _read(data)
        x = _samples(x_raw, tuple(t_in.shape), where,
                     (gf.meta.get("onnx_layout", {}) if gf is not None else {}).get(
                         gf.inputs[0]) if gf is not None else None)
        n = len(x)
        if y is not None and len(np.asarray(y)) != n:
            raise EdgeforgeError(f"{where}: y has {len(np.asarray(y))} entries for {n} "
                                 "samples in x")
        x8 = _quant_input(x, t_in, where)
        qname = precision(g8)
        stage("validate: %d samples, %s reference (%s)%s", n, qname, prof,
                 " and float" if gf is not None else "")
        q8 = np.stack([ref_run(g8, [s], numerics=prof)[g8.outputs[0]] for s in x8])
        outs: dict[str, np.ndarray] = {qname: _dequant(q8, t_out)}
        if gf is not None:
            xf = x.astype(np.float32) if x.dtype.kind == "f" else _dequant(x, t_in)
            outs["float"] = np.stack([np.asarray(ref_run(gf, [s])[gf.outputs[0]], np.float32)
                                      for s in xf])
        device: dict[str, Any] | None = None
        if target is not None:
            from edgeforge.targets import open_target
            got = []
            with open_target(target, **target_options) as t:
                info = t.open(directory, man)
                prof_dev = getattr(t, "numerics", None) or prof
                for k, s in enumerate(x8):
                    got.append(np.asarray(t.infer([s])[0]))
                    if (k + 1) % 50 == 0:
                        stage("validate: %d/%d samples on %s", k + 1, n, target)
            qd = np.stack(got)
            outs["device"] = _dequant(qd, t_out)
            if prof_dev != prof:     # a LiteRT target rounds as LiteRT: compare with that
                q8 = np.stack([ref_run(g8, [s], numerics=prof_dev)[g8.outputs[0]]
                               for s in x8])
            differ = [k for k in range(n) if not np.array_equal(qd[k], q8[k])]
            device = {"target": target, "numerics": prof_dev, "info": info,
                      "byte_equal_samples": n - len(differ),
                      "byte_equal": not differ, "differing_samples": differ[:MAX_LISTED]}
    per = int(np.prod(t_out.shape))
    classes = per if per > 1 and _is_classifier(g8, y, n, per) else None
    labels = _labels(y, n, classes, where)
    report: dict[str, Any] = {
        "model": str(model), "dir": str(directory) if Path(model).is_dir() else None,
        "float_model": str(float_path) if float_path else None, "numerics": prof,
        "samples": n, "output": g8.outputs[0], "task": "classifier" if classes else "other",
        "quantized": qname,
        "labels": y is not None, "comparisons": {}, "device": device,
    }
    ref_name = "float" if "float" in outs else qname
    preds = {k: v.reshape(n, -1).argmax(axis=1) for k, v in outs.items()} if classes else {}
    for k, v in outs.items():
        if k == ref_name:
            continue
        row: dict[str, Any] = {"vs": ref_name, **metrics(outs[ref_name], v)}
        if classes:
            row["top1_agreement"] = float(np.mean(preds[k] == preds[ref_name]))
        report["comparisons"][k] = row
    if y is not None:
        acc: dict[str, Any] = {}
        for k, v in outs.items():
            if labels is not None:
                acc[k] = {"accuracy": float(np.mean(preds[k] == labels)),
                          "confusion": _confusion(labels, preds[k], classes or 0)}
            else:
                acc[k] = {k2: v2 for k2, v2 in metrics(np.asarray(y, np.float64).reshape(
                    v.shape), v).items() if k2 in ("rmse", "mae")}
        report["vs_labels"] = acc
    elif classes and "float" in outs:
        report["confusion_vs_float"] = {
            k: _confusion(preds["float"], preds[k], classes) for k in outs if k != "float"}
    report["disagreements"] = _disagreements(outs, preds, labels, device, ref_name)
    return report


def _disagreements(outs: dict[str, np.ndarray], preds: dict[str, np.ndarray],
                   labels: np.ndarray | None, device: dict[str, Any] | None, ref: str
                   ) -> list[dict[str, Any]]:
    n = len(next(iter(outs.values())))
    rows = []
    differ = set(device["differing_samples"]) if device else set()
    for k in range(n):
        row: dict[str, Any] = {"sample": k}
        why = []
        if preds:
            row.update({f"top_{name}": int(p[k]) for name, p in preds.items()})
            if labels is not None:
                row["label"] = int(labels[k])
                why += [f"{name} != label" for name, p in preds.items() if p[k] != labels[k]]
            if len({int(p[k]) for p in preds.values()}) > 1:
                why.append("top-1 differs")
        if k in differ:
            why.append("device bytes differ")
        if why:
            row["why"] = sorted(set(why))
            rows.append(row)
    if not preds and ref in outs:          # non-classifier: the worst samples by error
        err = {name: np.sqrt(np.mean((v.reshape(n, -1) - outs[ref].reshape(n, -1)) ** 2,
                                     axis=1)) for name, v in outs.items() if name != ref}
        for name, e in err.items():
            for k in np.argsort(-e)[:5]:
                rows.append({"sample": int(k), "why": [f"largest {name} error"],
                             "rmse": float(e[k])})
    return rows[:MAX_LISTED]
