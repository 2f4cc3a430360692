"""Compile every Keras zoo model (tests/zoo/keras) and record what it costs -- int8 ops,
MACs, compile time, arena, weights -- and whether our int8 reference gives the bytes TFLM and
LiteRT give on the written model.tflite (3 inputs each). Writes the measured columns into
keras/manifest.json and the "Keras zoo" section of tests/zoo/README.md.

    python3 -m tests.zoo.measure_keras_zoo        # ~1 min on 2 cores
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from edgeforge.compiler import compile_model
from tests.zoo.measure_zoo import _ops, md_table, measure_compile

HERE = Path(__file__).resolve().parent
KERAS = HERE / "keras"
SECTION = "\n## Keras zoo\n"
TFLM_LACKS = {"GELU", "EXP", "SQRT"}


def _equal(res, numerics: str) -> bool | None:
    from edgeforge.frontends import load
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    tfl = res.dir / "model.tflite"
    if numerics == "tflm" and TFLM_LACKS & set(res.manifest.ops):
        return None
    peer = peers.TflmRunner(tfl) if numerics == "tflm" else peers.LitertRunner(tfl)
    g, rng = load(tfl), np.random.default_rng(0)
    for _ in range(3):
        xs = [rng.integers(-128, 128, s.shape).astype(np.int8) for s in res.manifest.inputs]
        ours, theirs = run(g, xs, numerics=numerics), peer.run(xs)
        if not all(np.array_equal(ours[o], t) for o, t in zip(g.outputs, theirs)):
            return False
    return True


def measure(name: str, out: Path) -> dict:
    res, row = measure_compile(KERAS / f"{name}.tflite", out / name, numerics="tflm")
    if res is None:
        return row
    lit = compile_model(KERAS / f"{name}.tflite", out / f"{name}_litert", numerics="litert")
    return row | {"equal_tflm": _equal(res, "tflm"), "equal_litert": _equal(lit, "litert")}


def _yes(v: bool | None) -> str:
    return {True: "yes", False: "NO", None: "no kernel"}[v]


def table(rows: list[dict]) -> str:
    return md_table(
        "| model | family | input | io | int8 ops | MACs | compile | arena | = TFLM | = LiteRT |\n"
        "|---|---|---|---|---|---:|---:|---:|---|---|", rows,
        lambda r: [r["model"], r["family"],
                   ", ".join("x".join(str(d) for d in s[1:]) for s in r["input_shapes"]),
                   r["io"]],
        lambda r: [_ops(r), f"{r['macs']:,}", f"{r['compile_s']:.1f} s",
                   f"{r['arena_bytes']:,} B", _yes(r["equal_tflm"]), _yes(r["equal_litert"])])


def main() -> None:
    rows = json.loads((KERAS / "manifest.json").read_text())
    keys = ("compiles", "error", "compile_s", "macs", "arena_bytes", "weight_bytes",
            "int8_ops", "equal_tflm", "equal_litert")
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows:
            for k in keys:
                r.pop(k, None)
            r.update(measure(r["model"], Path(tmp)))
            print(f"{r['model']:24s} " + (f"{r['compile_s']:5.1f} s" if r["compiles"]
                                          else r["error"]), flush=True)
    (KERAS / "manifest.json").write_text(json.dumps(rows, indent=1) + "\n")
    ok = sum(r["compiles"] for r in rows)
    text = (f"{len(rows)} int8 .tflite models as Keras users make them: built in Keras with "
            "seeded random weights and quantized by the TFLite converter (representative "
            "dataset, full integer; `tests/zoo/export_keras_zoo.py`, run with TensorFlow as a "
            "development tool -- the tests need no TensorFlow). `tests/zoo/test_keras_zoo.py` "
            "compiles each under both numerics profiles and compares our int8 bytes with TFLM "
            "and LiteRT on the written model.tflite and on the converter's original file, "
            "then the generated C and the firmware on QEMU mps2-an386 (slow tests).\n\n"
            f"{ok} of {len(rows)} compile. Measured by `python3 -m tests.zoo.measure_keras_zoo`"
            " (--numerics tflm; compile time on a shared 2-core host, an upper bound; = TFLM / "
            "= LiteRT: our reference's bytes equal the runtime's on the written model.tflite, "
            "3 random int8 inputs, 'no kernel' where TFLM has no int8 kernel for an op):\n\n")
    readme = HERE / "README.md"
    old = readme.read_text()
    head = old.split(SECTION)[0].rstrip("\n") + "\n"
    readme.write_text(head + SECTION + "\n" + text + table(rows))


if __name__ == "__main__":
    main()
