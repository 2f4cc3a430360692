"""Calibration data (issue 14, frictions): --calib file.npz:key, and the warnings compile gives
on too few samples, data scaled unlike training, and layers under the SQNR floor."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeforge.compiler import compile_model
from edgeforge.errors import QuantizeError
from edgeforge.frontends import load
from edgeforge.quantize.calibrate import load_calib
from edgeforge.quantize.checks import calibration_warnings, check_calibration
from tests.conftest import ROOT

DIGITS = ROOT / "examples" / "digits"
CALIB = np.load(DIGITS / "calib.npz")["input"]


def test_calib_file_colon_key_picks_the_array(tmp_path):
    np.savez(tmp_path / "d.npz", images=CALIB[:40], labels=np.arange(40))
    g = load(DIGITS / "digits.onnx")
    [x] = load_calib(f"{tmp_path / 'd.npz'}:images", g)
    assert x.shape == (40, 8, 8, 1) and np.array_equal(x, CALIB[:40])
    with pytest.raises(QuantizeError, match=r"has no array 'imgs' \(it has \['images', "):
        load_calib(f"{tmp_path / 'd.npz'}:imgs", g)
    with pytest.raises(QuantizeError, match="names 2 array"):
        load_calib(f"{tmp_path / 'd.npz'}:images,labels", g)


@pytest.mark.parametrize("scale, want", [(1, None), (255, "larger"), (1 / 255, "smaller")])
def test_scale_unlike_training_is_warned(scale, want):
    g = load(DIGITS / "digits.onnx")
    warn = calibration_warnings(g, CALIB * scale)
    if want is None:
        assert warn == []
    else:
        assert len(warn) == 1 and f"looks {want} than the data the model was trained" in warn[0]


def test_few_samples_and_low_sqnr_are_warned():
    g = load(DIGITS / "digits.onnx")
    [w] = calibration_warnings(g, CALIB[:3])
    assert w.startswith("calibration has 3 samples")
    softmax_in = next(n.inputs[0] for n in g.nodes if n.op.value == "SOFTMAX")
    rows = [{"index": 4, "op": "FC", "name": "fc", "tensor": softmax_in, "sqnr_db": 5.6},
            {"index": 2, "op": "CONV2D", "name": "pw", "tensor": "pw_out", "sqnr_db": 5.8},
            {"index": 3, "op": "CONV2D", "name": "c3", "tensor": "c3_out", "sqnr_db": 30.0}]
    [w] = check_calibration(g, [CALIB], rows)       # logits into softmax are clipped on purpose
    assert "layer 2 CONV2D 'pw': int8 output at 5.8 dB SQNR" in w


def test_compile_prints_the_warnings_and_keeps_them_in_the_report(tmp_path):
    np.savez(tmp_path / "raw.npz", input=CALIB[:4] * 255)
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", str(DIGITS / "digits.onnx"),
                        "--calib", str(tmp_path / "raw.npz"), "-o", str(tmp_path / "d"), "--json"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == 2 and "4 samples" in lines[0] and "looks larger" in lines[1]
    rep = json.loads((tmp_path / "d" / "report.json").read_text())
    assert len(rep["calibration_warnings"]) == 2
    good = compile_model(DIGITS / "digits.onnx", tmp_path / "g", calib=DIGITS / "calib.npz")
    assert good.report["calibration_warnings"] == []
