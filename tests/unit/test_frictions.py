"""First-user frictions of issue 14: what the commands print and accept."""
from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT, fixture

DIGITS = ROOT / "examples" / "digits"
KWS = "kws_ds_cnn_int8.tflite"


def ef(*args: object, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_inspect_shows_the_authored_layout_and_real_op_names():
    r = ef("inspect", DIGITS / "digits.onnx", "--json")
    assert json.loads(r.stdout)["inputs"][0]["authored_shape"] == [1, 1, 8, 8]
    r = ef("inspect", DIGITS / "digits.onnx")
    assert "1x8x8x1 (file: 1x1x8x8)" in r.stdout
    r = ef("inspect", fixture(KWS))                       # piped: whole lines, real names
    rows = [ln for ln in r.stdout.splitlines() if re.match(r"\s+\d+ │", ln)]
    assert len(rows) == 13 and "functional_1/activation/Relu" in rows[0]
    assert "conv2d_0" not in r.stdout and all("1x25x5x64" in ln for ln in rows[1:9])


def test_piped_compile_prints_whole_lines_and_names_the_bound(tmp_path):
    r = ef("compile", fixture(KWS), "-o", tmp_path / "kws")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    [arena] = [ln for ln in lines if ln.startswith("arena ")]
    assert "no-overlap bound 16,000 B" in arena and "in-place kernels" in arena
    assert re.search(r"model sha256 [0-9a-f]{16}$", lines[-1])
    assert "\x1b[" not in r.stdout                        # no colour codes in a pipe
