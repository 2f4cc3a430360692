"""`edgeforge inspect`: the report of every fixture, as JSON and as text."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeforge.report import inspect
from tests.conftest import ROOT, fixture

FIXTURES = ["kws_ds_cnn_int8", "kws_ds_cnn_float32", "ic_resnet8_int8", "ic_resnet8_float32"]
# TFLM's measured arena heads (fixtures README): a planner can only do worse than the peak of
# simultaneously live activations, so that peak must not exceed them.
TFLM_HEAD = {"kws_ds_cnn": 16000, "ic_resnet8": 49152}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", "inspect", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", FIXTURES)
def test_inspect_json_cli(name):
    r = _cli("--json", str(fixture(f"{name}.tflite")))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    t = d["totals"]
    assert d["format"] == "tflite" and d["model"] == name
    assert t["macs"] > 0 and t["macs"] == sum(o["macs"] for o in d["ops"])
    assert t["weight_bytes"] == sum(o["weight_bytes"] for o in d["ops"])
    assert t["params"] == sum(o["params"] for o in d["ops"]) > 0
    assert t["ops"] == len(d["ops"]) == sum(d["op_counts"].values())
    assert 0 < t["peak_activation_bytes"] <= t["activation_bytes"]
    if name.endswith("int8"):
        assert t["peak_activation_bytes"] <= TFLM_HEAD[name.rsplit("_", 1)[0]]
        assert d["inputs"][0]["dtype"] == "int8" and d["inputs"][0]["quant"]["scale"]
    assert [o["index"] for o in d["ops"]] == list(range(len(d["ops"])))


def test_inspect_numbers_kws():
    d = inspect(fixture("kws_ds_cnn_int8.tflite"))
    first = d["ops"][0]
    # conv 10x4 over 1 channel into 25x5x64: MACs = out elements * KH*KW*CIN
    assert first["op"] == "CONV2D" and first["outputs"] == [[1, 25, 5, 64]]
    assert first["macs"] == 25 * 5 * 64 * 10 * 4 * 1
    assert first["weight_bytes"] == 64 * 10 * 4 + 64 * 4      # int8 weights + int32 bias
    assert first["attrs"]["stride"] == [2, 2] and first["attrs"]["act"] == "RELU"
    assert d["outputs"][0]["quant"] == {"scale": [1 / 256], "zero_point": [-128]}
    assert len(d["tensors"]) == 34                              # shape const folded away
    assert sum(t["bytes"] for t in d["tensors"] if t["const"]) == d["totals"]["weight_bytes"]
    json.dumps(d)   # JSON-safe as returned


def test_inspect_float_vs_int8_weights():
    f = inspect(fixture("ic_resnet8_float32.tflite"))["totals"]
    q = inspect(fixture("ic_resnet8_int8.tflite"))["totals"]
    assert f["macs"] == q["macs"] and f["params"] == q["params"]
    assert q["weight_bytes"] < f["weight_bytes"] / 3     # int8 weights, int32 biases


def test_inspect_text_table():
    r = _cli(str(fixture("ic_resnet8_int8.tflite")))
    assert r.returncode == 0, r.stderr
    for word in ("CONV2D", "ADD", "SOFTMAX", "MACs", "12,534,410"):
        assert word in r.stdout


def test_inspect_bad_json_error(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_text("not a model")
    r = _cli("--json", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error" in json.loads(r.stdout)


def test_inspect_onnx_reports_passes(tmp_path):
    """An .onnx goes through the ONNX frontend + passes; inspect shows what the passes did."""
    from tests.conftest import require
    require("onnx")
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w, b])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    r = _cli("--json", str(path))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == "onnx" and d["inputs"][0]["shape"] == [1, 8, 8, 3]   # NHWC
    assert d["totals"]["macs"] == 8 * 8 * 4 * 3 * 3 * 3
    assert d["passes"] and any(p.get("changes", 0) for p in d["passes"])
    text = _cli(str(path))
    assert text.returncode == 0 and "passes" in text.stdout
