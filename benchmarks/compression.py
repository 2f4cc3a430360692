"""Each compression method on zoo models: MACs, C-package flash, and accuracy (labelled
digits models) or int8 output SQNR vs the float model (zoo models: random weights, no labels).

    python benchmarks/compression.py [--json] [--models NAME ...]

Per model, `edgeforge compile` with: nothing (int8), --prune-channels 0.5, --prune 0.5
--cluster 16, --cluster 16, --prune 0.5 --prune-blocks. Flash is the C package's constant
bytes (weights, biases, scales; clustered weights as table + indices, block-sparse FC as its
nonzero blocks). Fidelity is `edgeforge validate` of the compiled DIR against the original
float model on inputs no step saw:
  zoo models (tests/zoo/models): calibration 64 and evaluation 64 fresh standard-normal inputs,
      the distribution of the zoo's own calibration files;
  digits models (examples/digits/heldout): calibration examples/digits/calib.npz, top-1
      accuracy on test.npz.
The zoo's seeded random weights make outputs that move by ~1e-5 of their size from one
input to the next (mobilenet_v2_035 2e-6, dscnn_kws 3e-5): their SQNR measures how well a
compressed model keeps that near-constant, which is a worst case for pruning (random filters
have no redundancy to remove), not what a trained model loses; only the digits rows have
labels.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "tests" / "zoo" / "models"
DIGITS = ROOT / "examples" / "digits"
MODELS = ["mobilenet_v1_tiny", "mobilenet_v2_035", "dscnn_kws", "lenet5",
          "digits/mbv2_s0", "digits/resnet_s0"]
METHODS = {"int8": {}, "--prune-channels 0.5": {"prune_channels": 0.5},
           "--prune 0.5 --cluster 16": {"prune": 0.5, "cluster": 16},
           "--cluster 16": {"cluster": 16},
           "--prune 0.5 --prune-blocks": {"prune": 0.5, "prune_blocks": True}}


def data_for(name: str) -> tuple[Path, object, object]:
    """(model, calibration, evaluation data)."""
    if name.startswith("digits/"):
        return (DIGITS / "heldout" / f"{name[7:]}.onnx", DIGITS / "calib.npz",
                DIGITS / "test.npz")
    shape = np.load(ZOO / f"{name}_calib.npz")["input"].shape[1:]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, *shape)).astype(np.float32)
    return ZOO / f"{name}.onnx", {"input": x[:64]}, {"x": x[64:]}


def measure(name: str, work: Path) -> list[dict]:
    import edgeforge
    model, calib, ev = data_for(name)
    rows = []
    for method, opts in METHODS.items():
        out = work / f"{name.replace('/', '_')}_{len(rows)}"
        r = edgeforge.compile(model, out, calib=calib, **opts)
        rep = json.loads((out / "report.json").read_text())
        v = edgeforge.validate(out, ev)
        row = {"model": name, "method": method, "macs": r["macs"],
               "flash": rep["c"]["const_bytes"],
               "sqnr_db": v["comparisons"]["int8"]["sqnr_db"]}
        if v.get("labels"):
            row["accuracy"] = v["vs_labels"]["int8"]["accuracy"]
            row["float_accuracy"] = v["vs_labels"]["float"]["accuracy"]
        rows.append(row)
    return rows


def _fid(r: dict) -> str:
    if "accuracy" in r:
        return f"{r['accuracy']:.1%} (float {r['float_accuracy']:.1%})"
    return f"{r['sqnr_db']:.1f} dB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += measure(name, Path(tmp))
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    methods = list(METHODS)
    print("| model | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = {r["method"]: r for r in rows if r["model"] == name}
        b = mine["int8"]
        cells = [f"{b['macs']:,} MACs, {b['flash']:,} B, {_fid(b)}"]
        cells += [f"{r['macs'] / b['macs']:.2f}x MACs, {r['flash'] / b['flash']:.2f}x flash, "
                  f"{_fid(r)}" for r in (mine[m] for m in methods[1:])]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
