"""The board agent runs on the Pythons boards ship (issue 18), and refuses pickles (issue 10).

The floor is Python 3.8 (JetPack 5 / Ubuntu 20.04): vermin checks runtime/agent/agent.py
statically on every run. A board whose Python is older, or lacks numpy or any TFLite
interpreter, gets one line from deploy/profile naming the host, the Python, what is missing
and how to install it -- tried against the real loopback sshd with a `python3` shim that is
an old Python and with a venv without numpy.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import venv
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from edgeforge.targets.agent import AGENT_SRC, PYTHON_FLOOR
from tests.conftest import require
from tests.targets._servers import client_key, make_dir, sshd  # noqa: F401

AGENT = AGENT_SRC / "agent.py"


def test_vermin_agent_needs_nothing_newer_than_the_floor():
    require("vermin")
    floor = ".".join(map(str, PYTHON_FLOOR))
    r = subprocess.run(["vermin", "--no-tips", "--violations", f"-t={floor}-", str(AGENT)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr       # lists every construct above the floor
    src = AGENT.read_text()
    assert f"PYTHON_FLOOR = {PYTHON_FLOOR}" in src         # one number, host and agent agree
    assert "waitstatus_to_exitcode(" not in src


def test_agent_still_parses_on_python_3_6_so_old_pythons_get_a_sentence():
    ast.parse(AGENT.read_text(), feature_version=(3, 6))


def test_native_harness_is_plain_c99(tmp_path):
    """native_main.c with the strictest C99 flags older gcc images accept."""
    require("gcc")
    model_h = tmp_path / "model.h"
    model_h.write_text("#include <stdint.h>\n#define EF_MODEL_NUM_INPUTS 1\n"
                       "#define EF_MODEL_NUM_OUTPUTS 1\n"
                       "#define EF_MODEL_INPUT(i) (ef_in_)\n#define EF_MODEL_OUTPUT(i) (ef_in_)\n"
                       "#define EF_MODEL_INPUT_BYTES(i) 4\n#define EF_MODEL_OUTPUT_BYTES(i) 4\n"
                       "#define EF_MODEL_INVOKE() (0)\nextern int8_t ef_in_[4];\n")
    (tmp_path / "m.c").write_text('#include "model.h"\nint8_t ef_in_[4];\n')
    r = subprocess.run(["gcc", "-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror",
                        "-Wdeclaration-after-statement", "-Wvla", "-O2", f"-I{tmp_path}",
                        str(AGENT_SRC / "native_main.c"), str(tmp_path / "m.c"), "-o",
                        str(tmp_path / "h")], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr


def _agent_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("agent_floor_probe", AGENT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_agent_loads_npy_without_pickle(tmp_path):
    mod = _agent_module()
    evil = tmp_path / "x.npy"
    marker = tmp_path / "pwned"
    np.save(evil, np.array([_Boom(str(marker))], dtype=object), allow_pickle=True)
    with pytest.raises(mod.AgentError, match="not a readable .npy/.npz of numbers"):
        mod.load_samples(str(evil))
    assert not marker.exists(), "the agent unpickled a host-supplied .npy"
    # explicit, because boards carry numpy < 1.16.3, whose default was allow_pickle=True
    assert "np.load(path, allow_pickle=False)" in AGENT.read_text()
    np.save(evil, np.zeros((2, 3), np.int8))
    assert [s[0].shape for s in mod.load_samples(str(evil))] == [(3,), (3,)]


class _Boom:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _profile(d: Path, uri: str, sshd, key: Path) -> subprocess.CompletedProcess:  # noqa: F811
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(d), "--target",
                           uri, "--identity", str(key), "--known-hosts", str(sshd.known_hosts),
                           "--runs", "1"], capture_output=True, text=True, timeout=180,
                          check=False)


def _one_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "File \"" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_old_python_on_the_board_is_one_line(sshd, client_key, tmp_path):  # noqa: F811
    """A shim that behaves as Python 3.6 does: answers the version probe, and dies with a
    SyntaxError traceback on anything newer than it (as the agent would be)."""
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    shim = tmp_path / "old" / "python3"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\n"
                    "if [ \"$1\" = -c ]; then echo 3.6.9; exit 0; fi\n"
                    "echo 'Traceback (most recent call last):' >&2\n"
                    "echo '  File \"agent.py\", line 40' >&2\n"
                    "echo 'SyntaxError: invalid syntax' >&2\nexit 1\n")
    shim.chmod(0o755)
    uri = f"{sshd.uri}?python={quote(str(shim))}&dir={quote(str(tmp_path / 'b'))}"
    line = _one_line(_profile(d, uri, sshd, client_key))
    assert f"127.0.0.1:{sshd.port}" in line and f"{shim} is Python 3.6.9" in line
    assert "needs Python >= 3.8" in line and "?python=" in line


def test_the_agent_itself_refuses_an_old_python(tmp_path, monkeypatch):
    """What a 3.6/3.7 interpreter that parses the agent prints (sys.version_info faked)."""
    import json

    mod = _agent_module()
    monkeypatch.setattr(mod.sys, "version_info", (3, 7, 3, "final", 0))
    monkeypatch.setattr(mod.platform, "python_version", lambda: "3.7.3")
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        rc = mod.main(["hashes", "--dir", str(tmp_path)])
    finally:
        os.dup2(saved, 1)
        os.close(fd)
        os.close(saved)
    assert rc == 1
    assert "is Python 3.7.3; the edgeforge agent needs Python >= 3.8" in \
        json.loads(out.read_text().splitlines()[-1])["error"]


def test_python_without_numpy_or_runtime_is_one_line(sshd, client_key, tmp_path):  # noqa: F811
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    env = tmp_path / "bare venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env)
    py = env / "bin" / "python"
    assert subprocess.run([str(py), "-c", "import numpy"], capture_output=True,
                          check=False).returncode != 0, "the venv must not see numpy"
    uri = f"{sshd.uri}?python={quote(str(py))}&dir={quote(str(tmp_path / 'b'))}"
    line = _one_line(_profile(d, uri, sshd, client_key))
    ver = ".".join(map(str, sys.version_info[:3]))
    assert f"127.0.0.1:{sshd.port}" in line
    assert f"{py} (Python {ver}) lacks numpy and a TFLite interpreter" in line
    assert f"{py} -m pip install numpy ai-edge-litert" in line
    # deploy says the same, before uploading anything
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "deploy", str(d), "--target", uri,
                        "--identity", str(client_key), "--known-hosts", str(sshd.known_hosts)],
                       capture_output=True, text=True, timeout=180, check=False)
    assert _one_line(r).endswith(line.split("error: ", 1)[1])
    assert not (tmp_path / "b" / "models").exists()


def test_missing_interpreter_alone_is_named():
    """numpy but no interpreter on a JetPack 5 Python: what is missing and what to install."""
    from edgeforge.errors import DeviceError
    from edgeforge.targets.local import LocalTarget

    t = LocalTarget.from_uri("local")
    with pytest.raises(DeviceError) as e:
        t._check_requirements({"python": "3.8.10", "numpy": "1.17.4", "runtimes": []})
    msg = str(e.value)
    assert "(Python 3.8.10) lacks a TFLite interpreter" in msg and "numpy" not in \
        msg.split("lacks")[1].split(":")[0]
    assert "-m pip install tflite-runtime`" in msg
    t._check_requirements({"python": "3.8.10", "numpy": "1.17.4",
                           "runtimes": [{"name": "tflite_runtime", "version": "2.5.0"}]})
