"""--runtime litert|tensorrt|native: the agent's choice, and trtexec's summary parsed.

We have no Jetson: TensorRT itself is NOT exercised here (no fake trtexec stands in for it).
What is tested is everything around it: the parser on trtexec's documented "Performance
summary" format (both the older p99-only and the newer p90/p95/p99 rows), the choice among
the runtimes a board has, and that choice made by the agent on a board reached over real
OpenSSH (this machine: LiteRT and a C compiler, no TensorRT).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from edgeforge.targets.mqtt import load_agent
from tests.targets._servers import client_key, compile_fixture, sshd  # noqa: F401

AGENT = load_agent()

# trtexec's summary as NVIDIA documents it (TensorRT 8.x: timestamps, p99 only)
OLD = """\
[12/01/2026-10:00:01] [I] TensorRT version: 8.5.2
[12/01/2026-10:00:09] [I] === Performance summary ===
[12/01/2026-10:00:09] [I] Throughput: 1234.5 qps
[12/01/2026-10:00:09] [I] Latency: min = 0.75 ms, max = 1.5 ms, mean = 0.8 ms, median = 0.79 ms, percentile(99%) = 1.25 ms
[12/01/2026-10:00:09] [I] Enqueue Time: min = 0.01 ms, max = 0.05 ms, mean = 0.02 ms, median = 0.02 ms, percentile(99%) = 0.04 ms
[12/01/2026-10:00:09] [I] H2D Latency: min = 0.02 ms, max = 0.1 ms, mean = 0.03 ms, median = 0.03 ms, percentile(99%) = 0.08 ms
[12/01/2026-10:00:09] [I] GPU Compute Time: min = 0.7 ms, max = 1.4 ms, mean = 0.74 ms, median = 0.73 ms, percentile(99%) = 1.2 ms
[12/01/2026-10:00:09] [I] D2H Latency: min = 0.005 ms, max = 0.02 ms, mean = 0.01 ms, median = 0.01 ms, percentile(99%) = 0.015 ms
[12/01/2026-10:00:09] [I] Total Host Walltime: 3.0025 s
[12/01/2026-10:00:09] [I] Total GPU Compute Time: 2.75 s
[12/01/2026-10:00:09] [I] Explanations of the performance metrics are printed in the verbose logs.
"""
# TensorRT 10.x: p90/p95/p99, no timestamps
NEW = """\
[I] === Performance summary ===
[I] Throughput: 2000 qps
[I] Latency: min = 0.4 ms, max = 0.9 ms, mean = 0.5 ms, median = 0.48 ms, percentile(90%) = 0.6 ms, percentile(95%) = 0.7 ms, percentile(99%) = 0.85 ms
[I] GPU Compute Time: min = 0.3 ms, max = 0.8 ms, mean = 0.45 ms, median = 0.44 ms, percentile(90%) = 0.55 ms, percentile(95%) = 0.6 ms, percentile(99%) = 0.75 ms
[I] Total Host Walltime: 3 s
&&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=m.engine
"""


def test_trtexec_summary_parsed_in_microseconds():
    old = AGENT.parse_trtexec(OLD)
    assert old["tensorrt_version"] == "8.5.2" and old["throughput_qps"] == 1234.5
    assert old["latency"] == pytest.approx({"min": 750, "max": 1500, "mean": 800,
                                            "median": 790, "p99": 1250})
    assert old["gpu_compute"]["mean"] == pytest.approx(740)
    assert old["h2d"]["p99"] == pytest.approx(80) and old["d2h"]["median"] == pytest.approx(10)
    assert old["enqueue"]["max"] == pytest.approx(50)
    assert old["total_host_walltime_s"] == 3.0025 and old["total_gpu_compute_s"] == 2.75
    new = AGENT.parse_trtexec(NEW)
    assert new["latency"] == pytest.approx({"min": 400, "max": 900, "mean": 500, "median": 480,
                                            "p90": 600, "p95": 700, "p99": 850})
    assert new["gpu_compute"]["p90"] == pytest.approx(550) and "h2d" not in new
    assert AGENT.parse_trtexec("[I] Building engine...\n") == {}   # no summary: nothing


def test_runtime_choice():
    choose, Err = AGENT.choose_runtime, AGENT.AgentError
    everything = {"tensorrt": True, "litert": True, "native": True}
    assert choose("auto", everything) == "tensorrt"                  # the fastest first
    assert choose("auto", {"litert": True, "native": True}) == "litert"
    assert choose("auto", {"native": True}) == "native"
    assert choose("litert", everything) == "litert"
    with pytest.raises(Err, match="no trtexec"):
        choose("tensorrt", {"litert": True})
    with pytest.raises(Err, match="no runtime on this device"):
        choose("auto", {})
    with pytest.raises(Err, match="use one of auto, tensorrt, litert, native"):
        choose("cuda", everything)


def cli_profile(d, sshd, key, *extra):  # noqa: F811
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(d), "--target",
                           f"{sshd.uri}?python={sys.executable}&dir={d.parent / 'board'}",
                           "--identity", str(key), "--known-hosts", str(sshd.known_hosts),
                           "--runs", "3", "--json", *extra],
                          capture_output=True, text=True, timeout=300, check=False)


def test_agent_chooses_over_ssh(sshd, client_key, tmp_path):  # noqa: F811
    if shutil.which("trtexec"):
        pytest.fail("this host has trtexec: the no-TensorRT case below assumes it has none")
    d = compile_fixture("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    assert (d / "model_qdq.onnx").exists()
    r = cli_profile(d, sshd, client_key)                  # auto: no TensorRT here -> LiteRT
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["runtime"] == "ai_edge_litert" and res["outputs_match_reference"] is True
    assert res["device"]["tensorrt"] is None              # the agent looked, found none
    board = tmp_path / "board" / "models" / res["model_sha256"][:16]
    assert (board / "model_qdq.onnx").read_bytes() == (d / "model_qdq.onnx").read_bytes()

    r = cli_profile(d, sshd, client_key, "--runtime", "tensorrt")
    assert r.returncode == 2 and "--runtime tensorrt: no trtexec on this device" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli_profile(d, sshd, client_key, "--runtime", "litert")
    assert r.returncode == 0 and json.loads(r.stdout)["runtime"] == "ai_edge_litert", r.stderr
