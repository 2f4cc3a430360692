"""Arena benchmark: our planned RAM against TFLM's, side by side, per model.

    python benchmarks/arena.py [MODEL.tflite ...] [--json] [--cpu cortex-m4] [--render]

For each model (default: the MLPerf Tiny int8 fixtures) one run reports
  * ours: arena bytes (edgeforge.plan.memory.plan_graph with the in-place kernel variants, as
    `edgeforge compile` plans), the same with the lag rules only (no kernel variants), with
    no overlap at all, and the tensor-level lower bound (max live bytes, no sharing; also
    with the kernels' working sets, which live in the arena);
  * our total mutable RAM: .data + .bss of the generated C (model.c, weights.c and the
    kernels it uses) compiled for the MCU with arm-none-eabi-gcc and measured with
    arm-none-eabi-size; the static arena is part of model.c's .bss;
  * TFLM: arena head / tail / total measured live (runtime.peers.tflm_arena_bytes);
  * ratios: our RAM / TFLM total, our arena / lower bound.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeforge.frontends import load
from edgeforge.plan.memory import lower_bound, plan_graph
from edgeforge.runtime.peers import tflm_arena_bytes

ROOT = Path(__file__).resolve().parents[1]

FIXTURES = ROOT / "tests" / "fixtures" / "mlperf_tiny"
DEFAULT = ["kws_ds_cnn_int8.tflite", "ic_resnet8_int8.tflite"]


def mcu_ram(graph, plan, cpu: str) -> dict[str, int] | None:
    """.text/.data/.bss of the generated C for `cpu`; None if the toolchain is missing."""
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("arm-none-eabi-size")):
        return None
    from edgeforge.codegen.c import emit_c
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "c"
        emit_c(graph, plan, pkg)
        objs = []
        for src in sorted(pkg.glob("*.c")):
            obj = src.with_suffix(".o")
            subprocess.run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-std=c99", "-O2",
                            "-ffunction-sections", "-fdata-sections", "-I", str(pkg), "-c",
                            str(src), "-o", str(obj)], check=True, capture_output=True,
                           timeout=180)
            objs.append(str(obj))
        out = subprocess.run(["arm-none-eabi-size", "-t", *objs], check=True,
                             capture_output=True, text=True, timeout=60).stdout
    text, data, bss = (int(v) for v in out.strip().splitlines()[-1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def measure(path: Path, cpu: str) -> dict:
    g = load(path)
    plan = plan_graph(g, inplace_kernels=True)      # what `edgeforge compile` plans
    plain = plan_graph(g, allow_inplace=False)
    lag = plan_graph(g)
    tflm = tflm_arena_bytes(path)
    sizes = mcu_ram(plan.schedule(g), plan, cpu)
    row = {
        "model": path.name,
        "arena": plan.arena_size,
        "arena_no_overlap": plain.arena_size,
        "arena_lag_only": lag.arena_size,
        "lower_bound": plan.lower_bound,
        # the same bound with the kernels' working sets (one-step arena buffers) counted
        "lower_bound_ws": lower_bound(plain.arena.reqs),
        "tflm_head": tflm["head"],
        "tflm_tail": tflm["tail"],
        "tflm_total": tflm["total"],
        "overlaps_used": sorted({s.rule for s in plan.shares if s.used}),
    }
    if sizes:
        row.update(code_text=sizes["text"], data=sizes["data"], bss=sizes["bss"],
                   ram_total=sizes["data"] + sizes["bss"])
        row["ram_vs_tflm"] = round(row["ram_total"] / tflm["total"], 4)
    row["arena_vs_lower_bound"] = round(plan.arena_size / plan.lower_bound, 4)
    row["arena_vs_tflm_head"] = round(plan.arena_size / tflm["head"], 4)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="int8 .tflite files (default: MLPerf fixtures)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cpu", default="cortex-m4")
    ap.add_argument("--render", action="store_true", help="print each plan's ASCII timeline")
    a = ap.parse_args(argv)
    paths = [Path(m) for m in a.models] or [FIXTURES / m for m in DEFAULT]
    if a.render:
        for p in paths:
            print(f"== {p.name}")
            print(plan_graph(load(p), inplace_kernels=True).arena.render())
    rows = [measure(p, a.cpu) for p in paths]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = [("model", 24), ("arena", 7), ("arena_no_overlap", 9),
            ("arena_lag_only", 9), ("lower_bound", 9),
            ("ram_total", 9), ("data", 6), ("bss", 7), ("tflm_head", 9), ("tflm_tail", 9),
            ("tflm_total", 10), ("ram_vs_tflm", 9), ("arena_vs_lower_bound", 9)]
    heads = ["model", "arena", "no-ovl", "lag-only", "lowbound", "RAM", ".data", ".bss", "TFLM hd",
             "TFLM tl", "TFLM tot", "RAM/TFLM", "arena/LB"]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, (_, w)) in
                    enumerate(zip(heads, cols))))
    for r in rows:
        print("  ".join(str(r.get(k, "-")).rjust(w) if i else str(r[k]).ljust(w)
                        for i, (k, w) in enumerate(cols)))
    print("bytes; RAM = .data + .bss of the generated C (arena included) for", a.cpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
