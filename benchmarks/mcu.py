"""MCU benchmark: ours and TFLite Micro, both measured in this run on QEMU mps2-an386.

    python benchmarks/mcu.py [MODEL.tflite ...] [--tflm DIR --cmsis-nn DIR --cmsis DIR
                              --flatbuffers DIR --gemmlowp DIR] [--runs 3] [--json]

MODELs default to the MLPerf Tiny fixtures (KWS, ResNet-8) and the anomaly-detection-shaped
tests/models/fc_autoencoder_int8.tflite; any int8 .tflite works (e.g. MLPerf Tiny's
vww_96_int8.tflite and ad01_int8.tflite from mlcommons/tiny). For each model:
  * ours: `edgeforge compile`, the DSP-kernel firmware, `edgeforge profile` on
    qemu://mps2-an386 (outputs checked against the host reference): instructions per inference
    (QEMU -icount shift=0: exact instruction counts, 40-instruction granularity), code size
    without weights, and RAM = arena + .data/.bss + measured peak stack;
  * the peers, with the five source checkouts given: TFLM with its reference kernels and
    TFLM + CMSIS-NN, built from those sources by benchmarks/peers/tflm.py with the same
    compiler and flags and run by the same firmware template (counter, serial protocol,
    stack paint), on the same inputs; their outputs must equal ours byte for byte;
  * ratios ours / peer (below 1 = fewer instructions / bytes than the peer), and the
    checkouts' commits;
  * with --cycles, both sides' estimated Cortex-M4 cycles per inference (targets/cycles.py:
    QEMU's execution log costed with the Cortex-M4 TRM timings) and their ratio.
Without the checkouts the peer columns come from PEER_CONSTANTS, each labelled with its
source (nothing here reproduces those), and the table says so.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

from edgeforge.manifest import Manifest
from edgeforge.targets import build as build_mod
from edgeforge.targets.profile import profile

FIXTURES = ROOT / "tests" / "fixtures" / "mlperf_tiny"
DEFAULT_MODELS = [FIXTURES / "kws_ds_cnn_int8.tflite", FIXTURES / "ic_resnet8_int8.tflite",
                  ROOT / "tests" / "models" / "fc_autoencoder_int8.tflite"]
# millions of instructions on QEMU mps2-an386, used only without source checkouts. Source:
# issue 12's table (an earlier in-house TFLM run; no build of it is in this repo).
PEER_CONSTANTS = {
    "kws_ds_cnn_int8": {"tflm_ref": 43.1, "tflm_cmsis_nn": 7.70},
    "ic_resnet8_int8": {"tflm_ref": 107.5, "tflm_cmsis_nn": 29.86},
    "vww_96_int8": {"tflm_cmsis_nn": 24.10},
    "ad01_int8": {"tflm_cmsis_nn": 0.583},
}
CONSTANT_SOURCE = "issue 12 table (constant; not rebuilt here)"


def compile_model(src: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", str(src), "-o", str(out)],
                       capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        raise SystemExit(f"compile {src.name} failed:\n{r.stderr[-2000:]}")
    return out


def measure_ours(directory: Path, x: np.ndarray, runs: int, cycles: bool = False
                 ) -> dict[str, Any]:
    b = build_mod.build(directory, "mps2-an386", kernels="dsp")
    r = profile(directory, "qemu://mps2-an386", runs=runs, warmup=1, inputs=x,
                keep_outputs=True, kernels="dsp", cycles=cycles)
    return {"instructions": r["instructions"]["p50"],
            "outputs_match_reference": r["outputs_match_reference"],
            "code_bytes": b["sizes"]["code"], "ram": r.get("ram"), "outputs": r["outputs"],
            **({"cycles": r["cycles"]["cycles"]} if cycles else {})}


def measure_peer(model: Path, directory: Path, x: np.ndarray, runs: int, src: Any,
                 kernels: str, out: Path, cycles: bool = False) -> dict[str, Any]:
    import tflm
    b = tflm.build(model, directory, src, kernels, out)
    res = tflm.measure(Path(b["elf"]), directory, list(x), runs)
    if cycles:      # TFLM's per-op events are compiled out: the glue's invoke is the region
        from edgeforge.targets.cycles import estimate
        res["cycles"] = estimate(directory, x[0], elf=b["elf"],
                                 region=("ef_peer_invoke", "ef_counter_now"))["cycles"]
    s = b["sizes"]
    data_bss = s["data"] + s["bss"]
    ram = {"arena": res["arena"], "data_bss": data_bss, "stack_peak": res["stack_peak"],
           "total": res["arena"] + data_bss + (res["stack_peak"] or 0)}
    return {"instructions": res["instructions"], "code_bytes": s["code"], "ram": ram,
            "per_op": res["per_op"], "outputs": res["outputs"], "commits": b["commits"],
            **({"cycles": res["cycles"]} if cycles else {})}


def _without_offline_plan(data: bytes) -> bytes:
    """The same flatbuffer with its OfflineMemoryAllocation entry renamed (same length, so
    every other byte and alignment stays): TFLM then plans every tensor itself."""
    from edgeforge.codegen.tflite import OFFLINE_METADATA
    name = OFFLINE_METADATA.encode()
    if data.count(name) != 1:
        raise SystemExit(f"model.tflite holds {data.count(name)} {OFFLINE_METADATA} entries")
    return data.replace(name, name[:-1] + b"_")


def tflm_offline_arena(directory: Path, x: np.ndarray, runs: int, src: Any, out: Path
                       ) -> dict[str, Any]:
    """TFLM + CMSIS-NN on our DIR/model.tflite, on QEMU: the arena it needs with the
    OfflineMemoryAllocation plan `edgeforge compile` writes, and without it (TFLM's own
    planner); their outputs must be equal."""
    import tflm
    data = (directory / "model.tflite").read_bytes()
    res: dict[str, Any] = {}
    outs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, blob in (("with", data), ("without", _without_offline_plan(data))):
            path = Path(tmp) / f"{directory.name}_{key}_offline_plan.tflite"
            path.write_bytes(blob)
            b = tflm.build(path, directory, src, "cmsis_nn", out)
            m = tflm.measure(Path(b["elf"]), directory, list(x), runs)
            res[key], outs[key] = m["arena"], m["outputs"]
    res["outputs_equal"] = all(a.tobytes() == b.tobytes()
                               for oa, ob in zip(outs["with"], outs["without"])
                               for a, b in zip(oa, ob))
    return res


def run(models: list[Path], runs: int, src: Any, build_dir: Path, cycles: bool = False
        ) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            d = compile_model(model, Path(tmp) / model.stem)
            shape = Manifest.load(d).inputs[0].shape
            x = np.random.default_rng(0).integers(-128, 128, (2, *shape)).astype(np.int8)
            ours = measure_ours(d, x, runs, cycles)
            row: dict[str, Any] = {"model": model.stem, "ours": ours, "peers": {}}
            if src is not None:
                for k in ("ref", "cmsis_nn"):
                    p = measure_peer(model, d, x, runs, src, k, build_dir, cycles)
                    p["outputs_equal_ours"] = all(
                        a.tobytes() == b.tobytes() for oa, ob in zip(p["outputs"],
                                                                     ours["outputs"])
                        for a, b in zip(oa, ob))
                    p.pop("outputs")
                    p["source"] = "built from source in this run"
                    row["peers"][f"tflm_{k}"] = p
                row["tflm_offline_plan_arena"] = tflm_offline_arena(d, x, runs, src, build_dir)
            else:
                for k, v in PEER_CONSTANTS.get(model.stem, {}).items():
                    row["peers"][k] = {"instructions": v * 1e6, "source": CONSTANT_SOURCE}
            ours.pop("outputs")
            for k, p in row["peers"].items():
                row[f"vs_{k}"] = round(ours["instructions"] / p["instructions"], 3)
                if p.get("cycles") and ours.get("cycles"):
                    row[f"cycles_vs_{k}"] = round(ours["cycles"] / p["cycles"], 3)
                if p.get("ram") and ours.get("ram"):
                    row[f"ram_vs_{k}"] = round(ours["ram"]["total"] / p["ram"]["total"], 3)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    for name in ("tflm", "cmsis-nn", "cmsis", "flatbuffers", "gemmlowp"):
        ap.add_argument(f"--{name}", type=Path, help="source checkout (all five, or none)")
    ap.add_argument("--build-dir", type=Path,
                    default=Path.home() / ".cache" / "edgeforge" / "peers")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cycles", action="store_true",
                    help="also estimate Cortex-M4 cycles on both sides (QEMU execution log)")
    a = ap.parse_args(argv)
    given = [a.tflm, a.cmsis_nn, a.cmsis, a.flatbuffers, a.gemmlowp]
    if any(given) and not all(given):
        ap.error("give all five checkouts (--tflm --cmsis-nn --cmsis --flatbuffers --gemmlowp)"
                 " or none")
    src = None
    if all(given):
        import tflm
        src = tflm.Sources(*given)
    rows = run(a.models or DEFAULT_MODELS, a.runs, src, a.build_dir, a.cycles)
    if a.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="instructions per inference and RAM, QEMU mps2-an386 (Cortex-M4, icount)")
    for c in ("model", "ours (M)", "TFLM ref (M)", "CMSIS-NN (M)", "/CMSIS-NN", "code ours/peer",
              "RAM ours/peer (B)", "exact"):
        t.add_column(c, justify="left" if c == "model" else "right")
    for r in rows:
        o, p = r["ours"], r["peers"]
        ref, nn = p.get("tflm_ref", {}), p.get("tflm_cmsis_nn", {})
        fmt = lambda v: f"{v / 1e6:.3f}" if v else "-"
        t.add_row(r["model"], fmt(o["instructions"]), fmt(ref.get("instructions")),
                  fmt(nn.get("instructions")), f"{r.get('vs_tflm_cmsis_nn', float('nan')):.2f}",
                  f"{o['code_bytes']:,} / {nn['code_bytes']:,}" if "code_bytes" in nn else "-",
                  f"{o['ram']['total']:,} / {nn['ram']['total']:,}" if nn.get("ram") else "-",
                  "yes" if o["outputs_match_reference"] and nn.get("outputs_equal_ours", True)
                  else "NO")
    Console().print(t)
    for r in rows:
        if "tflm_offline_plan_arena" in r:
            a = r["tflm_offline_plan_arena"]
            print(f"{r['model']}: TFLM + CMSIS-NN arena for our model.tflite {a['with']:,} B "
                  f"with its OfflineMemoryAllocation plan, {a['without']:,} B without "
                  f"(outputs {'equal' if a['outputs_equal'] else 'DIFFER'})")
    for r in rows:
        if "cycles" in r["ours"]:
            peer = {k: p["cycles"] for k, p in r["peers"].items() if p.get("cycles")}
            print(f"{r['model']}: estimated Cortex-M4 cycles ours {r['ours']['cycles'] / 1e6:.3f} M"
                  + "".join(f", {k} {v / 1e6:.3f} M ({r['cycles_vs_' + k]:.2f}x)"
                            for k, v in peer.items()))
    srcs = {p.get("source") for r in rows for p in r["peers"].values()}
    print("peer numbers: " + "; ".join(sorted(s for s in srcs if s)))
    commits = next((p["commits"] for r in rows for p in r["peers"].values() if "commits" in p),
                   None)
    if commits:
        print("checkouts: " + ", ".join(f"{k} {v[:12]}" for k, v in commits.items()))
    print("RAM = arena + .data/.bss + measured peak stack; code = firmware code without weights;"
          " exact = our outputs equal the host reference and TFLM's firmware byte for byte.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
