"""`edgeforge run MODEL -i IN.npy|IN.npz [-o OUT.npy]`: edgeforge.api.run, printed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge import api
from edgeforge.arrays import read_npy
from edgeforge.errors import EdgeforgeError
from edgeforge.runner import check_graph_inputs, model_file


def _read_inputs(path: str, names: list[str]) -> list[np.ndarray]:
    """IN.npy (one input) or IN.npz (one array per input: by input name, else in file order)."""
    data = read_npy(path)
    if isinstance(data, np.ndarray):
        return [data]
    if all(n in data for n in names):
        return [data[n] for n in names]
    if len(names) > 1 and set(data) & set(names):     # some named: the order is a guess
        raise EdgeforgeError(f"{path}: has arrays {list(data)}; the model's inputs are "
                             f"{names} (name every array after its input, or none)")
    return list(data.values())


def main(args: Any) -> int:
    model = Path(args.model)
    g = api.load(model_file(model))
    # checked here first so an error names the input file, not the model
    inputs = check_graph_inputs(g, _read_inputs(args.input, list(g.inputs)), args.input)
    r = api.run(model, inputs, backend=args.backend, numerics=args.numerics)
    outs = r["outputs"]
    if args.output:
        _save(Path(args.output), outs[0])
    if getattr(args, "json", False):
        print(json.dumps(dict(r, outputs=[o.tolist() for o in outs])))
        return 0
    if args.output:
        print(f"wrote {args.output} ({outs[0].dtype}{list(outs[0].shape)})")
    else:
        with np.printoptions(threshold=64, linewidth=100):
            for name, o in zip(g.outputs, outs):
                print(f"{name}: {o.dtype}{list(o.shape)}\n{o}")
    print(summary_line(r["summary"]))
    return 0


def summary_line(s: dict[str, Any]) -> str:
    """One line that fits the output: top class, reconstruction error, or the value range."""
    if s.get("kind") == "classifier":
        return f"top: class {s['top']} (score {s['score']:.4g})"
    if s.get("kind") == "reconstruction":
        return (f"reconstruction error vs input: MSE {s['mse']:.4g}, "
                f"max |error| {s['max_abs_error']:.4g}")
    if s.get("kind") == "values":
        return f"output values: min {s['min']:.4g}, mean {s['mean']:.4g}, max {s['max']:.4g}"
    return ""


def _save(path: Path, y: np.ndarray) -> None:
    """Write via a temp file + rename so a failed run never leaves a half-written .npy."""
    tmp = path.with_name(path.name + ".tmp.npy")
    try:
        np.save(tmp, y)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EdgeforgeError(f"{path}: cannot write ({e.strerror or e})") from None

