"""The device agent on its own (runtime/agent/agent.py), and the native C path over SSH."""
from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeforge.manifest import Manifest
from edgeforge.targets.agent import AGENT_SRC
from edgeforge.targets.local import LocalTarget
from edgeforge.targets.mqtt import load_agent
from tests.targets._servers import (  # noqa: F401
    client_key,
    compile_fixture,
    make_dir,
    sample_inputs,
    sshd,
)
from tests.targets.test_ssh import host_reference

AGENT = AGENT_SRC / "agent.py"


def agent(*args: str, env: dict | None = None) -> tuple[int, dict]:
    r = subprocess.run([sys.executable, str(AGENT), *args], capture_output=True, text=True,
                       timeout=120, env=env, check=False)
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])


def test_agent_is_standalone_python38():
    src = AGENT.read_text()
    tree = ast.parse(src, feature_version=(3, 8))     # no 3.9+ syntax
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
            for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module}
    assert not mods & {"sdk", "runtime", "targets", "tests"}, "agent imports the repo"
    assert mods - {"__future__", "numpy"} <= set(sys.stdlib_module_names)


def test_agent_run_json(tmp_path):
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    x = sample_inputs(Manifest.load(d), 3)
    np.save(tmp_path / "x.npy", x)
    rc, res = agent("run", "--model", str(d / "model.tflite"), "--inputs", str(tmp_path / "x.npy"),
                    "--runs", "5", "--warmup", "1", "--json")
    assert rc == 0, res
    assert res["runtime"]["name"] == "ai_edge_litert" and res["runtime"]["version"]
    assert set(res["latency_us"]) == {"count", "first", "min", "max", "mean", "std", "p50",
                                      "p90", "p99"}
    assert res["latency_us"]["count"] == 5 and res["peak_rss_kb"] > 1000
    assert isinstance(res["max_lsb_diff"], int) and res["reference_kernels"] is True
    ref = host_reference(d / "model.tflite", x)
    for got, want in zip(res["outputs"], ref):
        o = got[0]
        a = np.frombuffer(base64.b64decode(o["b64"]), o["dtype"]).reshape(o["shape"])
        assert np.array_equal(a, want[0])

    rc, res = agent("run", "--model", str(tmp_path / "missing.tflite"), "--inputs",
                    str(tmp_path / "x.npy"))
    assert rc == 1 and "no usable TFLite runtime" in res["error"]


def test_agent_skips_a_runtime_that_cannot_load(tmp_path, monkeypatch):
    """tflite-runtime 2.14 imports under numpy 2 but fails on load: try the next one."""
    fake = tmp_path / "fakes" / "broken_rt"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "interpreter.py").write_text(
        "class Interpreter:\n    def __init__(self, **kw):\n"
        "        raise SystemError('CreateWrapperFromFile: numpy 2 ABI')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "fakes"))
    mod = load_agent()
    monkeypatch.setattr(mod, "RUNTIMES", (("broken_rt", "broken_rt.interpreter", ("x",)),
                                          *mod.RUNTIMES))
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    b = mod.InterpreterBackend(str(d / "model.tflite"))
    assert b.meta["runtime"]["name"] == "ai_edge_litert"
    assert "SystemError" in b.meta["skipped_runtimes"][0]
    monkeypatch.setattr(mod, "RUNTIMES", mod.RUNTIMES[:1])
    with pytest.raises(mod.AgentError, match="broken_rt: SystemError.*install-runtime"):
        mod.open_runtime(str(d / "model.tflite"))


@pytest.mark.parametrize("files,family", [
    ({"/etc/nv_tegra_release": "# R35 (release), REVISION: 4.1",
      "/proc/device-tree/model": "NVIDIA Orin Nano Developer Kit\x00"}, "jetson"),
    ({"/proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\x00"}, "raspberrypi"),
    ({}, "generic"),
])
def test_board_detection(monkeypatch, files, family):
    mod = load_agent()
    monkeypatch.setattr(mod, "_read", lambda p: files[p].replace("\x00", "").strip()
                        if p in files else None)
    b = mod.board_info()
    assert b["family"] == family
    if family != "generic":
        assert b["model"] == files["/proc/device-tree/model"].rstrip("\x00")


@pytest.fixture(scope="module")
def compiled_kws(tmp_path_factory) -> Path:
    """`edgeforge compile` of the KWS fixture: model.tflite + the C package."""
    return compile_fixture("kws_ds_cnn_int8.tflite", tmp_path_factory.mktemp("native") / "kws")


def test_native_over_ssh_matches_reference(sshd, client_key, compiled_kws, tmp_path):  # noqa: F811
    """--native: the C package is built on the board with cc -O3 and run by native_main.c."""
    m = Manifest.load(compiled_kws)
    x = sample_inputs(m, 2)
    from edgeforge.targets import open_target
    with open_target(sshd.uri, identity=str(client_key), known_hosts=str(sshd.known_hosts),
                     python=sys.executable, base=str(tmp_path / "b o a r d"),
                     native=True) as t:
        t.open(compiled_kws, m)
        got = [t.infer([s]) for s in x]
        meas = t.benchmark(runs=3, warmup=1)
    for g, r in zip(got, host_reference(compiled_kws / "model.tflite", x)):
        assert np.array_equal(g[0], r[0])
    assert meas.extra["runtime"] == "native-c" and meas.extra["max_lsb_diff"] == 0
    assert 0 < meas.extra["peak_rss_kb"] < 50_000 and len(meas.latency_us) == 3
    assert t.numerics == m.numerics
    built = list((tmp_path / "b o a r d" / "models" / m.model_sha256[:16] / "native").iterdir())
    assert len(built) == 1 and built[0].name.startswith("model-")


def test_local_target_without_c_package_native_is_clear(tmp_path):
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    from edgeforge.errors import EdgeforgeError
    t = LocalTarget.from_uri("local", base=str(tmp_path / "base"), native=True)
    with pytest.raises(EdgeforgeError, match="no C package"), t:
        t.open(d, Manifest.load(d))
