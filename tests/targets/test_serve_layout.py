"""serve takes frames in the ONNX model's own layout (issue 14: the authored layout
everywhere): the same digit as NCHW and as NHWC publishes the same class and score; and
LiteRT's XNNPACK banner stays out of serve's output."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from edgeforge.compiler import compile_model
from tests.conftest import ROOT, require
from tests.targets._servers import mosquitto  # noqa: F401
from tests.targets.test_mqtt import Listener

DIGITS = ROOT / "examples" / "digits"


def test_serve_takes_nchw_frames(mosquitto, tmp_path):  # noqa: F811
    require("ai_edge_litert")
    d = compile_model(DIGITS / "digits.onnx", tmp_path / "d", calib=DIGITS / "calib.npz").dir
    spec = json.loads((d / "manifest.json").read_text())["inputs"][0]
    x = np.load(DIGITS / "test.npz")["x"][:1]
    q = np.clip(np.round(x / spec["scale"]) + spec["zero_point"], -128, 127).astype(np.int8)
    frames = tmp_path / "frames"
    frames.mkdir()
    np.save(frames / "a_nchw.npy", q.transpose(0, 3, 1, 2))
    np.save(frames / "b_nhwc.npy", q)
    lis = Listener(mosquitto.port, ["edgeforge/digits/#"])
    try:
        r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "serve", str(d), "--mqtt",
                            mosquitto.uri, "--inputs", str(frames), "--device-id", "digits"],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert "XNNPACK" not in r.stderr and "INFO:" not in r.stderr    # LiteRT's banner
        lis.wait(lambda: len(lis.on("edgeforge/digits/state")) == 2)
        a, b = (json.loads(p) for p in lis.on("edgeforge/digits/state"))
        assert a["source"] == "a_nchw.npy" and b["source"] == "b_nhwc.npy"
        assert (a["class_index"], a["score"]) == (b["class_index"], b["score"])
    finally:
        lis.close()
