"""serve/bridge frames go through the one input check of run and profile (issue 10).

`serve` used to cast float32 frames with astype(int8): three different float frames all
published the same score. A float frame for an int8 input is now refused with the
quantization formula, as `run` does; hostile .npy headers on `--inputs -` (object or string
dtype, a shape that overflows, a float or negative shape) are one error line, exit 2.
"""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest, TensorSpec
from edgeforge.runner import check_inputs
from edgeforge.targets.mqtt import read_npy_frames
from tests.targets._servers import make_dir, mosquitto  # noqa: F401


def npy(header: str, data: bytes = b"") -> bytes:
    h = header.encode("latin1")
    h += b" " * (63 - (10 + len(h)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + data


@pytest.mark.parametrize(("header", "match"), [
    ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "not numeric"),
    ("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", "not numeric"),
    ("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }", "not numeric"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }", "more than"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", "bad .npy header"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "not a tuple of sizes"),
    ("{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,), }", "bad .npy header"),
    ("{'descr': '<f4', 'shape': (1,), }", "bad .npy header"),
    ("__import__('os')", "bad .npy header"),
])
def test_hostile_frame_headers_are_one_error(header, match):
    good = io.BytesIO(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", bytes(8))
                      + npy(header, bytes(64)))
    frames = read_npy_frames(good)
    assert next(frames).tolist() == [0.0, 0.0]
    with pytest.raises(EdgeforgeError, match=f"input stream frame 1: .*{match}"):
        next(frames)


def test_one_check_refuses_float_for_int8_and_takes_float_for_float():
    q = TensorSpec("x", [1, 3], "int8", 0.5, -3)
    with pytest.raises(EdgeforgeError, match=r"quantize it: round\(x / 0.5\) - 3"):
        check_inputs([q], [np.array([[0.1, 0.2, 0.3]], np.float32)], "frame 0")
    f = TensorSpec("x", [1, 3], "float32")
    [x] = check_inputs([f], [np.array([[1.0, 2.0, 3.0]])], "frame 0")       # float64 is fine
    assert x.dtype == np.float32
    with pytest.raises(EdgeforgeError, match="NaN or Inf"):
        check_inputs([f], [np.array([[1.0, np.inf, 3.0]])], "frame 0")


def test_serve_refuses_float_frames_for_an_int8_model(mosquitto, tmp_path):  # noqa: F811
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    spec = Manifest.load(d).inputs[0]
    rng = np.random.default_rng(0)
    frames = b""
    for _ in range(3):        # three different float frames once gave one and the same score
        buf = io.BytesIO()
        np.save(buf, rng.standard_normal(spec.shape).astype(np.float32))
        frames += buf.getvalue()
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "serve", str(d), "--mqtt",
                        mosquitto.uri, "--inputs", "-", "--device-id", "kws_float"],
                       input=frames, capture_output=True, timeout=120, check=False)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if "error" in ln]
    assert len(line) == 1 and "stdin#0" in line[0] and "quantize it: round(x /" in line[0]


def test_serve_hostile_frame_is_exit_2_one_line(mosquitto, tmp_path):  # noqa: F811
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "serve", str(d), "--mqtt",
                        mosquitto.uri, "--inputs", "-", "--device-id", "kws_hostile"],
                       input=npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                                 b"\x80\x04N."),
                       capture_output=True, timeout=120, check=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err
    assert "input stream frame 0: dtype object is not numeric" in err


def test_serve_directory_frames_use_the_one_npy_reader(tmp_path):
    from edgeforge.targets.mqtt import iter_inputs

    (tmp_path / "a.npy").write_text("not numpy")
    with pytest.raises(EdgeforgeError, match="a.npy: not a .npy/.npz file"):
        list(iter_inputs(str(tmp_path), [1, 3]))
    (tmp_path / "a.npy").unlink()
    np.save(tmp_path / "b.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(EdgeforgeError, match=r"b\.npy: .*(unreadable|object)"):
        list(iter_inputs(str(tmp_path), [1, 3]))
