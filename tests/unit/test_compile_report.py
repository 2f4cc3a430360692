"""A float model's compile report carries the per-layer SQNR the user reads to find the layer
that hurts; an int8 model's report has none (there is no float to compare against)."""
from __future__ import annotations

import json
import math

from edgeforge.compiler import compile_model
from tests.conftest import ROOT, fixture

DIGITS = ROOT / "examples" / "digits"


def test_float_compile_reports_sqnr_per_layer(tmp_path):
    res = compile_model(DIGITS / "digits.onnx", tmp_path / "d", calib=DIGITS / "calib.npz")
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert len(report["sqnr"]) == len(report["ops"]) == len(res.manifest.ops)
    convs = [r for r in report["ops"] if r["op"] in ("CONV2D", "DWCONV2D")]
    assert convs and all(math.isfinite(r["sqnr_db"]) and r["sqnr_db"] > 20 for r in convs)
    # the int8 network's final output tracks float closely on calibration data
    assert report["ops"][-1]["sqnr_db"] > 20


def test_int8_compile_has_no_sqnr(tmp_path):
    compile_model(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "k")
    report = json.loads((tmp_path / "k" / "report.json").read_text())
    assert "sqnr" not in report and all("sqnr_db" not in r for r in report["ops"])
