"""Compile every zoo model (tests/zoo/models) with its calibration set and record what it
costs: int8 ops, MACs, compile time, output SQNR vs float, arena, weights; or the one-line
error of a model that does not compile yet. Writes the measured columns into
models/manifest.json and the table into tests/zoo/README.md.

    python3 -m tests.zoo.measure_zoo            # ~30 s on 2 cores
"""
from __future__ import annotations

import json
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeforge.compiler import CompileResult, compile_model
from edgeforge.errors import EdgeforgeError

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"


def measure_compile(src: Path, out: Path, *, sqnr: bool = False,
                    **kw: Any) -> tuple[CompileResult | None, dict]:
    """compile_model(src, out, **kw) and its manifest columns (keys in manifest.json order;
    `sqnr`: the output SQNR vs float too), or (None, the error's one line)."""
    t = time.perf_counter()
    try:
        res = compile_model(src, out, **kw)
    except EdgeforgeError as e:
        lines = str(e).splitlines()
        return None, {"compiles": False,
                      "error": (lines[1].strip() if len(lines) > 1 else lines[0])}
    seconds = time.perf_counter() - t
    m = res.manifest
    ops = Counter(m.ops)
    row = {"compiles": True, "compile_s": round(seconds, 2),
           "macs": int(res.report["totals"]["macs"])}
    if sqnr:
        row["sqnr_db"] = round(float(res.report["sqnr"][-1]["sqnr_db"]), 1)
    return res, row | {"arena_bytes": int(m.arena_bytes), "weight_bytes": int(m.weight_bytes),
                       "int8_ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))}


def measure(name: str, out: Path, numerics: str = "tflm") -> dict:
    return measure_compile(MODELS / f"{name}.onnx", out / name, sqnr=True,
                           calib=MODELS / f"{name}_calib.npz", numerics=numerics)[1]


def _ops(row: dict) -> str:
    return ", ".join(f"{op} {n}" for op, n in row["int8_ops"].items())


def md_table(head: str, rows: list[dict], lead: Callable[[dict], list[str]],
             cells: Callable[[dict], list[str]]) -> str:
    """`head` (header and rule lines), then a line a row: its `lead` cells, then its measured
    `cells` or one "does not compile" cell padded to as many."""
    n = head.splitlines()[0].count("|") - 1 - len(lead(rows[0]))
    lines = [head]
    for r in rows:
        if r["compiles"]:
            lines.append("| " + " | ".join(lead(r) + cells(r)) + " |")
        else:
            lines.append("| " + " | ".join(lead(r) + [f"does not compile: `{r['error']}`"])
                         + " |" + " |" * (n - 1))
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> str:
    return md_table(
        "| model | family | input | int8 ops | MACs | compile | SQNR | arena |\n"
        "|---|---|---|---|---:|---:|---:|---:|", rows,
        lambda r: [r["model"], r["family"], "x".join(str(d) for d in r["input_shape"][1:])],
        lambda r: [_ops(r), f"{r['macs']:,}", f"{r['compile_s']:.1f} s",
                   f"{r['sqnr_db']:.1f} dB", f"{r['arena_bytes']:,} B"])


def main() -> None:
    rows = json.loads((MODELS / "manifest.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows:
            for k in ("compiles", "error", "compile_s", "macs", "sqnr_db", "arena_bytes",
                      "weight_bytes", "int8_ops"):
                r.pop(k, None)
            r.update(measure(r["model"], Path(tmp)))
            print(f"{r['model']:24s} " + (f"{r['compile_s']:5.1f} s {r['sqnr_db']:5.1f} dB"
                                          if r["compiles"] else r["error"]), flush=True)
    (MODELS / "manifest.json").write_text(json.dumps(rows, indent=1) + "\n")
    ok = sum(r["compiles"] for r in rows)
    intro = textwrap.fill(
        f"{len(rows)} architectures users deploy, built in PyTorch with seeded random weights "
        "and exported by `torch.onnx.export` (`tests/zoo/export_zoo.py`; the tests need no "
        "PyTorch). `tests/zoo/test_zoo.py` runs each through import (vs onnxruntime), compile "
        "with its calibration set under both numerics profiles (int8 bytes vs TFLM and LiteRT) "
        "and the generated C (vs the reference). The models that do not compile yet are its "
        "`EXPECTED_FAIL` list.", 96)
    how = textwrap.fill(
        f"{ok} of {len(rows)} compile. Measured by `python3 -m tests.zoo.measure_zoo` "
        "(--numerics tflm, on a 2-core host shared with other jobs, so times are upper bounds; "
        "SQNR of the int8 output vs float on the calibration "
        "samples, random inputs and weights):", 96)
    readme = HERE / "README.md"
    _, keras, tail = readme.read_text().partition("\n## Keras zoo\n")   # measure_keras_zoo's
    readme.write_text(f"# Model zoo\n\n{intro}\n\n{how}\n\n" + table(rows) + keras + tail)


if __name__ == "__main__":
    main()
