"""Host latency per inference, side by side: our compiled C vs TFLM vs LiteRT.

    python benchmarks/latency_host.py [--runs 50] [--warmup 5] [--opt -O3] [--per-op] [--json]

One process. For each MLPerf Tiny int8 fixture: `edgeforge compile` it (numerics tflm) into a
temporary DIR, build the C package with the host gcc, and time ef_model_invoke() inside C
(no Python in the loop); time TFLM's (tflite-micro) and LiteRT's interpreter.invoke() with
the same input already set, for LiteRT both its default kernels (XNNPACK / optimized) and
BUILTIN_REF (the reference kernels our numerics mirror). Reports the median of N runs per
engine in microseconds and each peer's time over ours (> 1: ours is faster). The outputs of
our C and TFLM are compared on the benchmark input as a sanity check.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "mlperf_tiny"
MODELS = ("kws_ds_cnn_int8", "ic_resnet8_int8")


def _median_us(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t)
    return float(np.median(ts)) / 1e3


def bench_model(path: Path, runs: int, warmup: int, opt: str, per_op: bool = False) -> dict:
    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.runtime.peers import LitertRunner, TflmRunner

    with tempfile.TemporaryDirectory(prefix="ef-bench-") as tmp:
        res = compile_model(path, Path(tmp) / "dir", numerics="tflm")
        m = CModel(res.dir, flags=tuple(opt.split()))
        x = np.random.default_rng(0).integers(-128, 128, size=m.input_shapes[0]).astype(np.int8)
        [ours_y] = m.run([x])
        m.time(warmup)
        ours = float(np.median(m.time(runs))) / 1e3
        arena = res.manifest.arena_bytes
        if per_op:
            mp = CModel(res.dir, flags=tuple(opt.split()), per_op=True)
            mp.run([x])
            op_us = mp.time_ops(runs) / 1e3
            per_op_rows = [{"op": r["op"], "us": float(u), "macs": int(r["macs"])}
                           for r, u in zip(res.report["ops"], op_us)]
    row = {"model": path.stem, "ours_us": ours, "arena_bytes": arena}
    if per_op:
        row["ours_per_op"] = per_op_rows
    tflm = TflmRunner(path)
    [ty] = tflm.run([x])
    row["same_bytes_as_tflm"] = bool(np.array_equal(ty, ours_y))
    row["tflm_us"] = _median_us(tflm.interp.invoke, runs, warmup)
    for key, ref in (("litert_us", False), ("litert_ref_us", True)):
        lr = LitertRunner(path, reference_kernels=ref)
        lr.run([x])
        row[key] = _median_us(lr.interp.invoke, runs, warmup)
    for key in ("tflm_us", "litert_us", "litert_ref_us"):
        row[key.replace("_us", "_over_ours")] = row[key] / ours
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--opt", default="-O3",
                    help='gcc flags for our C, e.g. -O2 or "-O3 -march=native"')
    ap.add_argument("--per-op", action="store_true", help="also time each op of ours")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [bench_model(FIXTURES / f"{m}.tflite", args.runs, args.warmup, args.opt,
                        args.per_op) for m in MODELS]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"host latency per inference, median of {args.runs} "
                    f"(ours: gcc {args.opt}; ratio = peer / ours, > 1 means ours is faster)")
    for col in ("model", "ours us", "TFLM us", "x", "LiteRT us", "x", "LiteRT REF us", "x",
                "== TFLM"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for r in rows:
        t.add_row(r["model"], f"{r['ours_us']:.0f}", f"{r['tflm_us']:.0f}",
                  f"{r['tflm_over_ours']:.2f}", f"{r['litert_us']:.0f}",
                  f"{r['litert_over_ours']:.2f}", f"{r['litert_ref_us']:.0f}",
                  f"{r['litert_ref_over_ours']:.2f}", "yes" if r["same_bytes_as_tflm"] else "NO")
    con = Console(width=max(Console().width, 110))
    con.print(t)
    for r in rows:
        if "ours_per_op" not in r:
            continue
        pt = Table(title=f"{r['model']}: ours per op (mean of {args.runs}, with timing hooks)")
        for col in ("#", "op", "us", "MACs", "MAC/ns"):
            pt.add_column(col, justify="left" if col == "op" else "right")
        for i, o in enumerate(r["ours_per_op"]):
            rate = o["macs"] / (o["us"] * 1e3) if o["us"] > 0 else 0.0
            pt.add_row(str(i), o["op"], f"{o['us']:.1f}", f"{o['macs']:,}", f"{rate:.2f}")
        con.print(pt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
