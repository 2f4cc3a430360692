"""`edgeforge validate` (issue 14.2): float vs int8 on the host and int8 on QEMU, on the digits
example (a float ONNX model with 450 labelled test images)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeforge.compiler import compile_model
from edgeforge.errors import EdgeforgeError
from edgeforge.validation import metrics, validate
from tests.conftest import ROOT, require

DIGITS = ROOT / "examples" / "digits"
N = 60


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    res = compile_model(DIGITS / "digits.onnx", root / "digits", calib=DIGITS / "calib.npz")
    d = np.load(DIGITS / "test.npz")
    np.savez(root / "test.npz", x=d["x"][:N], y=d["y"][:N])
    return {"dir": res.dir, "data": root / "test.npz", "x": d["x"][:N], "y": d["y"][:N]}


def test_host_float_vs_int8_with_labels(digits):
    r = validate(digits["dir"], digits["data"])
    assert r["float_model"].endswith("digits.onnx") and r["task"] == "classifier"
    c = r["comparisons"]["int8"]
    assert c["vs"] == "float" and c["sqnr_db"] > 25 and c["cosine"] > 0.999
    assert 0.95 <= c["top1_agreement"] <= 1.0
    acc = r["vs_labels"]
    assert set(acc) == {"float", "int8"}
    for v in acc.values():
        m = np.array(v["confusion"])
        assert m.shape == (10, 10) and m.sum() == N
        assert v["accuracy"] == pytest.approx(np.trace(m) / N)
    # the listed disagreements are exactly the samples some run gets wrong or that differ
    wrong = {row["sample"] for row in r["disagreements"]}
    assert all(row["why"] for row in r["disagreements"])
    assert len(wrong) >= round(N * (1 - min(v["accuracy"] for v in acc.values())))


def test_on_qemu_device_is_byte_equal(digits):
    require("qemu-system-arm", "arm-none-eabi-gcc")
    d = {"x": digits["x"][:12], "y": digits["y"][:12]}
    r = validate(digits["dir"], d, target="qemu://mps2-an386")
    dev = r["device"]
    assert dev["byte_equal"] and dev["byte_equal_samples"] == 12
    assert r["comparisons"]["device"] == r["comparisons"]["int8"]
    assert r["vs_labels"]["device"]["confusion"] == r["vs_labels"]["int8"]["confusion"]


def test_float_model_file_in_its_authored_nchw_layout(digits):
    x = digits["x"][:20].transpose(0, 3, 1, 2)            # ONNX's [N, 1, 8, 8]
    r = validate(DIGITS / "digits.onnx", {"x": x, "y": digits["y"][:20]},
                 calib=DIGITS / "calib.npz")
    assert r["samples"] == 20 and r["comparisons"]["int8"]["top1_agreement"] >= 0.9
    assert r["dir"] is None                               # compiled to a temporary DIR


def test_bad_data_is_one_clear_error(digits, tmp_path):
    np.savez(tmp_path / "noxs.npz", input=digits["x"])
    with pytest.raises(EdgeforgeError, match="validate wants a .npz with x"):
        validate(digits["dir"], tmp_path / "noxs.npz")
    with pytest.raises(EdgeforgeError, match="y has 3 entries for 60 samples"):
        validate(digits["dir"], {"x": digits["x"], "y": digits["y"][:3]})
    with pytest.raises(EdgeforgeError, match=r"x has shape \[60, 8, 8\]"):
        validate(digits["dir"], {"x": digits["x"][..., 0]})


def test_metrics_known_values():
    ref = np.array([3.0, 4.0])
    m = metrics(ref, ref)
    assert m["sqnr_db"] == float("inf") and m["rmse"] == 0 and m["cosine"] == pytest.approx(1)
    m = metrics(ref, ref + [0.3, 0.4])                    # noise 0.25 / signal 25: 20 dB
    assert m["sqnr_db"] == pytest.approx(20.0) and m["mae"] == pytest.approx(0.35)


def test_cli_json_and_plain_lines(digits, tmp_path):
    n = 15
    np.savez(tmp_path / "small.npz", x=digits["x"][:n], y=digits["y"][:n])
    cmd = [sys.executable, "-m", "edgeforge.cli", "validate", str(digits["dir"]),
           "--data", str(tmp_path / "small.npz")]
    r = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["samples"] == n and "int8" in rep["vs_labels"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{digits['dir']}: {n} samples")
    assert any(s.startswith("int8 vs float: SQNR ") and "top-1 agreement" in s for s in lines)
    assert "confusion matrix, int8 (rows: label, columns: predicted):" in lines
    r = subprocess.run([*cmd[:-1], str(DIGITS / "calib.npz")], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 2 and "validate wants a .npz with x" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_float_source_edited_since_compile_is_not_compared(digits, tmp_path):
    import shutil
    src = tmp_path / "digits.onnx"
    shutil.copy(DIGITS / "digits.onnx", src)
    d = compile_model(src, tmp_path / "d", calib=DIGITS / "calib.npz").dir
    data = {"x": digits["x"][:5], "y": digits["y"][:5]}
    assert validate(d, data)["float_model"] == str(src)
    src.write_bytes(src.read_bytes() + b"\0")            # no longer the model DIR came from
    r = validate(d, data)
    assert r["float_model"] is None and set(r["vs_labels"]) == {"int8"}
