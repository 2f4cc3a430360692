"""Compressed weights on the emulated Cortex-M4 (QEMU mps2-an386, DSP kernels): instructions
and flash of each compressed form against the same model or layer dense, measured in one run.

    python benchmarks/sparse_mcu.py [--json] [--cluster-models M.tflite ...]

Rows:
  block-sparse: a 512 -> 256 FC and a 4x4x256 -> 256 1x1 conv (and 8x8x128 / 8x8x64 ones)
      with 75% of their 4x4 weight blocks zero (ef_fc_bsr_s8) vs the same layer with every
      block kept (the dense DSP kernels);
  clustered: each model compiled plain and with --cluster 16 / 4 (packed weights unpacked on
      the device: ef_fc_packed_lut_s8 for FC layers, ef_unpack_s8 into the arena otherwise).
Instructions are QEMU's count for one inference (p50 of 2 runs); flash is the firmware's;
every run checks the device's outputs against the host reference.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))       # tests.opcases builds the synthetic layers

LAYERS = {"FC 512 -> 256": ((1, 512), 256), "1x1 conv 4x4x256 -> 256": ((1, 4, 4, 256), 256),
          "1x1 conv 8x8x128 -> 128": ((1, 8, 8, 128), 128),
          "1x1 conv 8x8x64 -> 64": ((1, 8, 8, 64), 64)}
URI = "qemu://mps2-an386"


def _run(directory: Path, x: np.ndarray) -> dict:
    from edgeforge.api import build
    from edgeforge.targets.profile import profile
    rep = profile(directory, URI, runs=2, warmup=0, inputs=x, kernels="dsp")
    if rep["outputs_match_reference"] is not True:
        raise SystemExit(f"{directory}: device outputs differ from the reference")
    flash = build(directory, "mps2-an386", kernels="dsp")["sizes"]["flash"]
    return {"instructions": rep["instructions"]["p50"], "flash": flash}


def block_sparse_rows(work: Path) -> list[dict]:
    from edgeforge.compiler import compile_model
    from tests.c.test_fc_block_sparse import sparse_case
    from tests.opcases import write_case
    rows = []
    for name, (shape, cout) in LAYERS.items():
        x = np.random.default_rng(0).integers(-128, 128, (2, *shape)).astype(np.int8)
        got = {}
        for keep in (1.0, 0.25):
            case = sparse_case(f"bsr_{len(rows)}_{int(keep * 100)}", shape, cout, keep, 7)
            res = compile_model(write_case(case, work), work / case.name)
            got[keep] = _run(res.dir, x) | {"kernels": res.report["c"]["kernels"]}
        rows.append({"layer": name, "dense": got[1.0], "sparse": got[0.25]})
    return rows


def cluster_rows(models: list[Path], work: Path) -> list[dict]:
    from edgeforge.compiler import compile_model
    rows = []
    for m in models:
        row = {"model": m.name}
        for k in (0, 16, 4):
            res = compile_model(m, work / f"{m.stem}_{k}", cluster=k or None)
            shape = res.manifest.inputs[0].shape
            x = np.random.default_rng(1).integers(-128, 128, (1, *shape)).astype(np.int8)
            row[k or "int8"] = _run(res.dir, x) | {
                "const_bytes": res.report["c"]["const_bytes"]}
        rows.append(row)
    return rows


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster-models", nargs="*", type=Path,
                    default=[ROOT / "tests/fixtures/mlperf_tiny/kws_ds_cnn_int8.tflite"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {"block_sparse": block_sparse_rows(Path(tmp)),
               "cluster": cluster_rows(args.cluster_models, Path(tmp))}
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print("| layer, 25% of 4x4 blocks kept | instructions dense | block-sparse | flash dense |"
          " block-sparse |\n|---|---|---|---|---|")
    for r in out["block_sparse"]:
        d, s = r["dense"], r["sparse"]
        print(f"| {r['layer']} | {d['instructions']:,.0f} | {s['instructions']:,.0f} "
              f"({_ratio(s['instructions'], d['instructions'])}) | {d['flash']:,} | "
              f"{s['flash']:,} ({_ratio(s['flash'], d['flash'])}) |")
    print("\n| model | int8 instructions | --cluster 16 | --cluster 4 | int8 flash |"
          " --cluster 16 | --cluster 4 |\n|---|---|---|---|---|---|---|")
    for r in out["cluster"]:
        d = r["int8"]
        cells = [f"{r[k]['instructions']:,.0f} ({_ratio(r[k]['instructions'], d['instructions'])})"
                 for k in (16, 4)]
        flash = [f"{r[k]['flash']:,} ({_ratio(r[k]['flash'], d['flash'])})" for k in (16, 4)]
        print(f"| {r['model']} | {d['instructions']:,.0f} | {' | '.join(cells)} | "
              f"{d['flash']:,} | {' | '.join(flash)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
