"""First-user frictions of issue 14: what the commands print and accept."""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, fixture, require

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
    wrote = sorted(p.name + "/" * p.is_dir() for p in (tmp_path / "kws").iterdir())
    assert f"({', '.join(wrote)})" in lines[-1] and "model_qdq.onnx" in wrote   # what is there
    assert "\x1b[" not in r.stdout                        # no colour codes in a pipe


def _dense_onnx(path, sizes):
    """A float MLP [1, sizes[0]] -> ... -> [1, sizes[-1]] (Gemm + Relu between)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = numpy_helper.from_array(rng.standard_normal((a, b)).astype(np.float32) / a, f"w{k}")
        bias = numpy_helper.from_array(np.zeros(b, np.float32), f"b{k}")
        inits += [w, bias]
        y = "y" if k == len(sizes) - 2 else f"h{k}"
        nodes.append(helper.make_node("Gemm", [x, f"w{k}", f"b{k}"], [y if y == "y" else y + "g"]))
        if y != "y":
            nodes.append(helper.make_node("Relu", [y + "g"], [y]))
        x = y
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_run_prints_what_fits_the_output(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((1, 16)).astype(np.float32))
    _dense_onnx(tmp_path / "ae.onnx", [16, 4, 16])          # an autoencoder
    r = ef("run", tmp_path / "ae.onnx", "-i", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("reconstruction error vs input: MSE ")
    assert "top" not in r.stdout
    r = ef("run", tmp_path / "ae.onnx", "-i", tmp_path / "x.npy", "--json")
    s = json.loads(r.stdout)["summary"]
    y = np.array(json.loads(r.stdout)["outputs"][0])
    assert s["kind"] == "reconstruction"
    assert s["mse"] == pytest.approx(float(np.mean((y - np.load(tmp_path / "x.npy")) ** 2)))
    _dense_onnx(tmp_path / "reg.onnx", [16, 8, 1])           # one score
    r = ef("run", tmp_path / "reg.onnx", "-i", tmp_path / "x.npy")
    assert r.stdout.splitlines()[-1].startswith("output values: min ")
    np.save(tmp_path / "kws.npy", np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")))
    r = ef("run", fixture(KWS), "-i", tmp_path / "kws.npy")
    assert r.stdout.splitlines()[-1] == "top: class 5 (score 0.9961)"


def test_litert_banner_stays_out_of_our_output(tmp_path):
    """profile --target local times LiteRT's default kernels, whose XNNPACK delegate prints
    'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.' from C++ on creation."""
    require("ai_edge_litert")
    r = ef("compile", fixture(KWS), "-o", tmp_path / "kws")
    assert r.returncode == 0, r.stderr
    r = ef("profile", tmp_path / "kws", "--target", "local", "--runs", "1")
    assert r.returncode == 0, r.stderr
    assert "XNNPACK" not in r.stdout + r.stderr and "INFO:" not in r.stdout + r.stderr


def _stderr_on_a_terminal(*args: object) -> str:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); what it wrote there."""
    import os
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "edgeforge.cli", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = b""
    while True:                          # bounded: the child exits, the pty reports EOF/EIO
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=120)
    os.close(master)
    return out.decode(errors="replace")


def test_stage_progress_on_a_terminal_or_with_v(tmp_path):
    r = ef("compile", fixture(KWS), "-o", tmp_path / "a")
    assert r.returncode == 0 and "compile: " not in r.stderr        # piped: quiet
    r = ef("compile", fixture(KWS), "-o", tmp_path / "b", "-v")
    assert "compile: planning the arena (13 ops)" in r.stderr
    err = _stderr_on_a_terminal("compile", fixture(KWS), "-o", tmp_path / "c")
    assert "compile: reading" in err and "compile: writing" in err


def test_help_shows_defaults_examples_and_v():
    from edgeforge.cli import EXAMPLES, build_parser
    ap = build_parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == set(EXAMPLES)               # every command has examples
    r = ef("profile", "--help")
    assert "--runs RUNS           (default: 10)" in r.stdout and "examples:" in r.stdout
    assert "(default: qemu://mps2-an386)" in " ".join(r.stdout.split())
    assert "-v, --verbose         more detail on stderr" in r.stdout
    r = ef("fleet", "profile", "--help")
    assert "[[host]]" in r.stdout and 'uri = "ssh://pi@10.0.0.5"' in r.stdout
    r = ef("compile", "--help")
    assert "--calib DATA.npz[:KEY]" in r.stdout and "(default: model)" in r.stdout


def test_boards_lists_the_board_profiles():
    from edgeforge.targets.board import board_names
    r = ef("boards", "--json")
    rows = {b["name"]: b for b in json.loads(r.stdout)}
    assert set(rows) == set(board_names())
    qemu = rows["mps2-an386"]
    assert qemu["qemu"] is True and qemu["cpu"] == "cortex-m4" and qemu["clock_mhz"] == 25
    assert not rows["rpi-pico"]["qemu"] and rows["rpi-pico"]["kernels"] == "ref"
    r = ef("boards")
    assert r.returncode == 0 and all(name in r.stdout for name in rows)


def test_fleet_reports_each_host_as_it_finishes(tmp_path):
    require("ai_edge_litert")
    assert ef("compile", fixture(KWS), "-o", tmp_path / "kws").returncode == 0
    (tmp_path / "hosts.toml").write_text('[[host]]\nname = "here"\nuri = "local"\n')
    r = ef("fleet", "profile", tmp_path / "kws", "--inventory", tmp_path / "hosts.toml",
           "--runs", "1", "-v")
    assert r.returncode == 0, r.stderr
    assert "fleet: 1/1 hosts done (here: ok)" in r.stderr
