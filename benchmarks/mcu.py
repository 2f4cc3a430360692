"""MCU benchmark: instructions per inference on QEMU mps2-an386 beside the peers.

    python benchmarks/mcu.py [--kernels dsp|ref|both] [--runs 3] [--json]

For each MLPerf Tiny int8 fixture: `edgeforge compile`, `edgeforge build --board mps2-an386`
(with the DSP kernels, the reference kernels, or both), then `edgeforge profile` on
qemu://mps2-an386 (outputs checked against the host reference). Reported:
  * instructions per inference (QEMU -icount shift=0: exact instruction counts, 40-instruction
    granularity) and the firmware's code size without weights;
  * peer numbers measured on this very emulated board with the same method: TFLM with its
    reference kernels and TFLM + CMSIS-NN; and Plumerai's published cycles on a real
    Cortex-M4 (cycles, not instructions: a cycle count is >= the instruction count, so the
    ratio against it is indicative only);
  * ratios ours / peer (below 1 = fewer instructions than the peer).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeforge.targets import build as build_mod
from edgeforge.targets.profile import profile

FIXTURES = ROOT / "tests" / "fixtures" / "mlperf_tiny"
MODELS = {"kws": "kws_ds_cnn_int8.tflite", "resnet8": "ic_resnet8_int8.tflite"}
# millions of instructions (QEMU mps2-an386, measured here) / cycles (Plumerai, real M4)
PEERS = {
    "kws": {"tflm_ref_Minstr": 43.1, "tflm_cmsis_nn_Minstr": 7.70, "plumerai_m4_Mcycles": 5.7},
    "resnet8": {"tflm_ref_Minstr": 107.5, "tflm_cmsis_nn_Minstr": 29.86,
                "plumerai_m4_Mcycles": 20.1},
}


def compile_model(src: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", str(src), "-o", str(out)],
                       capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        raise SystemExit(f"compile {src.name} failed:\n{r.stderr[-2000:]}")
    return out


def measure(directory: Path, kernels: str, runs: int) -> dict:
    """Build with `kernels` (dsp|ref) and profile; returns instructions + code size."""
    b = build_mod.build(directory, "mps2-an386", kernels=kernels)
    r = profile(directory, "qemu://mps2-an386", runs=runs, warmup=1, kernels=kernels)
    # the median of `runs` inferences (QEMU icount: runs differ by a few SysTick ticks)
    return {"kernels": kernels, "instructions": r["instructions"]["p50"],
            "outputs_match_reference": r["outputs_match_reference"],
            "code_bytes": b["sizes"]["code"], "weights_bytes": b["sizes"]["weights"],
            "arena_bytes": b["sizes"]["arena"],
            "per_op": [{"op": p["op"], "instructions": p["instructions"]} for p in r["per_op"]]}


def run(kernels: list[str], runs: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, file in MODELS.items():
            d = compile_model(FIXTURES / file, Path(tmp) / name)
            for k in kernels:
                m = measure(d, k, runs)
                mi = m["instructions"] / 1e6
                p = PEERS[name]
                rows.append({"model": name, **m, "Minstr": round(mi, 3), **p,
                             "vs_tflm_ref": round(mi / p["tflm_ref_Minstr"], 3),
                             "vs_tflm_cmsis_nn": round(mi / p["tflm_cmsis_nn_Minstr"], 3),
                             "vs_plumerai_cycles": round(mi / p["plumerai_m4_Mcycles"], 3)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", choices=["dsp", "ref", "both"], default="both")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = run(["dsp", "ref"] if a.kernels == "both" else [a.kernels], a.runs)
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="instructions per inference, QEMU mps2-an386 (Cortex-M4, icount)")
    for c in ("model", "kernels", "ours (M)", "/TFLM ref", "/CMSIS-NN", "/Plumerai", "code (B)",
              "exact"):
        t.add_column(c, justify="left" if c in ("model", "kernels") else "right")
    for r in rows:
        t.add_row(r["model"], r["kernels"], f"{r['Minstr']:.2f}", f"{r['vs_tflm_ref']:.2f}",
                  f"{r['vs_tflm_cmsis_nn']:.2f}", f"{r['vs_plumerai_cycles']:.2f}",
                  f"{r['code_bytes']:,}", "yes" if r["outputs_match_reference"] else "NO")
    Console().print(t)
    for name, p in PEERS.items():
        print(f"{name}: TFLM ref {p['tflm_ref_Minstr']} M instr, TFLM + CMSIS-NN "
              f"{p['tflm_cmsis_nn_Minstr']} M instr (this board), Plumerai {p['plumerai_m4_Mcycles']}"
              " M cycles (real M4)")
    print("/peer = ours / peer (below 1: fewer); Plumerai is cycles, ours instructions (a cycle "
          "count is >= the instruction count). code = firmware code without weights; exact = "
          "outputs byte-equal to the host reference.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
