"""A user's bad input through `python -m edgeforge.cli`: exit code 2, one stderr line naming the file
and why, no traceback, nothing left behind. No QEMU: every error here fires before a target
opens; what the CLI would wait seconds for (silent ports, a failed link) is checked on the
module with short timeouts."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, fixture, require

KWS = "kws_ds_cnn_int8.tflite"
SAMPLE = "kws_ds_cnn_sample_inputs_int8.npy"
DIGITS = ROOT / "examples" / "digits"


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def user_error(r: subprocess.CompletedProcess, *words: str) -> str:
    """Assert the one-line exit-2 error and return it."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("compiled") / "kws"
    r = cli("compile", fixture(KWS), "-o", d)
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture
def bad_files(tmp_path) -> Path:
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npy").write_text("hello")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04" + b"x" * 40)   # zip magic, no zip
    (tmp_path / "adir.npy").mkdir()
    np.save(tmp_path / "none.npy", np.zeros((0, 1, 49, 10, 1), np.int8))
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 1, 49, 10, 1), np.int8),
             b=np.zeros((1, 1, 49, 10, 1), np.int8))
    return tmp_path


@pytest.mark.parametrize("name, why", [("empty.npy", "empty file"),
                                       ("text.npy", "not a .npy/.npz file"),
                                       ("broken.npz", "unreadable .npy/.npz"),
                                       ("adir.npy", "is a directory")])
def test_run_unreadable_input(bad_files, name, why):
    user_error(cli("run", fixture(KWS), "-i", bad_files / name), name, why)


def test_inspect_directory(bad_files, compiled):
    user_error(cli("inspect", bad_files / "adir.npy"), "adir.npy", "is a directory")
    user_error(cli("inspect", compiled), "is a directory", f"its model is {compiled}/model.tflite")


def test_compile_unreadable_calib_leaves_nothing(bad_files):
    before = set(bad_files.iterdir())
    user_error(cli("compile", DIGITS / "digits.onnx", "--calib", bad_files / "empty.npz", "-o",
                   bad_files / "out"), "empty.npz", "empty file")
    assert set(bad_files.iterdir()) == before


def test_compile_output_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    user_error(cli("compile", fixture(KWS), "-o", tmp_path / "afile" / "out"),
               "afile/out", "cannot create the output directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_compile_unknown_board_json(tmp_path):
    r = cli("compile", fixture(KWS), "-o", tmp_path / "out", "--board", "nope", "--json")
    user_error(r, "unknown board 'nope'", "mps2-an386")
    assert "unknown board" in json.loads(r.stdout)["error"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, why", [("empty.npy", "empty file"),
                                       ("two.npz", "has arrays ['a', 'b']"),
                                       ("none.npy", "no samples")])
def test_profile_unreadable_inputs(compiled, bad_files, name, why):
    user_error(cli("profile", compiled, "--target", "local", "--inputs", bad_files / name),
               name, why)


@pytest.mark.parametrize("command", ["build", "profile"])
def test_model_file_instead_of_dir(command):
    extra = ["--board", "mps2-an386"] if command == "build" else ["--target", "local"]
    user_error(cli(command, fixture(KWS), *extra), KWS, "not a compiled directory")


@pytest.fixture
def tampered(compiled, tmp_path) -> Path:
    """A compiled DIR whose model.tflite changed by one byte after compile."""
    d = tmp_path / "kws"
    shutil.copytree(compiled, d)
    b = bytearray((d / "model.tflite").read_bytes())
    b[-100] ^= 1
    (d / "model.tflite").write_bytes(b)
    return d


@pytest.mark.parametrize("args", [["build", "{d}", "--board", "mps2-an386"],
                                  ["profile", "{d}", "--target", "local"],
                                  ["run", "{d}", "-i", "{x}", "--backend", "c"],
                                  ["serve", "{d}", "--mqtt", "mqtt://127.0.0.1:1"],
                                  ["deploy", "{d}", "--target", "local"],
                                  ["bridge", "qemu://mps2-an386", "{d}", "--mqtt",
                                   "mqtt://127.0.0.1:1"]])
def test_model_changed_after_compile(tampered, args):
    argv = [a.format(d=tampered, x=fixture(SAMPLE)) for a in args]
    user_error(cli(*argv), "model.tflite", "changed after compile", "recompile")
    assert not (tampered / "fw").exists()


def test_corrupt_manifest(compiled, tmp_path):
    d = tmp_path / "kws"
    shutil.copytree(compiled, d)
    (d / "manifest.json").write_text('{"model_sha')
    user_error(cli("build", d, "--board", "mps2-an386"), "manifest.json", "corrupt manifest")
    assert not (d / "fw").exists()


def test_serial_uri_bad_baud(compiled):
    uri = "serial:///dev/ttyACM0?board=mps2-an386&baud=abc"
    user_error(cli("profile", compiled, "--target", uri), "baud 'abc'", "positive integer")


def test_silent_serial_port_names_the_port(compiled):
    """A port where nothing answers: the error says which port (the CLI waits 3 x 5 s)."""
    import os
    import pty

    from edgeforge.errors import DeviceError
    from edgeforge.manifest import Manifest
    from edgeforge.targets.build import load_board
    from edgeforge.targets.serial import SerialTarget
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    try:
        t = SerialTarget(port, load_board("mps2-an386"), 115200, timeout=0.2)
        with pytest.raises(DeviceError, match=f"{port}: INFO: no answer .* flashed"):
            t.open(compiled, Manifest.load(compiled))
        t.close()
    finally:
        os.close(master)
        os.close(slave)


def test_silent_ssh_port(capfd):
    """A TCP port that never sends an SSH banner: one DeviceError, nothing from paramiko."""
    import socket

    from edgeforge.errors import DeviceError
    from edgeforge.targets.ssh import SshShell
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(DeviceError, match="no SSH server answered within 1 s"):
            SshShell("127.0.0.1", s.getsockname()[1], "u", timeout=1.0)
    assert capfd.readouterr().err == ""


def test_run_nan_input(tmp_path):
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 2, 3, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    user_error(cli("run", DIGITS / "digits_float.tflite", "-i", tmp_path / "nan.npy"),
               "nan.npy", "NaN or Inf at index [0, 2, 3, 0]")


def test_run_float_model_backend_c_says_compile(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 1), np.float32))
    line = user_error(cli("run", DIGITS / "digits.onnx", "-i", tmp_path / "x.npy", "--backend",
                          "c"), "digits.onnx", "float model", "edgeforge compile")
    assert "--calib" in line and "then run DIR" in line


def test_run_float_data_into_int8_model_says_how_to_quantize(compiled, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 49, 10, 1), np.float32))
    user_error(cli("run", compiled, "-i", tmp_path / "x.npy"), "x.npy", "wants int8",
               "quantize it: round(x / 0.584703) + 83")


def test_run_output_onto_a_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    user_error(cli("run", fixture(KWS), "-i", fixture(SAMPLE), "-o", tmp_path / "folder"),
               "folder", "cannot write (Is a directory)")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["folder", "keep.txt"]


def test_manifest_with_a_wrong_type(compiled, tmp_path):
    d = tmp_path / "kws"
    shutil.copytree(compiled, d)
    m = json.loads((d / "manifest.json").read_text())
    m["model_sha256"] = 123
    (d / "manifest.json").write_text(json.dumps(m))
    user_error(cli("profile", d, "--target", "local"), "manifest.json", "model_sha256")


def test_failed_build_leaves_no_fw_dir(compiled, tmp_path):
    """A C package that cannot link: the first build of DIR leaves no DIR/fw behind."""
    from edgeforge.errors import BuildError
    from edgeforge.targets.build import build
    require("arm-none-eabi-gcc")
    d = tmp_path / "kws"
    shutil.copytree(compiled, d)
    (d / "c" / "model.c").write_text("")
    with pytest.raises(BuildError, match="link failed"):
        build(d, "mps2-an386")
    assert sorted(p.name for p in d.iterdir()) == ["arduino", "c", "manifest.json",
                                                    "model.tflite", "model_qdq.onnx",
                                                    "report.json"]


@pytest.mark.parametrize("flags", [["--runs", "0"], ["--warmup", "-1"],
                                   ["--runs", "1000000000"]])
def test_profile_run_counts(compiled, flags):
    user_error(cli("profile", compiled, "--target", "local", *flags), "--runs must be in")


def test_usage_error_with_json_is_json(compiled):
    r = cli("profile", compiled, "--runs", "abc", "--json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert json.loads(r.stdout) == {"error": "argument --runs: invalid int value: 'abc'"}


def test_profile_inputs_on_the_batch_axis(compiled, tmp_path):
    """[N, 49, 10, 1] (samples on the batch axis, as --calib takes them) is N samples; float
    samples for the int8 input get the quantization formula."""
    x = np.load(fixture(SAMPLE))
    np.save(tmp_path / "three.npy", np.concatenate([x, x, x]))
    r = cli("profile", compiled, "--target", "local", "--runs", "1", "--inputs",
            tmp_path / "three.npy", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["samples"] == 3
    np.save(tmp_path / "f.npy", np.zeros((3, 49, 10, 1), np.float32))
    user_error(cli("profile", compiled, "--target", "local", "--inputs", tmp_path / "f.npy"),
               "f.npy", "quantize it: round(x / 0.584703) + 83")


def test_run_onnx_takes_its_own_nchw_layout(tmp_path):
    x = np.load(DIGITS / "test.npz")["x"][:1]
    np.save(tmp_path / "nhwc.npy", x)
    np.save(tmp_path / "nchw.npy", x.transpose(0, 3, 1, 2))      # as the ONNX model declares
    outs = []
    for f in ("nhwc.npy", "nchw.npy"):
        r = cli("run", DIGITS / "digits.onnx", "-i", tmp_path / f, "--json")
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout)["outputs"])
    assert outs[0] == outs[1]


def test_model_named_with_the_other_extension(tmp_path):
    shutil.copy(DIGITS / "digits.onnx", tmp_path / "digits.tflite")
    user_error(cli("inspect", tmp_path / "digits.tflite"), "digits.tflite",
               "looks like an ONNX model: rename it to .onnx")
    shutil.copy(fixture(KWS), tmp_path / "kws.onnx")        # content decides: it is read
    r = cli("inspect", tmp_path / "kws.onnx", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["format"] == "tflite", r.stderr


def test_run_npz_arrays_go_to_the_inputs_they_name(tmp_path):
    """Sub(a, b) fed from a .npz saved as (b, a): by name, not file order; half-named is an
    error."""
    import onnx
    from onnx import TensorProto, helper
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "aby"]
    g = helper.make_graph([helper.make_node("Sub", ["a", "b"], ["y"], name="sub")], "g",
                          io[:2], io[2:])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
              tmp_path / "sub.onnx")
    np.savez(tmp_path / "ba.npz", b=np.ones((1, 4), np.float32),
             a=np.full((1, 4), 10, np.float32))
    r = cli("run", tmp_path / "sub.onnx", "-i", tmp_path / "ba.npz", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outputs"] == [[[9.0] * 4]]
    np.savez(tmp_path / "ax.npz", a=np.ones((1, 4), np.float32), x=np.ones((1, 4), np.float32))
    user_error(cli("run", tmp_path / "sub.onnx", "-i", tmp_path / "ax.npz"), "ax.npz",
               "the model's inputs are ['a', 'b']")


def test_run_takes_any_float_dtype_for_a_float_input(tmp_path):
    """np.save of a float64 (numpy's default) or big-endian array is the same numbers."""
    x = np.load(DIGITS / "test.npz")["x"][:1]
    outs = []
    for dt in ("<f4", "<f8", ">f4"):
        np.save(tmp_path / "x.npy", x.astype(dt))
        r = cli("run", DIGITS / "digits_float.tflite", "-i", tmp_path / "x.npy", "--json")
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout)["outputs"])
    assert outs[0] == outs[1] == outs[2]


def test_closed_stdout_is_not_a_traceback():
    """`edgeforge inspect ... | head`: the reader is gone before we print."""
    p = subprocess.Popen([sys.executable, "-m", "edgeforge.cli", "inspect", str(fixture(KWS)), "--json"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 141 and b"Traceback" not in err, err


def test_qemu_uri_for_a_board_qemu_cannot_emulate(compiled):
    user_error(cli("profile", compiled, "--target", "qemu://nucleo-l4r5zi"),
               "QEMU does not emulate board nucleo-l4r5zi", "qemu:// boards: mps2-an386")
